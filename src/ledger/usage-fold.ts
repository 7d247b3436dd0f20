// What both usage stores do around their SQL: check the query, say where a page starts, and fold
// the rows of the one statement (the page's groups and the range's totals) into a UsageResult.
// The sums themselves are the engine's (SQLite slices units to stay exact; PostgreSQL sums numeric).
import { GROUP_BY, type GroupBy, type UsageGroup, type UsageQuery, type UsageResult, type Units } from './types.ts';

/** A sum of units: a number while exact in JSON (≤ 2^53−1), a decimal string beyond. */
export function exactUnits(n: bigint): Units {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

/** Refuses a query the SQL cannot take: an unknown group_by, a limit that is not a positive integer. */
export function checkUsageQuery(q: UsageQuery): void {
  if (!(GROUP_BY as readonly string[]).includes(q.groupBy)) throw new RangeError(`group_by must be one of ${GROUP_BY.join(', ')}`);
  if (q.limit !== undefined && !(Number.isSafeInteger(q.limit) && q.limit >= 1)) throw new RangeError('limit must be a positive integer');
}

/** Where the first page starts: below every key (text keys are never empty, buckets never negative). */
const FIRST: Record<GroupBy, string | number> = {
  action: '',
  caller: '',
  hour: Number.MIN_SAFE_INTEGER,
  day: Number.MIN_SAFE_INTEGER,
  month: Number.MIN_SAFE_INTEGER,
};

/** A page's start as the database compares keys: text as is, an hour or day by its ms. */
export function pageStart(groupBy: GroupBy, after: string | undefined): string | number {
  if (after === undefined) return FIRST[groupBy];
  if (typeof FIRST[groupBy] === 'string') return after;
  const ms = Date.parse(after);
  if (!Number.isSafeInteger(ms))
    throw new RangeError(`after must be a ${groupBy} key (an ISO 8601 date-time), not "${after.slice(0, 64)}"`);
  return ms;
}

/** How many group rows to ask for: one past the limit says whether more follow; null is no limit. */
export const rowsWanted = (q: UsageQuery): number | null => (q.limit === undefined ? null : q.limit + 1);

export type Sums = Omit<UsageGroup, 'key'>;

/** One row of the statement as the engine read it: a group (key: text, or an hour/day's ms) or the totals. */
export interface UsageRow {
  totals: boolean;
  key: string | number | null;
  sums: Sums;
}

export function foldUsage(q: UsageQuery, rows: UsageRow[]): UsageResult {
  const totals = rows.find((r) => r.totals)!;
  const groupRows = rows.filter((r) => !r.totals);
  const more = q.limit !== undefined && groupRows.length > q.limit;
  if (more) groupRows.length = q.limit!;
  const groups = groupRows.map((r) => ({ key: typeof r.key === 'number' ? new Date(r.key).toISOString() : (r.key as string), ...r.sums }));
  return {
    namespace: q.namespace,
    from: q.from,
    to: q.to,
    group_by: q.groupBy,
    groups,
    totals: totals.sums,
    ...(q.limit !== undefined && { more }),
  };
}
