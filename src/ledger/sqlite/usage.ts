// Usage totals over [from, to) for one namespace, always through the (namespace, ts) index.
import type { Statement } from 'better-sqlite3';
import type { GroupBy, UsageQuery, UsageResult, UsageStore } from '../types.ts';
import { GROUP_BY } from '../types.ts';
import type { Db } from './db.ts';
import { checkUsageQuery, exactUnits, foldUsage, pageStart, rowsWanted, type Sums } from '../usage-fold.ts';
import { effectiveHistory, type ClassificationPeriod } from '../../event/classification.ts';

const GROUP_EXPR: Record<GroupBy, string> = {
  action: 'action',
  caller: 'caller',
  hour: '(ts / 3600000) * 3600000',
  day: '(ts / 86400000) * 86400000',
};

// SQLite's sum() is a signed 64-bit integer and fails with "integer overflow" past 2^63−1:
// 1,025 events of the maximum units (2^53−1) would break a namespace's totals for good. So units
// are summed in three 18-bit slices (units < 2^53 = 2^(3·18−1)), each of whose sums stays exact
// below 2^45 events (more than a SQLite file can hold), and put together as a bigint.
const SLICE_BITS = 18n;
const SLICE_MASK = (1 << Number(SLICE_BITS)) - 1;

const PLAIN_SUMS = `count(*) AS n, sum(units > 0) AS bn,
     sum(units & ${SLICE_MASK}) AS u0, sum((units >> ${SLICE_BITS}) & ${SLICE_MASK}) AS u1, sum(units >> ${2n * SLICE_BITS}) AS u2`;
const PLAIN_COLUMNS = 'n, bn, u0, u1, u2';

/** Every group of the range, in key order (grouped), or their totals in one row (k NULL). */
const plainSql = (groupBy: GroupBy, grouped: boolean) =>
  `SELECT ${grouped ? GROUP_EXPR[groupBy] : 'NULL'} AS k, ${PLAIN_SUMS}
   FROM events WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ?${grouped ? '\n   GROUP BY k ORDER BY k' : ''}`;

export const usageSql = (groupBy: GroupBy) => plainSql(groupBy, true);

/**
 * One statement, so one read: the page (groups after a key, in key order, at most a limit: t = 0)
 * and the totals of the whole range summed by the database (t = 1), never by adding up groups
 * in this process. Parameters: the groups' (…, after, limit), then the totals'.
 */
export function pageSql(groups: string, totals: string, columns: string): string {
  return `SELECT * FROM (SELECT 0 AS t, k, ${columns} FROM (${groups}) WHERE k > ? ORDER BY k LIMIT ?)
   UNION ALL SELECT 1 AS t, k, ${columns} FROM (${totals})`;
}

export const usagePageSql = (groupBy: GroupBy) => pageSql(plainSql(groupBy, true), plainSql(groupBy, false), PLAIN_COLUMNS);

/**
 * The same sums with billable ones beside them: b is 1 when the event's action is billable under
 * the period in force at its ts (the last one with from_ms <= ts), 0 otherwise. A billable event
 * also has units: one with 0 (a refused request) adds nothing to a bill, not even an event. The action lists
 * are bound parameters, one per action; the WHERE clause (and so the index plan) is unchanged.
 */
export function classifiedUsageSql(groupBy: GroupBy, history: readonly ClassificationPeriod[], grouped = true): string {
  const whens = [...history]
    .reverse()
    .map((p) => `WHEN ts >= ? THEN ${billableCondition(p)}`)
    .join(' ');
  return `SELECT k, count(*) AS n,
     sum(units & ${SLICE_MASK}) AS u0, sum((units >> ${SLICE_BITS}) & ${SLICE_MASK}) AS u1, sum(units >> ${2n * SLICE_BITS}) AS u2,
     sum(b * (units > 0)) AS bn, sum(b * (units & ${SLICE_MASK})) AS b0, sum(b * ((units >> ${SLICE_BITS}) & ${SLICE_MASK})) AS b1, sum(b * (units >> ${2n * SLICE_BITS})) AS b2
   FROM (SELECT ${grouped ? GROUP_EXPR[groupBy] : 'NULL'} AS k, units, CASE ${whens} ELSE 1 END AS b
         FROM events WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ?)${grouped ? '\n   GROUP BY k ORDER BY k' : ''}`;
}

export const classifiedUsagePageSql = (groupBy: GroupBy, history: readonly ClassificationPeriod[]) =>
  pageSql(classifiedUsageSql(groupBy, history, true), classifiedUsageSql(groupBy, history, false), 'n, u0, u1, u2, bn, b0, b1, b2');

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** Billable under p: listed billable, or (other = billable) not listed non-billable. */
function billableCondition(p: ClassificationPeriod): string {
  return p.other === 'billable'
    ? `(action NOT IN (${placeholders(p.non_billable.length)}))`
    : `(action IN (${placeholders(p.billable.length)}))`;
}

/** The bound values of classifiedUsageSql's CASE, in the order they appear. */
function classificationParams(history: readonly ClassificationPeriod[]): Array<string | number> {
  return [...history].reverse().flatMap((p) => [p.from_ms, ...(p.other === 'billable' ? p.non_billable : p.billable)]);
}

/** A statement's shape: the group, and per period (newest first) its kind and list length. */
const shapeOf = (groupBy: GroupBy, history: readonly ClassificationPeriod[]) =>
  `${groupBy}:${[...history]
    .reverse()
    .map((p) => (p.other === 'billable' ? `n${p.non_billable.length}` : `i${p.billable.length}`))
    .join(',')}`;

const MAX_CACHED_STATEMENTS = 64;

function unitsOf(r: { u0: bigint; u1: bigint; u2: bigint }): bigint {
  return r.u0 + (r.u1 << SLICE_BITS) + (r.u2 << (2n * SLICE_BITS));
}

type Row = {
  t: bigint;
  k: string | bigint | null;
  n: bigint;
  u0: bigint | null;
  u1: bigint | null;
  u2: bigint | null;
  bn?: bigint | null;
  b0?: bigint | null;
  b1?: bigint | null;
  b2?: bigint | null;
};

const n0 = (v: bigint | null | undefined) => v ?? 0n;

export class SqliteUsageStore implements UsageStore {
  private readonly db: Db;
  private readonly history: () => ClassificationPeriod[];
  private readonly stmts: Record<GroupBy, Statement>;
  private readonly classified = new Map<string, Statement>();

  /** history: the stored classification periods, read on every query (one small table). */
  constructor(db: Db, history: () => ClassificationPeriod[] = () => []) {
    this.db = db;
    this.history = history;
    const prepare = (g: GroupBy) => db.prepare(usagePageSql(g)).safeIntegers(true);
    this.stmts = Object.fromEntries(GROUP_BY.map((g) => [g, prepare(g)])) as Record<GroupBy, Statement>;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    checkUsageQuery(q);
    const stored = this.history();
    const asOf = q.asOf ?? Number.MAX_SAFE_INTEGER;
    const range = [q.namespace, q.from, q.to, asOf];
    const page = [pageStart(q.groupBy, q.after), rowsWanted(q) ?? -1]; // LIMIT -1 is none
    let rows: Row[];
    if (stored.length === 0) {
      // Nothing configured: every action is billable, so the billable sums are the sums.
      rows = this.stmts[q.groupBy].all(...range, ...page, ...range) as Row[];
    } else {
      const history = effectiveHistory(stored);
      const shape = shapeOf(q.groupBy, history);
      let stmt = this.classified.get(shape);
      if (!stmt) {
        if (this.classified.size >= MAX_CACHED_STATEMENTS) this.classified.clear();
        stmt = this.db.prepare(classifiedUsagePageSql(q.groupBy, history)).safeIntegers(true);
        this.classified.set(shape, stmt);
      }
      const cls = classificationParams(history);
      rows = stmt.all(...cls, ...range, ...page, ...cls, ...range) as Row[];
    }
    return foldUsage(
      q,
      rows.map((r) => ({ totals: r.t === 1n, key: typeof r.k === 'bigint' ? Number(r.k) : r.k, sums: sumsOf(r) })),
    );
  }
}

function sumsOf(r: Row): Sums {
  const u = unitsOf({ u0: n0(r.u0), u1: n0(r.u1), u2: n0(r.u2) });
  const bu = r.b0 === undefined ? u : unitsOf({ u0: n0(r.b0), u1: n0(r.b1), u2: n0(r.b2) });
  return {
    events: Number(r.n),
    units: exactUnits(u),
    billable_events: Number(r.bn === undefined ? r.n : n0(r.bn)),
    billable_units: exactUnits(bu),
  };
}
