// Usage totals over [from, to) for one namespace, through the (namespace, ts, id) index.
// sum(bigint) is numeric in PostgreSQL: exact at any volume. It is read as text and handed out
// as a number while ≤ 2^53−1, else as a decimal string.
import type pg from 'pg';
import type { GroupBy, Units, UsageQuery, UsageResult, UsageStore } from '../types.ts';

const GROUP_EXPR: Record<GroupBy, string> = {
  // Byte order, as SQLite sorts: the same keys in the same order on both engines, whatever the
  // database's locale.
  action: 'action COLLATE "C"',
  caller: 'caller COLLATE "C"',
  hour: '(ts / 3600000) * 3600000',
  day: '(ts / 86400000) * 86400000',
};

export const usageSql = (groupBy: GroupBy) =>
  `SELECT ${GROUP_EXPR[groupBy]} AS k, count(*) AS n, sum(units)::text AS u
   FROM events WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4
   GROUP BY 1 ORDER BY 1`;

function exact(n: bigint): Units {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

export class PgUsageStore implements UsageStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    if (!Object.hasOwn(GROUP_EXPR, q.groupBy)) throw new RangeError(`group_by must be one of ${Object.keys(GROUP_EXPR).join(', ')}`);
    const { rows } = await this.pool.query<{ k: string | number; n: number; u: string }>({
      name: `usage-${q.groupBy}`,
      text: usageSql(q.groupBy),
      values: [q.namespace, q.from, q.to, q.asOf ?? Number.MAX_SAFE_INTEGER],
    });
    let events = 0;
    let units = 0n;
    const groups = rows.map((r) => {
      const u = BigInt(r.u);
      events += r.n;
      units += u;
      const key = typeof r.k === 'number' ? new Date(r.k).toISOString() : r.k;
      return { key, events: r.n, units: exact(u) };
    });
    return {
      namespace: q.namespace,
      from: q.from,
      to: q.to,
      group_by: q.groupBy,
      groups,
      totals: { events, units: exact(units) },
    };
  }
}
