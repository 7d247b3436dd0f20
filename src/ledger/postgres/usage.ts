// Usage totals over [from, to) for one namespace, through the (namespace, ts, id) index.
// sum(bigint) is numeric in PostgreSQL: exact at any volume. It is read as text and handed out
// as a number while ≤ 2^53−1, else as a decimal string.
import type pg from 'pg';
import type { GroupBy, UsageQuery, UsageResult, UsageStore } from '../types.ts';
import { effectiveHistory, type ClassificationPeriod } from '../../event/classification.ts';
import { checkUsageQuery, exactUnits, foldUsage, pageStart, rowsWanted, type Sums } from '../usage-fold.ts';

const GROUP_EXPR: Record<GroupBy, string> = {
  // Byte order, as SQLite sorts: the same keys in the same order on both engines, whatever the
  // database's locale.
  action: 'action COLLATE "C"',
  caller: 'caller COLLATE "C"',
  hour: '(ts / 3600000) * 3600000',
  day: '(ts / 86400000) * 86400000',
};

const KEY_TYPE: Record<GroupBy, string> = { action: 'text COLLATE "C"', caller: 'text COLLATE "C"', hour: 'int8', day: 'int8' };

const PLAIN_SUMS = 'count(*) AS n, count(*) FILTER (WHERE units > 0) AS bn, coalesce(sum(units), 0)::text AS u';

export const usageSql = (groupBy: GroupBy) =>
  `SELECT ${GROUP_EXPR[groupBy]} AS k, ${PLAIN_SUMS}
   FROM events WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4
   GROUP BY 1 ORDER BY 1`;

/**
 * One statement, so one snapshot: the page (the groups after a key, in key order, at most a limit:
 * t = 0) and the totals of the whole range summed by the database (t = 1), never by adding up
 * groups in this process. `groups` is the grouped statement; `sums`/`from` its select list and
 * source, reused ungrouped for the totals. $after and $limit are the page's parameters.
 */
function pageSql(groupBy: GroupBy, groups: string, totals: string, after: number): string {
  return `SELECT * FROM (SELECT 0 AS t, g.* FROM (${groups}) AS g WHERE g.k > $${after}::${KEY_TYPE[groupBy]} ORDER BY g.k LIMIT $${after + 1}) AS p
   UNION ALL SELECT 1 AS t, NULL, s.* FROM (${totals}) AS s`;
}

export const usagePageSql = (groupBy: GroupBy) =>
  pageSql(groupBy, usageSql(groupBy), `SELECT ${PLAIN_SUMS} FROM events WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4`, 5);

/**
 * The same sums with billable ones beside them: b is true when the event's action is billable
 * under the period in force at its ts (the last one with from_ms <= ts). Each period's start and
 * action list are bound parameters ($5 on: an int8 and a text[] per period, newest first); the
 * WHERE clause, and so the index plan, is unchanged.
 */
export function classifiedUsageSql(groupBy: GroupBy, history: readonly ClassificationPeriod[]): string {
  const { sums, source } = classifiedParts(groupBy, history);
  return `SELECT k, ${sums} FROM (${source}) AS e GROUP BY 1 ORDER BY 1`;
}

function classifiedParts(groupBy: GroupBy, history: readonly ClassificationPeriod[]) {
  const whens = [...history]
    .reverse()
    .map((p, i) => {
      const from = `$${5 + 2 * i}::int8`;
      const list = `$${6 + 2 * i}::text[]`;
      // Billable: listed billable, or (other = billable) not listed non-billable.
      return `WHEN ts >= ${from} THEN ${p.other === 'billable' ? `action <> ALL(${list})` : `action = ANY(${list})`}`;
    })
    .join(' ');
  return {
    sums: `count(*) AS n, coalesce(sum(units), 0)::text AS u,
     count(*) FILTER (WHERE b AND units > 0) AS bn, coalesce(sum(units) FILTER (WHERE b), 0)::text AS bu`,
    source: `SELECT ${GROUP_EXPR[groupBy]} AS k, units, CASE ${whens} ELSE true END AS b
         FROM events WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4`,
  };
}

export function classifiedUsagePageSql(groupBy: GroupBy, history: readonly ClassificationPeriod[]): string {
  const { sums, source } = classifiedParts(groupBy, history);
  return pageSql(groupBy, classifiedUsageSql(groupBy, history), `SELECT ${sums} FROM (${source}) AS e`, 5 + 2 * history.length);
}

function classificationParams(history: readonly ClassificationPeriod[]): unknown[] {
  return [...history].reverse().flatMap((p) => [p.from_ms, p.other === 'billable' ? p.non_billable : p.billable]);
}

type Row = { t: number; k: string | number | null; n: number; u: string; bn: number; bu?: string };

export class PgUsageStore implements UsageStore {
  private readonly pool: pg.Pool;
  private readonly history: () => Promise<ClassificationPeriod[]>;

  /** history: the stored classification periods, read on every query (one small table). */
  constructor(pool: pg.Pool, history: () => Promise<ClassificationPeriod[]> = async () => []) {
    this.pool = pool;
    this.history = history;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    checkUsageQuery(q);
    const stored = await this.history();
    const values = [q.namespace, q.from, q.to, q.asOf ?? Number.MAX_SAFE_INTEGER];
    const page = [pageStart(q.groupBy, q.after), rowsWanted(q)]; // LIMIT NULL is none
    // Nothing configured: every action is billable, so the billable sums are the sums (and the
    // billable events those with units).
    const { rows } = await this.pool.query<Row>(
      stored.length === 0
        ? { name: `usage-page-${q.groupBy}`, text: usagePageSql(q.groupBy), values: [...values, ...page] }
        : (() => {
            const history = effectiveHistory(stored);
            return { text: classifiedUsagePageSql(q.groupBy, history), values: [...values, ...classificationParams(history), ...page] };
          })(),
    );
    return foldUsage(
      q,
      rows.map((r) => ({ totals: Number(r.t) === 1, key: r.k, sums: sumsOf(r) })),
    );
  }
}

function sumsOf(r: Row): Sums {
  const u = BigInt(r.u);
  return {
    events: Number(r.n),
    units: exactUnits(u),
    billable_events: Number(r.bn),
    billable_units: exactUnits(r.bu === undefined ? u : BigInt(r.bu)),
  };
}
