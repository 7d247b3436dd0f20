// Usage from rollups, once for both engines (docs/design.md "Usage rollups"). A question over
// [from, to) is split into parts that each engine answers with one plain SQL statement:
//   - the whole buckets (or whole UTC days, for callers) inside the range, from the rollups;
//   - a signed tail over the same span: events the rollups do not hold yet (epochs not rolled up,
//     unsealed events: bounded by the epoch size) added, and rolled-up events past the snapshot
//     (as_of) taken away, so that a paged read keeps the totals of its snapshot;
//   - the partial buckets (days) at the edges, from the events themselves.
// The engines only run the parts in one snapshot; this file plans them and folds their rows into
// the answer, exactly (bigint sums), in the customer's time zone.
import { type Window, keyOf, windowStart, zoneEdgesAligned } from '../usage/time-zone.ts';
import { exactUnits, pageStart } from './usage-fold.ts';
import { GROUP_BY, type GroupBy, type UsageGroup, type UsageQuery, type UsageResult } from './types.ts';

/**
 * 15 minutes: every UTC offset in use today is a multiple of it (+05:45 Kathmandu, +08:45 Eucla,
 * +12:45 Chatham), so every local hour, day and month in every zone starts on a bucket edge and is
 * a whole number of buckets. An edge that is not (historical local mean time) is read from events.
 */
export const BUCKET_MS = 900_000;
export const DAY_MS = 86_400_000;

/** What a part's rows are grouped by: a text key, or a bucket's (or an event's exact) time. */
export type PartKey = 'action' | 'caller' | 'bucket' | 'ts';

export type UsagePart =
  /** Whole buckets (table buckets) or whole UTC days (table callers) in [from, to), from the rollups. */
  | { kind: 'rollup'; table: 'buckets' | 'callers'; key: PartKey; from: number; to: number }
  /** What the rollups do not say about [from, to) at the snapshot: the signed tail. */
  | { kind: 'tail'; key: PartKey; from: number; to: number }
  /** Every event in [from, to) at the snapshot (position ≤ as_of). */
  | { kind: 'events'; key: PartKey; from: number; to: number };

/** One row of a part: a group's key and its sums (a tail's may be negative). */
export interface PartRow {
  key: string | number | null;
  n: bigint;
  u: bigint;
  bn: bigint;
  bu: bigint;
}

/** Where a time window grouping maps to: the zone's hours, days or months. */
const WINDOW: Partial<Record<GroupBy, Window>> = { hour: 'hour', day: 'day', month: 'month' };

/** The zone rules reach 0001-01-01 … 9999-12-31; a range's open ends (0, 2^53−1) are clamped to them. */
const LAST_INSTANT = 253_402_300_799_999;
const FIRST_INSTANT = -62_135_596_800_000;
const clamp = (ms: number) => Math.min(LAST_INSTANT, Math.max(FIRST_INSTANT, ms));

/**
 * Every UTC offset in the time-zone database since 1972 (Monrovia's −00:44:30 ended on
 * 1972-01-07) is a multiple of 15 minutes: checked over every zone the runtime knows by
 * scripts/check-zone-alignment.ts. So only the part of a range before 1973 needs the zone's rules
 * walked, which also keeps an open range (from 0, to 2^53−1) from walking eight thousand years.
 */
export const ALIGNED_SINCE = Date.UTC(1973, 0, 1);

function edgesAligned(tz: string, from: number, to: number): boolean {
  return from >= ALIGNED_SINCE || zoneEdgesAligned(tz, clamp(from), Math.min(clamp(to), ALIGNED_SINCE));
}

const floorTo = (ms: number, width: number) => Math.floor(ms / width) * width;
const ceilTo = (ms: number, width: number) => Math.ceil(ms / width) * width;

/** The parts that answer q, with the key each is grouped by. */
export function planUsage(q: UsageQuery): UsagePart[] {
  const tz = q.tz ?? 'UTC';
  const byCaller = q.groupBy === 'caller';
  const key: PartKey = q.groupBy === 'action' ? 'action' : byCaller ? 'caller' : 'bucket';
  // A window edge off the bucket grid (a historical offset): every event is read, grouped by its
  // exact time, so that no event is put in the wrong window.
  if (WINDOW[q.groupBy] && !edgesAligned(tz, q.from, q.to)) return [{ kind: 'events', key: 'ts', from: q.from, to: q.to }];
  const width = byCaller ? DAY_MS : BUCKET_MS;
  const a = ceilTo(q.from, width);
  const b = floorTo(q.to, width);
  if (a >= b) return q.from < q.to ? [{ kind: 'events', key, from: q.from, to: q.to }] : [];
  const parts: UsagePart[] = [
    { kind: 'rollup', table: byCaller ? 'callers' : 'buckets', key, from: a, to: b },
    { kind: 'tail', key, from: a, to: b },
  ];
  if (q.from < a) parts.push({ kind: 'events', key, from: q.from, to: a });
  if (b < q.to) parts.push({ kind: 'events', key, from: b, to: q.to });
  return parts;
}

interface Acc {
  n: bigint;
  u: bigint;
  bn: bigint;
  bu: bigint;
}

/** Text keys in UTF-8 byte order (code point order), as both engines sort them ("C" collation). */
export function byCodePoint(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Folds the parts' rows into the answer: groups in key order, one page of them, and the range's totals. */
export function foldUsageParts(q: UsageQuery, rows: readonly PartRow[]): UsageResult {
  const tz = q.tz ?? 'UTC';
  const window = WINDOW[q.groupBy];
  const groups = new Map<string | number, Acc>();
  const totals: Acc = { n: 0n, u: 0n, bn: 0n, bu: 0n };
  for (const r of rows) {
    const k = window ? windowStart(tz, window, Number(r.key)) : (r.key as string);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { n: 0n, u: 0n, bn: 0n, bu: 0n }));
    g.n += r.n;
    g.u += r.u;
    g.bn += r.bn;
    g.bu += r.bu;
    totals.n += r.n;
    totals.u += r.u;
    totals.bn += r.bn;
    totals.bu += r.bu;
  }
  let keys = [...groups.keys()].filter((k) => groups.get(k)!.n !== 0n); // a tail can cancel a group out
  if (window) {
    (keys as number[]).sort((x, y) => x - y);
    if (q.after !== undefined) {
      const after = pageStart(q.groupBy, q.after) as number;
      keys = keys.filter((k) => (k as number) > after);
    }
  } else {
    (keys as string[]).sort(byCodePoint);
    if (q.after !== undefined) keys = keys.filter((k) => byCodePoint(k as string, q.after!) > 0);
  }
  const more = q.limit !== undefined && keys.length > q.limit;
  if (more) keys.length = q.limit!;
  const out: UsageGroup[] = keys.map((k) => ({
    key: window ? keyOf(tz, window, k as number) : (k as string),
    ...sumsOf(groups.get(k)!),
  }));
  return {
    namespace: q.namespace,
    from: q.from,
    to: q.to,
    group_by: q.groupBy,
    ...(q.tz !== undefined && q.tz !== 'UTC' && { tz: q.tz }),
    groups: out,
    totals: sumsOf(totals),
    ...(q.limit !== undefined && { more }),
  };
}

function sumsOf(a: Acc): Omit<UsageGroup, 'key'> {
  return { events: Number(a.n), units: exactUnits(a.u), billable_events: Number(a.bn), billable_units: exactUnits(a.bu) };
}

/** Refuses a query the plan cannot take (before any work). */
export function checkRollupQuery(q: UsageQuery): void {
  if (!(GROUP_BY as readonly string[]).includes(q.groupBy)) throw new RangeError(`group_by must be one of ${GROUP_BY.join(', ')}`);
  if (q.limit !== undefined && !(Number.isSafeInteger(q.limit) && q.limit >= 1)) throw new RangeError('limit must be a positive integer');
  if (!(Number.isSafeInteger(q.from) && Number.isSafeInteger(q.to))) throw new RangeError('from and to must be integers of ms');
}
