// Usage totals over [from, to) for one namespace, through the (namespace, ts, id) index.
// sum(bigint) is numeric in PostgreSQL: exact at any volume. It is read as text and handed out
// as a number while ≤ 2^53−1, else as a decimal string.
import type pg from 'pg';
import type { GroupBy, Units, UsageQuery, UsageResult, UsageStore } from '../types.ts';
import { effectiveHistory, type ClassificationPeriod } from '../../event/classification.ts';
import { exactUnits } from '../common.ts';

const GROUP_EXPR: Record<GroupBy, string> = {
  // Byte order, as SQLite sorts: the same keys in the same order on both engines, whatever the
  // database's locale.
  action: 'action COLLATE "C"',
  caller: 'caller COLLATE "C"',
  hour: '(ts / 3600000) * 3600000',
  day: '(ts / 86400000) * 86400000',
};

export const usageSql = (groupBy: GroupBy) =>
  `SELECT ${GROUP_EXPR[groupBy]} AS k, count(*) AS n, count(*) FILTER (WHERE units > 0) AS bn, sum(units)::text AS u
   FROM events WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4
   GROUP BY 1 ORDER BY 1`;

/**
 * The same sums with billable ones beside them: b is true when the event's action is billable
 * under the period in force at its ts (the last one with from_ms <= ts). Each period's start and
 * action list are bound parameters ($5 on: an int8 and a text[] per period, newest first); the
 * WHERE clause, and so the index plan, is unchanged.
 */
export function classifiedUsageSql(groupBy: GroupBy, history: readonly ClassificationPeriod[]): string {
  const whens = [...history]
    .reverse()
    .map((p, i) => {
      const from = `$${5 + 2 * i}::int8`;
      const list = `$${6 + 2 * i}::text[]`;
      // Billable: listed billable, or (other = billable) not listed non-billable.
      return `WHEN ts >= ${from} THEN ${p.other === 'billable' ? `action <> ALL(${list})` : `action = ANY(${list})`}`;
    })
    .join(' ');
  return `SELECT k, count(*) AS n, sum(units)::text AS u,
     count(*) FILTER (WHERE b AND units > 0) AS bn, coalesce(sum(units) FILTER (WHERE b), 0)::text AS bu
   FROM (SELECT ${GROUP_EXPR[groupBy]} AS k, units, CASE ${whens} ELSE true END AS b
         FROM events WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4) AS e
   GROUP BY 1 ORDER BY 1`;
}

function classificationParams(history: readonly ClassificationPeriod[]): unknown[] {
  return [...history].reverse().flatMap((p) => [p.from_ms, p.other === 'billable' ? p.non_billable : p.billable]);
}


export class PgUsageStore implements UsageStore {
  private readonly pool: pg.Pool;
  private readonly history: () => Promise<ClassificationPeriod[]>;

  /** history: the stored classification periods, read on every query (one small table). */
  constructor(pool: pg.Pool, history: () => Promise<ClassificationPeriod[]> = async () => []) {
    this.pool = pool;
    this.history = history;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    if (!Object.hasOwn(GROUP_EXPR, q.groupBy)) throw new RangeError(`group_by must be one of ${Object.keys(GROUP_EXPR).join(', ')}`);
    const stored = await this.history();
    const values = [q.namespace, q.from, q.to, q.asOf ?? Number.MAX_SAFE_INTEGER];
    // Nothing configured: every action is billable, so the billable sums are the sums (and the
    // billable events those with units).
    const { rows } = await this.pool.query<{ k: string | number; n: number; u: string; bn?: number; bu?: string }>(
      stored.length === 0
        ? { name: `usage-${q.groupBy}`, text: usageSql(q.groupBy), values }
        : (() => {
            const history = effectiveHistory(stored);
            return { text: classifiedUsageSql(q.groupBy, history), values: [...values, ...classificationParams(history)] };
          })(),
    );
    let events = 0;
    let units = 0n;
    let billableEvents = 0;
    let billableUnits = 0n;
    const groups = rows.map((r) => {
      const u = BigInt(r.u);
      const bn = r.bn ?? r.n;
      const bu = r.bu === undefined ? u : BigInt(r.bu);
      events += r.n;
      units += u;
      billableEvents += bn;
      billableUnits += bu;
      const key = typeof r.k === 'number' ? new Date(r.k).toISOString() : r.k;
      return { key, events: r.n, units: exactUnits(u), billable_events: bn, billable_units: exactUnits(bu) };
    });
    return {
      namespace: q.namespace,
      from: q.from,
      to: q.to,
      group_by: q.groupBy,
      groups,
      totals: { events, units: exactUnits(units), billable_events: billableEvents, billable_units: exactUnits(billableUnits) },
    };
  }
}
