// Meters (issue 23, docs/api.md "Meters"), once for both engines: what a meter is, how a change
// becomes a version, and how a meter's usage question over [from, to) is split into parts that
// each engine answers with plain SQL (src/ledger/{sqlite,postgres}/meters.ts), then folded here
// into windows of the customer's time zone, exactly (bigint sums). Pure: no I/O.
//
// Parts, like usage (rollups.ts), per version segment of the meter:
//   - whole 15-minute buckets from usage_buckets (sum, count, max, min, latest; by action or not),
//     or whole UTC days from usage_caller_days (sum, count, unique_count; by caller or not, for a
//     meter of every action, when each day lies inside one window);
//   - the tail over the same span: events the rollups do not hold yet (bounded by the epoch size);
//   - the partial buckets (days) at the edges, and everything else, from the events themselves.
// Corrections (docs/design.md "Corrections in totals"): sum, count and unique_count are sums over
// both sides of each row (a correction takes the version it replaces back), so every part above
// holds net values. max, min and latest are not sums: they read chain heads, and a bucket holding
// a correction is read from its events (part corrected), never from its rollup row.
import { ACTION_PATTERN, MAX_ACTION_LENGTH } from '../event/limits.ts';
import { keyOf, type Window, windowStart, windowsOf, zoneEdgesAligned } from '../usage/time-zone.ts';
import { BUCKET_MS, byCodePoint, DAY_MS } from './rollups.ts';
import { exactUnits } from './usage-fold.ts';
import type { Units } from './types.ts';

export const AGGREGATIONS = ['sum', 'count', 'max', 'min', 'unique_count', 'latest'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];
export const METER_GROUP_BY = ['caller', 'action'] as const;
export type MeterGroupBy = (typeof METER_GROUP_BY)[number];

/** Bounded and linear: one anchored class with a counted repeat. */
export const METER_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
export const MAX_METER_ACTIONS = 100;
/** Versions of one meter, and meters of one owner: each PUT is a row, kept forever. */
export const MAX_METER_VERSIONS = 1000;
export const MAX_METERS_PER_OWNER = 1000;
/** Entries (windows × groups) one usage answer may hold. */
export const MAX_METER_ENTRIES = 10_000;

export interface MeterVersion {
  name: string;
  version: number;
  aggregation: Aggregation;
  /** null: every action. */
  actions: string[] | null;
  /** Applies to events with ts ≥ from_ms (until a later version's from_ms). */
  from_ms: number;
  created_at: number;
}

export interface MeterInput {
  aggregation: Aggregation;
  actions: string[] | null;
  /** Omitted: now. */
  fromMs?: number;
  retroactive?: boolean;
}

/** A refused meter change or question: the field, the rule, and the status it answers with. */
export class MeterError extends RangeError {
  readonly field: string;
  readonly rule: string;
  readonly status: 400 | 404 | 409;
  constructor(field: string, rule: string, message: string, status: 400 | 404 | 409 = 400) {
    super(message);
    this.name = 'MeterError';
    this.field = field;
    this.rule = rule;
    this.status = status;
  }
}

export function checkMeterName(name: unknown): string {
  if (typeof name !== 'string' || !METER_NAME_PATTERN.test(name))
    throw new MeterError(
      'name',
      `pattern:${METER_NAME_PATTERN.source}`,
      `name must be 1 to 64 characters of ${METER_NAME_PATTERN.source}, not ${JSON.stringify(String(name).slice(0, 70))}`,
    );
  return name;
}

/** The action list as stored: each in the action alphabet, no duplicates, in code point order. */
export function checkMeterActions(actions: unknown): string[] | null {
  if (actions === undefined || actions === null) return null;
  if (!Array.isArray(actions) || actions.length < 1 || actions.length > MAX_METER_ACTIONS)
    throw new MeterError(
      'actions',
      `max_items:${MAX_METER_ACTIONS}`,
      `actions must list 1 to ${MAX_METER_ACTIONS} actions (omit it to count every action)`,
    );
  for (const [i, a] of actions.entries()) {
    if (typeof a !== 'string' || a.length > MAX_ACTION_LENGTH || !ACTION_PATTERN.test(a))
      throw new MeterError(
        `actions.${i}`,
        `pattern:${ACTION_PATTERN.source}`,
        `actions.${i} must be an action: 1 to ${MAX_ACTION_LENGTH} characters of ${ACTION_PATTERN.source}`,
      );
  }
  return [...new Set(actions as string[])].sort(byCodePoint);
}

const sameActions = (a: string[] | null, b: string[] | null) => (a === null || b === null ? a === b : a.join('\n') === b.join('\n'));

/**
 * The version a PUT adds to `existing` (versions in order), or null when it changes nothing (the
 * definition in force now, asked again without a from). A meter keeps its aggregation (a sum and
 * a max of one window cannot be added up): another aggregation is another meter. A from before
 * now changes answers already given, so it needs retroactive: true.
 */
export function nextVersion(existing: readonly MeterVersion[], name: string, input: MeterInput, now: number): MeterVersion | null {
  const latest = existing.at(-1);
  if (latest && latest.aggregation !== input.aggregation)
    throw new MeterError(
      'aggregation',
      'unchanged',
      `aggregation: meter ${name} is a ${latest.aggregation} meter and keeps it (a window cannot mix aggregations); create a meter with another name for ${input.aggregation}`,
      409,
    );
  const from = input.fromMs ?? now;
  if (from < now && input.retroactive !== true)
    throw new MeterError(
      'from',
      'requires:retroactive=true',
      `from ${new Date(from).toISOString()} is in the past: a version from then changes answers already given; send "retroactive": true to do that on purpose`,
    );
  if (latest && input.fromMs === undefined && latest.from_ms <= now && sameActions(latest.actions, input.actions)) return null;
  if (existing.length >= MAX_METER_VERSIONS)
    throw new MeterError(
      'name',
      `max_versions:${MAX_METER_VERSIONS}`,
      `meter ${name} has ${MAX_METER_VERSIONS} versions, the most kept`,
      409,
    );
  return {
    name,
    version: (latest?.version ?? 0) + 1,
    aggregation: input.aggregation,
    actions: input.actions,
    from_ms: from,
    created_at: now,
  };
}

/** Where each version is in force: a later version governs every event at or after its from. */
export interface Segment {
  from: number;
  to: number;
  actions: string[] | null;
}

export function segmentsOf(versions: readonly MeterVersion[]): Segment[] {
  let segs: Segment[] = [];
  for (const v of [...versions].sort((a, b) => a.version - b.version)) {
    segs = segs.filter((s) => s.from < v.from_ms).map((s) => ({ ...s, to: Math.min(s.to, v.from_ms) }));
    segs.push({ from: v.from_ms, to: Number.MAX_SAFE_INTEGER, actions: v.actions });
  }
  return segs.sort((a, b) => a.from - b.from);
}

export interface MeterUsageQuery {
  owner: string;
  name: string;
  namespace: string;
  from: number;
  to: number;
  window: Window;
  /** Canonical IANA name (checkTimeZone). */
  tz: string;
  groupBy?: MeterGroupBy;
  maxEntries?: number;
}

export interface MeterWindow {
  start: string;
  end: string;
  value: Units;
  group?: string;
}

export interface MeterUsageResult {
  meter: string;
  aggregation: Aggregation;
  namespace: string;
  tz: string;
  window: Window;
  from: string;
  to: string;
  group_by?: MeterGroupBy;
  windows: MeterWindow[];
  /** The aggregation over the whole range; null when no event counts. */
  total: Units | null;
}

/** What a part's row time `t` is: a bucket's start, a UTC day's start, or an event's own ts. */
export type PartTime = 'bucket' | 'day' | 'ts';

export interface MeterPart {
  /**
   * corrected: the buckets of [from, to) that hold a correction, their chain heads (max, min, latest).
   * distinct: the caller days of a unique_count without groups, answered as counts (DistinctCounts).
   */
  kind: 'buckets' | 'callers' | 'distinct' | 'tail' | 'events' | 'corrected';
  from: number;
  to: number;
  /** Only these actions (null: every one). */
  actions: string[] | null;
  time: PartTime;
  /** What `g` of a row is. */
  group: MeterGroupBy | null;
  /** Rows per caller too (`c`): unique_count. */
  callers: boolean;
}

/** One row of a part: its time, group and caller (or null), and what the aggregation needs. */
export interface MeterRow {
  t: number;
  g: string | null;
  c: string | null;
  n: bigint;
  u: bigint;
  mn: number | null;
  mx: number | null;
  /** The latest event: its ts, its place in ledger order, its units. */
  lt: number | null;
  lo: bigint | null;
  lu: number | null;
}

/** Aggregations that are sums: corrections are netted as signed rows; the others read chain heads. */
export const isSum = (agg: Aggregation): boolean => agg === 'sum' || agg === 'count' || agg === 'unique_count';

const floorTo = (ms: number, width: number) => Math.floor(ms / width) * width;
const ceilTo = (ms: number, width: number) => Math.ceil(ms / width) * width;

/** Every UTC day in [a, b) lies inside one window of the zone (so a caller day counts in one). */
function daysInsideWindows(tz: string, window: Window, a: number, b: number): boolean {
  if (window === 'hour') return false;
  if (tz === 'UTC') return true;
  for (let d = a; d < b; d += DAY_MS) if (windowStart(tz, window, d) !== windowStart(tz, window, d + DAY_MS - 1)) return false;
  return true;
}

/** The parts that answer q for a meter of `aggregation` with these versions. */
export function planMeter(q: MeterUsageQuery, aggregation: Aggregation, versions: readonly MeterVersion[]): MeterPart[] {
  const parts: MeterPart[] = [];
  const group = q.groupBy ?? null;
  const callers = aggregation === 'unique_count';
  const callerMode = callers || group === 'caller';
  for (const s of segmentsOf(versions)) {
    const A = Math.max(s.from, q.from);
    const B = Math.min(s.to, q.to);
    if (A >= B) continue;
    const base = { actions: s.actions, group, callers };
    // A window edge off the bucket grid (a historical offset): events by their exact time.
    const aligned = zoneEdgesAligned(q.tz, A, B);
    const edgeTime: PartTime = aligned ? 'bucket' : 'ts';
    const events = (from: number, to: number) => {
      if (from < to) parts.push({ kind: 'events', from, to, time: edgeTime, ...base });
    };
    if (callerMode) {
      const viaDays = s.actions === null && group !== 'action' && (aggregation === 'sum' || aggregation === 'count' || callers);
      const a = ceilTo(A, DAY_MS);
      const b = floorTo(B, DAY_MS);
      if (viaDays && aligned && a < b && daysInsideWindows(q.tz, q.window, a, b)) {
        parts.push({ kind: 'callers', from: a, to: b, time: 'day', ...base }, { kind: 'tail', from: a, to: b, time: 'day', ...base });
        events(A, a);
        events(b, B);
      } else events(A, B);
      continue;
    }
    const a = ceilTo(A, BUCKET_MS);
    const b = floorTo(B, BUCKET_MS);
    if (!aligned || a >= b) {
      events(A, B);
      continue;
    }
    parts.push({ kind: 'buckets', from: a, to: b, time: 'bucket', ...base }, { kind: 'tail', from: a, to: b, time: 'bucket', ...base });
    // A rollup row's max, min and latest cannot take a replaced version back: the buckets holding
    // a correction are read from their chain heads (and left out of the buckets and the tail).
    if (!isSum(aggregation)) parts.push({ kind: 'corrected', from: a, to: b, time: 'bucket', ...base });
    events(A, a);
    events(b, B);
  }
  // Distinct callers cannot be added up, but they can be counted in SQL: one caller-days part
  // (one version segment) is asked for its counts instead of its rows (DistinctCounts).
  const days = parts.filter((p) => p.kind === 'callers');
  if (callers && group === null && days.length === 1) days[0]!.kind = 'distinct';
  return parts;
}

/**
 * What a `distinct` part gives instead of its 300,000 rows (30 days × 10,000 callers): the
 * distinct callers with n > 0 per window and over the part, counted by the engine in SQL, and the
 * caller-day rows of the callers that the other parts' rows name ("touched": the tail and the
 * edges, whose rows may add to or take back from them). A rolled-up caller day never has n < 0
 * (a take-back is rolled up with or after the version it takes back, on that version's day and
 * caller), so an untouched caller counts in a window exactly where one of its rows there has n > 0.
 */
export interface DistinctCounts {
  /** Per window (distinctRanges): its start within the part and its count. */
  windows: Array<{ t: number; k: number }>;
  /** Over the whole part; left out (undefined) when one window is the whole part (totalApart). */
  total?: number;
  /** The touched callers' rows of the part (t: the day; c: the caller; n). */
  touched: MeterRow[];
}

/** The part's days cut by the windows (each UTC day lies inside one window: planMeter checked). */
export function distinctRanges(part: MeterPart, windows: ReturnType<typeof meterWindows>): Array<{ from: number; to: number }> {
  const out: Array<{ from: number; to: number }> = [];
  for (const w of windows) {
    const from = Math.max(w.start, part.from);
    const to = Math.min(w.end, part.to);
    if (from < to) out.push({ from, to });
  }
  return out;
}

/** Whether the part's total needs a count of its own: not when one range is the whole part. */
export const totalApart = (part: MeterPart, ranges: ReadonlyArray<{ from: number; to: number }>): boolean =>
  !(ranges.length === 1 && ranges[0]!.from === part.from && ranges[0]!.to === part.to);

/** The callers the rows of the parts other than `distinct` name: read from the rollups one by one. */
export function touchedCallers(rows: readonly MeterRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) if (r.c !== null) seen.add(r.c);
  return [...seen].sort(byCodePoint);
}

interface Acc {
  n: bigint;
  u: bigint;
  mn: number | null;
  mx: number | null;
  lt: number | null;
  lo: bigint | null;
  lu: number | null;
  /** unique_count: each caller's net events (a caller counts where it is > 0). */
  callers: Map<string, bigint> | null;
}

const newAcc = (callers: boolean): Acc => ({
  n: 0n,
  u: 0n,
  mn: null,
  mx: null,
  lt: null,
  lo: null,
  lu: null,
  callers: callers ? new Map() : null,
});

function add(x: Acc, r: MeterRow): void {
  x.n += r.n;
  x.u += r.u;
  if (r.mn !== null && (x.mn === null || r.mn < x.mn)) x.mn = r.mn;
  if (r.mx !== null && (x.mx === null || r.mx > x.mx)) x.mx = r.mx;
  // Latest by event time, ties by ledger order.
  if (r.lt !== null && (x.lt === null || r.lt > x.lt || (r.lt === x.lt && r.lo! > x.lo!))) {
    x.lt = r.lt;
    x.lo = r.lo;
    x.lu = r.lu;
  }
  if (x.callers && r.c !== null) x.callers.set(r.c, (x.callers.get(r.c) ?? 0n) + r.n);
}

function valueIn(aggregation: Aggregation, x: Acc): Units | null {
  if (x.n === 0n) return null;
  switch (aggregation) {
    case 'sum':
      return exactUnits(x.u);
    case 'count':
      return exactUnits(x.n);
    case 'max':
      return x.mx;
    case 'min':
      return x.mn;
    case 'latest':
      return x.lu;
    case 'unique_count': {
      let n = 0;
      for (const v of x.callers!.values()) if (v > 0n) n++;
      return n;
    }
  }
}

/** The instant `ms` as RFC 3339 with the zone's offset there (the offset of its local hour). */
export function instantIn(tz: string, ms: number): string {
  const hourKey = keyOf(tz, 'hour', ms);
  if (hourKey.endsWith('Z')) return new Date(ms).toISOString().replace('.000Z', 'Z');
  const m = /([+-])(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(hourKey)!;
  const offset = (m[1] === '-' ? -1 : 1) * ((Number(m[2]) * 60 + Number(m[3])) * 60 + Number(m[4] ?? 0)) * 1000;
  const local = new Date(ms + offset).toISOString();
  return `${local.slice(0, -1).replace(/\.000$/, '')}${m[0]}`;
}

/** Refuses a question before any work: more windows (times the known groups) than an answer holds. */
export function meterWindows(q: MeterUsageQuery, knownGroups: number): Array<{ start: number; end: number; key: string }> {
  const max = q.maxEntries ?? MAX_METER_ENTRIES;
  let ws: Array<{ start: number; end: number; key: string }>;
  try {
    ws = windowsOf(q.tz, q.window, q.from, q.to, max);
  } catch (e) {
    throw new MeterError('window', `max_entries:${max}`, `${(e as Error).message}: use a larger window or a shorter range`);
  }
  if (ws.length * knownGroups > max)
    throw new MeterError(
      'group_by',
      `max_entries:${max}`,
      `group_by: ${ws.length} windows × ${knownGroups} groups is more than the ${max} entries one answer holds; use a larger window or a shorter range`,
    );
  return ws;
}

/** Folds the parts' rows into the answer: entries per window and group in time and key order, and the total. */
export function foldMeter(
  q: MeterUsageQuery,
  aggregation: Aggregation,
  windows: ReturnType<typeof meterWindows>,
  rows: readonly MeterRow[],
  distinct?: DistinctCounts,
): MeterUsageResult {
  const max = q.maxEntries ?? MAX_METER_ENTRIES;
  const callers = aggregation === 'unique_count';
  const index = new Map<number, number>();
  windows.forEach((w, i) => index.set(i === 0 ? windowStart(q.tz, q.window, w.start) : w.start, i));
  const windowOf = (t: number) => {
    const i = index.get(windowStart(q.tz, q.window, t));
    if (i === undefined) throw new Error(`a row at ${t} is outside every window of [${q.from}, ${q.to})`);
    return i;
  };
  const perWindow: Array<Map<string, Acc>> = windows.map(() => new Map());
  const total = newAcc(callers);
  // Callers counted in SQL (distinct): every caller with a row n > 0, less the touched ones among
  // them, which are counted below from all their rows like the callers of every other part.
  const base = windows.map(() => 0);
  let baseTotal = 0;
  if (distinct) {
    for (const w of distinct.windows) base[windowOf(w.t)]! += w.k;
    baseTotal = distinct.total ?? distinct.windows.reduce((sum, w) => sum + w.k, 0);
    const inWindow = windows.map(() => new Set<string>());
    const inTotal = new Set<string>();
    for (const r of distinct.touched)
      if (r.n > 0n) {
        inWindow[windowOf(r.t)]!.add(r.c!);
        inTotal.add(r.c!);
      }
    inWindow.forEach((s, i) => {
      base[i]! -= s.size;
    });
    baseTotal -= inTotal.size;
  }
  let entries = 0;
  for (const r of distinct ? [...rows, ...distinct.touched] : rows) {
    if (r.n === 0n && r.u === 0n) continue; // nothing (an amendment of units alone nets n to 0, not u)
    const i = windowOf(r.t);
    const key = r.g ?? '';
    let acc = perWindow[i]!.get(key);
    if (!acc) {
      if (++entries > max)
        throw new MeterError(
          'group_by',
          `max_entries:${max}`,
          `the answer would hold more than ${max} entries (windows × groups); use a larger window or a shorter range`,
        );
      perWindow[i]!.set(key, (acc = newAcc(callers)));
    }
    add(acc, r);
    add(total, r);
  }
  const out: MeterWindow[] = [];
  const counted = (x: Acc, more: number): Units | null => {
    const value = ((valueIn(aggregation, x) as number | null) ?? 0) + more; // unique_count: a number
    return value === 0 ? null : value;
  };
  windows.forEach((w, i) => {
    const groups = perWindow[i]!;
    if (distinct && base[i]! > 0 && !groups.has('')) groups.set('', newAcc(callers));
    const keys = [...groups.keys()].sort(byCodePoint);
    for (const k of keys) {
      const value = distinct ? counted(groups.get(k)!, base[i]!) : valueIn(aggregation, groups.get(k)!);
      if (value === null) continue;
      out.push({
        start: instantIn(q.tz, w.start),
        end: instantIn(q.tz, w.end),
        value,
        ...(q.groupBy && { group: k }),
      });
    }
  });
  return {
    meter: q.name,
    aggregation,
    namespace: q.namespace,
    tz: q.tz,
    window: q.window,
    from: instantIn(q.tz, q.from),
    to: instantIn(q.tz, q.to),
    ...(q.groupBy && { group_by: q.groupBy }),
    windows: out,
    total: distinct ? counted(total, baseTotal) : valueIn(aggregation, total),
  };
}

/** How many groups an answer can have at most, when known before reading (for refusing early). */
export function knownGroups(q: MeterUsageQuery, versions: readonly MeterVersion[]): number {
  if (q.groupBy !== 'action') return 1;
  const listed = new Set<string>();
  for (const s of segmentsOf(versions)) {
    if (s.actions === null) return 1;
    for (const a of s.actions) listed.add(a);
  }
  return Math.max(1, listed.size);
}

/** What a usage question needs before any read: the meter's aggregation, the windows, the parts (or a MeterError). */
export function planMeterQuery(
  q: MeterUsageQuery,
  versions: readonly MeterVersion[],
): { aggregation: Aggregation; windows: ReturnType<typeof meterWindows>; parts: MeterPart[] } {
  if (versions.length === 0) throw new MeterError('name', 'exists', `no meter ${q.name}`, 404);
  if (!(Number.isSafeInteger(q.from) && Number.isSafeInteger(q.to) && q.from < q.to))
    throw new MeterError('from', 'before_to', 'from must be before to (the range is [from, to))');
  const aggregation = versions[0]!.aggregation;
  const windows = meterWindows(q, knownGroups(q, versions));
  return { aggregation, windows, parts: planMeter(q, aggregation, versions) };
}

export interface MeterStore {
  /**
   * Adds the version a PUT asks for (nextVersion), in one transaction; `version` is the new one,
   * or the one in force when nothing changed (created false).
   */
  define(owner: string, name: string, input: MeterInput, now: number): Promise<{ version: MeterVersion; created: boolean }>;
  /** Every version of the owner's meter, oldest first (empty: no such meter). */
  versions(owner: string, name: string): Promise<MeterVersion[]>;
  /** The owner's meters, each as its latest version, by name. */
  list(owner: string): Promise<MeterVersion[]>;
  /** The meter's usage over [from, to) in windows of the zone (MeterError when refused). */
  usage(q: MeterUsageQuery): Promise<MeterUsageResult>;
}

/** A stored row of the meters table, as both engines read it. */
export interface MeterRowStored {
  name: string;
  version: number | string;
  aggregation: string;
  actions: string | null;
  from_ms: number | string;
  created_at: number | string;
}

export function meterOfRow(r: MeterRowStored): MeterVersion {
  return {
    name: r.name,
    version: Number(r.version),
    aggregation: r.aggregation as Aggregation,
    actions: r.actions === null ? null : (JSON.parse(r.actions) as string[]),
    from_ms: Number(r.from_ms),
    created_at: Number(r.created_at),
  };
}
