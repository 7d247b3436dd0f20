// Usage from rollups, once for both engines (docs/design.md "Usage rollups"). A question over
// [from, to) is split into parts that each engine answers with one plain SQL statement:
//   - the whole buckets (or whole UTC days, for callers) inside the range, from the rollups;
//   - a signed tail over the same span: events the rollups do not hold yet (epochs not rolled up,
//     unsealed events: bounded by the epoch size) added, and rolled-up events past the snapshot
//     (as_of) taken away, so that a paged read keeps the totals of its snapshot;
//   - the partial buckets (days) at the edges, from the events themselves.
// The engines only run the parts in one snapshot; this file plans them and folds their rows into
// the answer, exactly (bigint sums), in the customer's time zone.
import { type Window, keyOf, windowStart } from '../usage/time-zone.ts';
import { exactUnits, pageStart } from './usage-fold.ts';
import { GROUP_BY, type GroupBy, type UsageGroup, type UsageQuery, type UsageResult } from './types.ts';

/**
 * 15 minutes: every UTC offset in use today is a multiple of it (+05:45 Kathmandu, +08:45 Eucla,
 * +12:45 Chatham), so every local hour, day and month in every zone starts on a bucket edge and is
 * a whole number of buckets. An edge that is not (historical local mean time) is read from events.
 */
export const BUCKET_MS = 900_000;
export const DAY_MS = 86_400_000;

/** What a part's rows are grouped by: a text key, a bucket's (or an event's exact) time, or nothing (totals). */
export type PartKey = 'action' | 'caller' | 'bucket' | 'ts' | 'none';

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

const floorTo = (ms: number, width: number) => Math.floor(ms / width) * width;
const ceilTo = (ms: number, width: number) => Math.ceil(ms / width) * width;

/**
 * The parts that answer q, with the key each is grouped by. Time groups read whole buckets from
 * the rollups (and the tail) by bucket, and the partial buckets at the edges by each event's own
 * time; a bucket that a window edge cuts (an offset or a change off the 15-minute grid: Newfoundland's
 * changes at 00:01 until 2011, local mean time) is read again from its events: see splitParts.
 */
export function planUsage(q: UsageQuery): UsagePart[] {
  const byCaller = q.groupBy === 'caller';
  const time = WINDOW[q.groupBy] !== undefined;
  const key: PartKey = q.groupBy === 'action' ? 'action' : byCaller ? 'caller' : 'bucket';
  const edgeKey: PartKey = time ? 'ts' : key;
  const width = byCaller ? DAY_MS : BUCKET_MS;
  const a = ceilTo(q.from, width);
  const b = floorTo(q.to, width);
  if (a >= b) return q.from < q.to ? [{ kind: 'events', key: edgeKey, from: q.from, to: q.to }] : [];
  const parts: UsagePart[] = [
    { kind: 'rollup', table: byCaller ? 'callers' : 'buckets', key, from: a, to: b },
    { kind: 'tail', key, from: a, to: b },
  ];
  if (q.from < a) parts.push({ kind: 'events', key: edgeKey, from: q.from, to: a });
  if (b < q.to) parts.push({ kind: 'events', key: edgeKey, from: b, to: q.to });
  return parts;
}

/** A part's rows, tagged with whether their keys are bucket starts (rollup and tail rows of time groups). */
export type TaggedRow = PartRow & { bucketed: boolean };

/**
 * The buckets among the first round's rows that a window edge cuts in q's zone, as parts that read
 * their events by exact time: none for every zone's offsets and changes in use today. The caller
 * runs them in the same snapshot where it can and replaces those buckets' rows (withoutSplit).
 */
export function splitParts(q: UsageQuery, rows: readonly TaggedRow[]): UsagePart[] {
  const window = WINDOW[q.groupBy];
  if (!window) return [];
  const tz = q.tz ?? 'UTC';
  if (tz === 'UTC') return [];
  const split = new Set<number>();
  for (const r of rows) {
    if (!r.bucketed) continue;
    const b = Number(r.key);
    if (!split.has(b) && windowStart(tz, window, b) !== windowStart(tz, window, b + BUCKET_MS - 1)) split.add(b);
  }
  return [...split].map((b) => ({ kind: 'events', key: 'ts', from: Math.max(b, q.from), to: Math.min(b + BUCKET_MS, q.to) }));
}

/** The first round's rows without those of the buckets splitParts reads again. */
export function withoutSplit(rows: readonly TaggedRow[], again: readonly UsagePart[]): TaggedRow[] {
  if (again.length === 0) return [...rows];
  const split = new Set(again.map((p) => floorTo(p.from, BUCKET_MS)));
  return rows.filter((r) => !(r.bucketed && split.has(Number(r.key))));
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
/**
 * A page of text groups read in the database (pagedInSql): each part's first limit + 1 keys after
 * the page's start, their totals apart, and the bound up to which the merged keys are complete.
 */
export interface PagedRows {
  /** Each part's totals (key null). */
  totals: readonly PartRow[];
  /** The smallest last key among parts that had more rows than they returned; null: none had. */
  bound: string | null;
}

/**
 * Whether q's groups are paged in the database: text keys with a limit. Time groups are bounded by
 * the buckets and folded here; callers (300,000 of them) must never all be read into memory.
 */
export const pagedInSql = (q: UsageQuery): boolean => q.limit !== undefined && WINDOW[q.groupBy] === undefined;

/**
 * Where a paged read goes on, or null when out is the whole page. Rows rolled up past a paged
 * snapshot are cancelled by the tail, so a part's limit + 1 keys can leave fewer than limit groups
 * up to the bound: the engine reads again after the bound, keeping the rows up to it (those past
 * it are read again), until the page is full or no part is cut short (the bound only rises).
 */
export function readOnFrom(
  q: UsageQuery,
  out: UsageResult,
  bound: string | null,
  rows: Array<{ key: string | number | null }>,
): string | null {
  if (bound === null || out.groups.length >= q.limit!) return null;
  // Rows past the bound are read again from it: keep only those up to it, or they count twice.
  let kept = 0;
  for (const r of rows) if (byCodePoint(r.key as string, bound) <= 0) rows[kept++] = r;
  rows.length = kept;
  return bound;
}

/**
 * The totals of a paged read when its first round already holds them (every group of every part
 * read, from the first key: no part cut short, no cursor): the rows' sums, so the engine need not
 * read every part again by 'none' (which doubled "all time by action"). Null: read the totals.
 * Relies on text keys never being NULL or '' (callers and actions are not empty), as the first
 * page's `k > ''` does: such a row would be in the totals by 'none' and not in these.
 */
export function totalsOfWholeRead(q: UsageQuery, bound: string | null, rows: readonly PartRow[]): PartRow[] | null {
  if (bound !== null || (q.after ?? '') !== '') return null;
  return rows.map((r) => ({ key: null, n: r.n, u: r.u, bn: r.bn, bu: r.bu }));
}

/** The smaller of two text keys in byte order (null: none). */
export const lowerBound = (a: string | null, b: string | null): string | null =>
  a === null ? b : b === null ? a : byCodePoint(a, b) <= 0 ? a : b;

export function foldUsageParts(q: UsageQuery, rows: readonly PartRow[], paged?: PagedRows): UsageResult {
  const tz = q.tz ?? 'UTC';
  const window = WINDOW[q.groupBy];
  const groups = new Map<string | number, Acc>();
  const totals: Acc = { n: 0n, u: 0n, bn: 0n, bu: 0n };
  const addTo = (x: Acc, r: PartRow) => {
    x.n += r.n;
    x.u += r.u;
    x.bn += r.bn;
    x.bu += r.bu;
  };
  for (const r of rows) {
    const k = window ? windowStart(tz, window, Number(r.key)) : (r.key as string);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { n: 0n, u: 0n, bn: 0n, bu: 0n }));
    addTo(g, r);
    if (!paged) addTo(totals, r);
  }
  if (paged) for (const r of paged.totals) addTo(totals, r);
  let keys = [...groups.keys()].filter((k) => groups.get(k)!.n !== 0n); // a tail can cancel a group out
  // A page read in the database is complete only up to the first part that was cut short.
  const cut = paged?.bound ?? null;
  if (cut !== null) keys = keys.filter((k) => byCodePoint(k as string, cut) <= 0);
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
  const more = q.limit !== undefined && (keys.length > q.limit || cut !== null);
  if (keys.length > q.limit!) keys.length = q.limit!;
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
