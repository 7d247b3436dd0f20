// Usage windows (hour, day, month) in a customer's IANA time zone (issue 23). Pure: no I/O, no Node
// API, so the browser bundle can use it too. The zone rules are the runtime's (Intl/ICU tzdata);
// this module finds their offset changes and does the window arithmetic on top of them.
//
// A window is a maximal run of instants with the same local label: the local date for `day`, the
// local year and month for `month`, the local date, hour and UTC offset for `hour`. So a day starts
// at local midnight, or at the first instant of the date when midnight does not exist (a zone that
// changes at 00:00), and a day across a daylight-saving change is 23 or 25 hours long; the hour that
// a fall-back repeats is two one-hour windows told apart by their offsets. A window's key is its
// own (uncut) local start as RFC 3339 with its offset; for UTC it is `Date#toISOString()`, the
// existing keys of GET /v1/usage.

export type Window = 'hour' | 'day' | 'month';
export const WINDOWS: readonly Window[] = ['hour', 'day', 'month'];

/** Width of a usage rollup bucket: every offset in use today is a multiple of 15 minutes. */
export const BUCKET_MS = 900_000;

/** Default bound on the windows one request may produce. */
export const MAX_WINDOWS = 10_000;

const HOUR = 3_600_000;
const DAY = 86_400_000;
const TZ_RULE = 'an IANA time zone name such as Europe/Berlin';
const MAX_TZ_LENGTH = 64;
// Characters of IANA names (Etc/GMT+2, America/Port-au-Prince); a leading letter refuses offsets.
const TZ_SHAPE = /^[A-Za-z][A-Za-z0-9_+\-/]*$/;
// Instants are bounded to the years RFC 3339 can write (0001 to 9999).
const MIN_MS = -62_135_596_800_000; // 0001-01-01T00:00:00Z
const MAX_MS = 253_402_300_800_000; // 10000-01-01T00:00:00Z

// ICU (hence Node) still answers some zones by the CLDR spelling IANA has since renamed.
const IANA_NAME: Record<string, string> = {
  'Africa/Asmera': 'Africa/Asmara',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
  'America/Catamarca': 'America/Argentina/Catamarca',
  'America/Coral_Harbour': 'America/Atikokan',
  'America/Cordoba': 'America/Argentina/Cordoba',
  'America/Godthab': 'America/Nuuk',
  'America/Indianapolis': 'America/Indiana/Indianapolis',
  'America/Jujuy': 'America/Argentina/Jujuy',
  'America/Louisville': 'America/Kentucky/Louisville',
  'America/Mendoza': 'America/Argentina/Mendoza',
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Rangoon': 'Asia/Yangon',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Europe/Kiev': 'Europe/Kyiv',
  'Pacific/Enderbury': 'Pacific/Kanton',
  'Pacific/Ponape': 'Pacific/Pohnpei',
  'Pacific/Truk': 'Pacific/Chuuk',
};

// The names of UTC itself, whichever of them a runtime answers with.
const UTC_NAMES = new Set([
  'UTC',
  'Etc/UTC',
  'Etc/UCT',
  'Etc/GMT',
  'Etc/GMT0',
  'Etc/GMT+0',
  'Etc/GMT-0',
  'Etc/Universal',
  'Etc/Zulu',
  'Etc/Greenwich',
]);
const canonical = new Map<string, string>();

/**
 * The canonical IANA name of `tz` (`europe/berlin` is `Europe/Berlin`, `Etc/UTC` and `GMT` are
 * `UTC`, `Asia/Calcutta` is `Asia/Kolkata`), or a RangeError naming the field `tz` and the rule.
 * UTC offsets (`+02:00`) are refused although Intl takes them: a tz is a place's rules, and
 * `Etc/GMT-2` says a fixed offset without the sign confusion.
 */
export function checkTimeZone(tz: unknown): string {
  if (typeof tz !== 'string') throw new RangeError(`tz must be ${TZ_RULE}, not ${tz === null ? 'null' : typeof tz}`);
  if (tz.length === 0 || tz.length > MAX_TZ_LENGTH)
    throw new RangeError(`tz must be ${TZ_RULE} (1 to ${MAX_TZ_LENGTH} characters, got ${tz.length})`);
  const known = canonical.get(tz);
  if (known !== undefined) return known;
  let resolved: string | undefined;
  if (TZ_SHAPE.test(tz)) {
    try {
      resolved = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
    } catch {
      resolved = undefined;
    }
  }
  if (resolved === undefined || !TZ_SHAPE.test(resolved)) throw new RangeError(`tz must be ${TZ_RULE}, not ${JSON.stringify(tz)}`);
  const name = UTC_NAMES.has(resolved) || UTC_NAMES.has(`Etc/${resolved}`) ? 'UTC' : (IANA_NAME[resolved] ?? resolved);
  if (canonical.size >= 1024) canonical.clear();
  canonical.set(tz, name);
  return name;
}

function checkWindow(window: unknown): Window {
  if (!(WINDOWS as readonly unknown[]).includes(window))
    throw new RangeError(`window must be one of ${WINDOWS.join(', ')}, not ${JSON.stringify(String(window).slice(0, 16))}`);
  return window as Window;
}

function checkInstant(field: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < MIN_MS || ms > MAX_MS)
    throw new RangeError(
      `${field} must be an instant in epoch ms (an integer) from 0001-01-01 to 10000-01-01, not ${String(ms).slice(0, 32)}`,
    );
  return ms;
}

// ---- the zone's offsets, from its transitions, cached per zone and UTC year ----

/** One UTC year of a zone: the offset just before it and each change (at = first instant of the new offset). */
interface YearRules {
  start: number;
  end: number;
  before: number;
  changes: Array<{ at: number; offset: number }>;
}

// A year is probed every SCAN_STEP and each change located to the ms by bisection. A change and
// its reversal less than SCAN_STEP apart would go unseen: the shortest in tzdata from 1900 to 2100
// lasts 167 hours (America/Boa_Vista, DST of 8-15 October 2000), found with a probe every day.
const SCAN_STEP = 3 * DAY;
const MAX_CACHED_YEARS = 4096;
const LONG_OFFSET = /GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/;

function utcYearStart(year: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, 0, 1);
  return d.getTime();
}

class Zone {
  readonly name: string;
  readonly utc: boolean;
  private readonly years = new Map<number, YearRules>();
  private last: YearRules | undefined;
  private readonly format: Intl.DateTimeFormat | undefined;
  /** The window last asked for, per kind: rollup buckets come in time order, most hit it. */
  readonly lastWindow: Partial<Record<Window, { start: number; end: number; key: string | undefined }>> = {};

  constructor(name: string) {
    this.name = name;
    this.utc = name === 'UTC';
    // The runtime's tzdata (ICU) is the rule book; "GMT+05:45" (or "GMT+00:17:30") is its offset.
    if (!this.utc) this.format = new Intl.DateTimeFormat('en-US', { timeZone: name, timeZoneName: 'longOffset' });
  }

  /** The zone's offset at `ms` in ms, straight from the runtime's rules. */
  private rawOffset(ms: number): number {
    // "12/31/1989, GMT-08:00": the offset ends the text (format is 3x faster than formatToParts).
    const text = this.format!.format(ms);
    const m = LONG_OFFSET.exec(text);
    if (!m) throw new Error(`time zone ${this.name}: the runtime wrote the offset as ${JSON.stringify(text)}`);
    if (m[1] === undefined) return 0;
    const seconds = Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4] ?? 0);
    return (m[1] === '-' ? -seconds : seconds) * 1000;
  }

  private scan(year: number): YearRules {
    const start = utcYearStart(year);
    const end = utcYearStart(year + 1);
    const before = this.rawOffset(start - 1);
    const changes: YearRules['changes'] = [];
    let lo = start - 1;
    let loOffset = before;
    while (lo < end - 1) {
      const probe = Math.min(lo + SCAN_STEP, end - 1);
      const probeOffset = this.rawOffset(probe);
      // Every change in (lo, probe]: bisect to the first, then look again from there.
      while (probeOffset !== loOffset) {
        let a = lo;
        let b = probe;
        while (b - a > 1) {
          const mid = a + Math.floor((b - a) / 2);
          if (this.rawOffset(mid) === loOffset) a = mid;
          else b = mid;
        }
        loOffset = this.rawOffset(b);
        changes.push({ at: b, offset: loOffset });
        lo = b;
      }
      lo = probe;
    }
    return { start, end, before, changes };
  }

  private year(year: number): YearRules {
    let rules = this.years.get(year);
    if (!rules) {
      if (this.years.size >= MAX_CACHED_YEARS) this.years.clear();
      this.years.set(year, (rules = this.scan(year)));
    }
    return rules;
  }

  private rulesAt(ms: number): YearRules {
    const last = this.last;
    if (last && ms >= last.start && ms < last.end) return last;
    return (this.last = this.year(new Date(ms).getUTCFullYear()));
  }

  offset(ms: number): number {
    if (this.utc) return 0;
    const rules = this.rulesAt(ms);
    let offset = rules.before;
    for (const c of rules.changes) {
      if (c.at > ms) break;
      offset = c.offset;
    }
    return offset;
  }

  /** The last change of offset in (a, b], if any. */
  lastChangeIn(a: number, b: number): number | undefined {
    if (this.utc || b <= a) return undefined;
    for (let y = new Date(b).getUTCFullYear(), first = new Date(a).getUTCFullYear(); y >= first; y--) {
      const changes = this.year(y).changes;
      for (let i = changes.length - 1; i >= 0; i--) {
        const at = changes[i]!.at;
        if (at <= b && at > a) return at;
        if (at <= a) return undefined;
      }
    }
    return undefined;
  }

  /** The first change of offset in (a, b], if any. */
  firstChangeIn(a: number, b: number): number | undefined {
    if (this.utc || b <= a) return undefined;
    for (let y = new Date(a).getUTCFullYear(), last = new Date(b).getUTCFullYear(); y <= last; y++) {
      for (const { at } of this.year(y).changes) {
        if (at > a && at <= b) return at;
        if (at > b) return undefined;
      }
    }
    return undefined;
  }
}

const zones = new Map<string, Zone>();
function zoneOf(tz: string): Zone {
  const name = checkTimeZone(tz);
  let zone = zones.get(name);
  if (!zone) {
    if (zones.size >= 1024) zones.clear();
    zones.set(name, (zone = new Zone(name)));
  }
  return zone;
}

// ---- local calendar arithmetic on "local ms" (the wall clock read as if it were UTC) ----

function unitFloor(window: Window, local: number): number {
  if (window === 'hour') return Math.floor(local / HOUR) * HOUR;
  if (window === 'day') return Math.floor(local / DAY) * DAY;
  const d = new Date(local);
  const first = new Date(0);
  first.setUTCFullYear(d.getUTCFullYear(), d.getUTCMonth(), 1);
  return first.getTime();
}

function unitNext(window: Window, unitStart: number): number {
  if (window === 'hour') return unitStart + HOUR;
  if (window === 'day') return unitStart + DAY;
  const d = new Date(unitStart);
  d.setUTCMonth(d.getUTCMonth() + 1);
  return d.getTime();
}

/** Whether two instants carry the same local label (hours also compare the offset). */
function sameLabel(zone: Zone, window: Window, a: number, b: number): boolean {
  const oa = zone.offset(a);
  const ob = zone.offset(b);
  if (window === 'hour' && oa !== ob) return false;
  return unitFloor(window, a + oa) === unitFloor(window, b + ob);
}

function startOf(zone: Zone, window: Window, ms: number): number {
  let t = ms;
  // Each turn steps back over one offset change or one unit; a label spans a few of them at most.
  for (let turn = 0; turn < 64; turn++) {
    const offset = zone.offset(t);
    const unitStart = unitFloor(window, t + offset) - offset;
    const change = zone.lastChangeIn(unitStart, t);
    const candidate = change ?? unitStart;
    if (!sameLabel(zone, window, candidate - 1, candidate)) return candidate;
    t = candidate - 1;
  }
  throw new Error(`time zone ${zone.name}: no ${window} start found before ${ms}`);
}

/** The first instant after `t` whose label differs from t's. */
function nextEdge(zone: Zone, window: Window, t: number): number {
  let at = t;
  for (let turn = 0; turn < 64; turn++) {
    const offset = zone.offset(at);
    const unitEnd = unitNext(window, unitFloor(window, at + offset)) - offset;
    const candidate = zone.firstChangeIn(at, unitEnd) ?? unitEnd;
    if (!sameLabel(zone, window, candidate - 1, candidate)) return candidate;
    at = candidate;
  }
  throw new Error(`time zone ${zone.name}: no ${window} end found after ${t}`);
}

// ---- keys ----

const pad = (n: number, width: number) => String(n).padStart(width, '0');

function formatYear(year: number): string {
  if (year >= 0 && year <= 9999) return pad(year, 4);
  return (year < 0 ? '-' : '+') + pad(Math.abs(year), 6);
}

function formatOffset(offset: number): string {
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset) / 1000;
  const h = Math.floor(abs / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = abs % 60;
  // RFC 3339 offsets are whole minutes; a local mean time (+00:17:30) keeps its seconds, as
  // Temporal and java.time write it, so the key still names the exact instant.
  return `${sign}${pad(h, 2)}:${pad(m, 2)}${s === 0 ? '' : `:${pad(s, 2)}`}`;
}

function keyAt(zone: Zone, start: number): string {
  if (zone.utc) return new Date(start).toISOString();
  const offset = zone.offset(start);
  const d = new Date(start + offset);
  const ms = d.getUTCMilliseconds();
  return (
    `${formatYear(d.getUTCFullYear())}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}${ms === 0 ? '' : `.${pad(ms, 3)}`}` +
    formatOffset(offset)
  );
}

// ---- the exported surface ----

/** The start (epoch ms) of the `window` of zone `tz` that holds the instant `ms`. */
export function windowStart(tz: string, window: Window, ms: number): number {
  return windowAt(zoneOf(tz), window, ms).start;
}

/** The key of the `window` of zone `tz` that holds `ms`: its local start as RFC 3339 with its offset. */
export function keyOf(tz: string, window: Window, ms: number): string {
  const zone = zoneOf(tz);
  const w = windowAt(zone, window, ms);
  w.key ??= keyAt(zone, w.start);
  return w.key;
}

function windowAt(zone: Zone, window: Window, ms: number): { start: number; end: number; key: string | undefined } {
  checkWindow(window);
  checkInstant('ms', ms);
  const last = zone.lastWindow[window];
  if (last && ms >= last.start && ms < last.end) return last;
  const start = startOf(zone, window, ms);
  const w = { start, end: nextEdge(zone, window, start), key: undefined };
  zone.lastWindow[window] = w;
  return w;
}

// The longest a window can be, for refusing a range before looking at the zone: an hour never
// spans two offsets; a day or month may take in a fall-back, at most a repeated day (date line).
const LONGEST: Record<Window, number> = { hour: HOUR, day: 3 * DAY, month: 34 * DAY };

/**
 * Every `window` of zone `tz` overlapping [from, to) (epoch ms, half-open), in time order: `start`
 * and `end` are the window's bounds cut to [from, to), so partial windows are exact; `key` is the
 * window's own local start. An empty range has no windows. More than `maxWindows` is a RangeError,
 * raised before any window is built.
 */
export function windowsOf(
  tz: string,
  window: Window,
  from: number,
  to: number,
  maxWindows: number = MAX_WINDOWS,
): Array<{ start: number; end: number; key: string }> {
  const zone = zoneOf(tz);
  checkWindow(window);
  checkInstant('from', from);
  checkInstant('to', to);
  if (to < from) throw new RangeError(`to must not be before from (from ${from}, to ${to})`);
  if (!(Number.isSafeInteger(maxWindows) && maxWindows >= 1)) throw new RangeError('maxWindows must be a positive integer');
  if (to === from) return [];
  const tooMany = () =>
    new RangeError(`from/to: [${from}, ${to}) spans more than ${maxWindows} ${window} windows, the most one request may ask for`);
  if (Math.floor((to - from) / LONGEST[window]) > maxWindows) throw tooMany();
  const starts = [startOf(zone, window, from)];
  for (let edge = nextEdge(zone, window, from); edge < to; edge = nextEdge(zone, window, edge)) {
    if (starts.length >= maxWindows) throw tooMany();
    starts.push(edge);
  }
  return starts.map((start, i) => ({
    start: Math.max(start, from),
    end: i + 1 < starts.length ? starts[i + 1]! : to,
    key: keyAt(zone, start),
  }));
}

/** Whether `ms` is on a rollup bucket edge (a multiple of BUCKET_MS since the epoch). */
export function isBucketAligned(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms % BUCKET_MS === 0;
}

/**
 * Whether every window edge of zone `tz` in [from, to] (hour edges: day and month edges are among
 * them) falls on a BUCKET_MS edge, so whole windows can be summed from rollup buckets. True for
 * every offset in use today; false where a local mean time (Europe/Brussels before 1892,
 * +00:17:30) has an edge in the range.
 */
export function zoneEdgesAligned(tz: string, from: number, to: number): boolean {
  const zone = zoneOf(tz);
  checkInstant('from', from);
  checkInstant('to', to);
  if (to < from) throw new RangeError(`to must not be before from (from ${from}, to ${to})`);
  if (zone.utc) return true;
  // Walk the offset segments of [from, to]: a change of offset is an hour edge itself; inside a
  // segment the edges are whole local hours, aligned iff the offset is (when there is one).
  let segStart = from;
  for (;;) {
    const change = zone.firstChangeIn(segStart, to);
    const segEnd = change === undefined ? to : change - 1;
    const offset = zone.offset(segStart);
    if (offset % BUCKET_MS !== 0) {
      const firstEdge = Math.ceil((segStart + offset) / HOUR) * HOUR - offset;
      if (firstEdge <= segEnd) return false;
    }
    if (change === undefined) return true;
    if (!isBucketAligned(change)) return false;
    segStart = change;
  }
}
