// Time on the web page: the usage view in one chosen IANA zone (the viewer's by default), the
// trust panel's dates in the browser's own. Pure: Date and Intl only, no DOM, so it is tested
// under any TZ.

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** The browser's IANA zone name (e.g. "Europe/Berlin"). */
export function zoneName(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** "2026-03-08 01:30:05" in the browser's zone. */
export function formatLocal(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// ---- a chosen IANA zone (the usage view's), not the browser's: Intl only, so the page shows
// any zone the same whatever the browser's own is.

export type TimeGroup = 'hour' | 'day' | 'month';

/** A zone name as the API takes it: bounded, plain characters (checked before Intl sees it). */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/;

/** True when this runtime knows the IANA zone (UTC included). */
export function isZone(tz: string): boolean {
  if (!ZONE_NAME.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const CURRENT_NAMES = [
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Asia/Ho_Chi_Minh',
  'Asia/Yangon',
  'Europe/Kyiv',
  'America/Nuuk',
  'Atlantic/Faroe',
  'Pacific/Kanton',
  'Pacific/Chuuk',
  'Pacific/Pohnpei',
];

/** UTC first, then every zone this runtime lists, and `current` when the list lacks it. */
export function zoneChoices(current?: string): string[] {
  const listed = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  // Chromium lists some zones by their old names (Asia/Calcutta): the current ones too.
  const renamed = CURRENT_NAMES.filter(isZone);
  const all = new Set(['UTC', ...(current && current !== 'UTC' ? [current] : []), ...listed, ...renamed]);
  return ['UTC', ...[...all].filter((z) => z !== 'UTC').sort()];
}

const partsFormat = new Map<string, Intl.DateTimeFormat>();
function wall(tz: string, ms: number): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  let f = partsFormat.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    partsFormat.set(tz, f);
  }
  const p: Record<string, string> = {};
  for (const x of f.formatToParts(ms)) p[x.type] = x.value;
  const y = Number(p.year);
  return {
    y: p.era === 'BC' ? 1 - y : y,
    mo: Number(p.month),
    d: Number(p.day),
    h: Number(p.hour),
    mi: Number(p.minute),
    s: Number(p.second),
  };
}

/** Date.UTC, except that years 0–99 are those years (Date.UTC reads them as 1900–1999). */
function utc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  const t = Date.UTC(y, mo, d, h, mi, s, ms);
  if (y < 0 || y > 99) return t;
  const g = new Date(t);
  return g.setUTCFullYear(g.getUTCFullYear() - 1900);
}

/** The zone's offset from UTC at instant ms, in minutes (east positive). */
export function offsetMinutes(tz: string, ms: number): number {
  const w = wall(tz, ms);
  const asUtc = utc(w.y, w.mo - 1, w.d, w.h, w.mi, w.s);
  return Math.round((asUtc - (ms - (((ms % 1000) + 1000) % 1000))) / 60_000);
}

/** "UTC+05:30" for an offset in minutes. */
export function offsetLabel(minutes: number): string {
  const a = Math.abs(minutes);
  return `UTC${minutes < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/**
 * The instant of a wall time in the zone (fields as Date.UTC takes them, overflow rolls). A wall
 * time that a daylight-saving jump skips is moved forward by the jump; one that occurs twice is
 * its first occurrence.
 */
export function zonedInstant(tz: string, y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  const guess = utc(y, mo, d, h, mi, s, ms);
  const before = offsetMinutes(tz, guess - DAY);
  const after = offsetMinutes(tz, guess + DAY);
  // Of the offsets around it, the earliest instant whose wall time is the one asked for.
  for (const o of [Math.max(before, after), Math.min(before, after)]) {
    const t = guess - o * 60_000;
    if (offsetMinutes(tz, t) === o) return t;
  }
  // Skipped by a jump forward: the wall time read with the offset before the jump.
  return guess - before * 60_000;
}

/** A datetime-local value ("2026-03-08T01:30[:ss[.mmm]]") read in the zone; undefined when malformed. */
export function parseInputIn(tz: string, value: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (y < 100) check.setUTCFullYear(y);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  return zonedInstant(tz, y, mo - 1, d, h, mi, s, Number((m[7] ?? '0').padEnd(3, '0')));
}

/** "2026-03-08 01:30:05" in the zone. */
export function formatIn(tz: string, ms: number): string {
  const w = wall(tz, ms);
  return `${pad(w.y, 4)}-${pad(w.mo)}-${pad(w.d)} ${pad(w.h)}:${pad(w.mi)}:${pad(w.s)}`;
}

/** Start of the zone's hour, day or month holding t. */
export function windowStartIn(tz: string, group: TimeGroup, t: number): number {
  const w = wall(tz, t);
  if (group === 'hour') return zonedInstant(tz, w.y, w.mo - 1, w.d, w.h);
  return zonedInstant(tz, w.y, w.mo - 1, group === 'day' ? w.d : 1);
}

/** Start of the window after the one starting at `start`: a day is 23 or 25 h across a DST change. */
export function nextWindowIn(tz: string, group: TimeGroup, start: number): number {
  if (group === 'hour') return start + HOUR;
  const w = wall(tz, start);
  return group === 'day' ? zonedInstant(tz, w.y, w.mo - 1, w.d + 1) : zonedInstant(tz, w.y, w.mo, 1);
}

/** A time group key of the API: its local start as RFC 3339 with its offset, or a UTC instant. */
const KEY = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * What a group key means: its instant, and a label in the key's own local time and offset (not
 * the browser's zone), e.g. "2026-03-08 (UTC-08:00)", "2026-03-08 01:00 (UTC+05:30)", "2026-03".
 * Undefined for a key that is not an RFC 3339 instant.
 */
export function readKey(key: string, group: TimeGroup): { t: number; label: string; offset: string } | undefined {
  const m = KEY.exec(key);
  const t = Date.parse(key);
  if (!m || Number.isNaN(t)) return undefined;
  const [, y, mo, d, h, mi, , z] = m;
  const offset = z === 'Z' ? 'UTC+00:00' : `UTC${z}`;
  const local = group === 'month' ? `${y}-${mo}` : group === 'day' ? `${y}-${mo}-${d}` : `${y}-${mo}-${d} ${h}:${mi}`;
  return { t, label: `${local} (${offset})`, offset };
}

export interface ZonedPlan {
  group: TimeGroup;
  min: number;
  max: number;
  /** Every window of [min, max) in the zone, empty ones as 0. */
  starts: number[];
  units: number[];
}

/** Shortest span the chart shows for an open range, per group: enough windows to show a shape. */
const MIN_SPAN: Record<TimeGroup, number> = { hour: DAY, day: 7 * DAY, month: 90 * DAY };

/**
 * The chart of the service's time groups (window starts, ms) in the zone: the range asked for,
 * or for an open range the data up to now, at least MIN_SPAN; every window drawn, empty as 0.
 */
export function zonedPlan(
  tz: string,
  group: TimeGroup,
  groups: Array<{ t: number; units: number }>,
  range: { from?: number; to?: number },
  now: number,
): ZonedPlan {
  const sorted = [...groups].sort((a, b) => a.t - b.t);
  const first = sorted[0]?.t;
  const last = sorted.at(-1)?.t;
  let end = range.to ?? Math.max(now, last === undefined ? now : nextWindowIn(tz, group, last));
  const start = range.from ?? Math.min(first ?? end - MIN_SPAN[group], end - MIN_SPAN[group]);
  if (end <= start) end = start + HOUR;
  const starts: number[] = [];
  for (let b = windowStartIn(tz, group, start); b < end && starts.length < 10_000; b = nextWindowIn(tz, group, b)) starts.push(b);
  const units = starts.map(() => 0);
  let i = 0;
  for (const p of sorted) {
    while (i + 1 < starts.length && starts[i + 1]! <= p.t) i++;
    units[i]! += p.units;
  }
  return { group, min: starts[0]!, max: nextWindowIn(tz, group, starts.at(-1)!), starts, units };
}
