// Time on the web page, one rule: everything is in the browser's own time zone (named with its
// UTC offset on the page). Pure: Date and Intl only, no DOM, so it is tested under any TZ.

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** The browser's IANA zone name (e.g. "Europe/Berlin"). */
export function zoneName(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

/** "UTC+02:00" / "UTC-05:00" / "UTC+05:30": the zone's offset at instant ms. */
export function utcOffset(ms: number): string {
  const minutes = -new Date(ms).getTimezoneOffset();
  const a = Math.abs(minutes);
  return `UTC${minutes < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * A datetime-local value ("2026-03-08T01:30" or with ":ss") read in the browser's zone, as epoch
 * ms; undefined when empty or malformed. A wall time that a daylight-saving jump skips is moved
 * forward (as Date does); one that occurs twice is its first occurrence.
 */
export function parseLocalInput(value: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  const date = new Date(y, mo - 1, d, h, mi, s, Number((m[7] ?? '0').padEnd(3, '0')));
  if (y < 100) date.setFullYear(y); // years 0–99 are not 1900–1999
  // 2026-02-31 is not a date (Date would roll it into March).
  return date.getMonth() === mo - 1 && date.getDate() === d ? date.getTime() : undefined;
}

/** "2026-03-08 01:30:05" in the browser's zone. */
export function formatLocal(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export type Bucket = 'hour' | 'day' | 'week' | 'month' | 'year';

/** Start of the local calendar bucket holding t. Weeks start on Monday. */
export function bucketStart(t: number, bucket: Bucket): number {
  const d = new Date(t);
  if (bucket === 'hour') {
    d.setMinutes(0, 0, 0);
    return d.getTime();
  }
  d.setHours(0, 0, 0, 0);
  if (bucket === 'week') d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  if (bucket === 'month' || bucket === 'year') d.setDate(1);
  if (bucket === 'year') d.setMonth(0);
  return d.getTime();
}

/** Start of the next bucket: local calendar steps, so a day is 23 or 25 h across a DST change. */
export function nextBucket(start: number, bucket: Bucket): number {
  const d = new Date(start);
  if (bucket === 'hour') return start + HOUR;
  if (bucket === 'day') d.setDate(d.getDate() + 1);
  if (bucket === 'week') d.setDate(d.getDate() + 7);
  if (bucket === 'month') d.setMonth(d.getMonth() + 1);
  if (bucket === 'year') d.setFullYear(d.getFullYear() + 1);
  return d.getTime();
}

/** The bucket for a span: few enough bars to read (≤ ~100), many enough to show a shape. */
export function bucketFor(span: number): Bucket {
  if (span <= 3 * DAY) return 'hour';
  if (span <= 92 * DAY) return 'day';
  if (span <= 2 * 366 * DAY) return 'week';
  if (span <= 30 * 366 * DAY) return 'month';
  return 'year';
}

export interface ChartPlan {
  bucket: Bucket;
  /** The x axis: start of the first bucket, end of the last (ms). */
  min: number;
  max: number;
  /** Every bucket in [min, max), empty ones as 0, so one point is one bar in a sensible window. */
  starts: number[];
  units: number[];
}

/**
 * What the units chart shows, from the service's hourly sums (hour starts, ms) and the range
 * asked for (from/to in ms, either open). An open range ends now (or at the last hour with
 * data) and spans at least a day; a chosen range is shown as chosen.
 */
export function chartPlan(hours: Array<{ t: number; units: number }>, range: { from?: number; to?: number }, now: number): ChartPlan {
  const sorted = [...hours].sort((a, b) => a.t - b.t);
  const first = sorted[0]?.t;
  const last = sorted.at(-1)?.t;
  let end = range.to ?? Math.max(now, last === undefined ? now : last + HOUR);
  const start = range.from ?? Math.min(first ?? end - DAY, end - DAY);
  if (end <= start) end = start + DAY;
  const bucket = bucketFor(end - start);
  const starts: number[] = [];
  for (let b = bucketStart(start, bucket); b < end && starts.length < 10_000; b = nextBucket(b, bucket)) starts.push(b);
  const units = starts.map(() => 0);
  let i = 0;
  for (const p of sorted) {
    while (i + 1 < starts.length && starts[i + 1]! <= p.t) i++;
    // Every hour the service returned is in the range; an hour key that starts before the
    // first local bucket (zones with a half-hour offset) belongs to that first bucket.
    units[i]! += p.units;
  }
  return { bucket, min: starts[0]!, max: nextBucket(starts.at(-1)!, bucket), starts, units };
}
