// Usage totals over [from, to) for one namespace, always through the (namespace, ts) index.
import type { Statement } from 'better-sqlite3';
import type { GroupBy, Units, UsageQuery, UsageResult, UsageStore } from '../types.ts';
import { GROUP_BY } from '../types.ts';
import type { Db } from './db.ts';

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

export const usageSql = (groupBy: GroupBy) =>
  `SELECT ${GROUP_EXPR[groupBy]} AS k, count(*) AS n,
     sum(units & ${SLICE_MASK}) AS u0, sum((units >> ${SLICE_BITS}) & ${SLICE_MASK}) AS u1, sum(units >> ${2n * SLICE_BITS}) AS u2
   FROM events WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ?
   GROUP BY k ORDER BY k`;

function unitsOf(r: { u0: bigint; u1: bigint; u2: bigint }): bigint {
  return r.u0 + (r.u1 << SLICE_BITS) + (r.u2 << (2n * SLICE_BITS));
}

function exact(n: bigint): Units {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

export class SqliteUsageStore implements UsageStore {
  private readonly stmts: Record<GroupBy, Statement<[string, number, number, number]>>;

  constructor(db: Db) {
    const prepare = (g: GroupBy) => db.prepare<[string, number, number, number]>(usageSql(g)).safeIntegers(true);
    this.stmts = Object.fromEntries(GROUP_BY.map((g) => [g, prepare(g)])) as Record<GroupBy, Statement<[string, number, number, number]>>;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    const rows = this.stmts[q.groupBy].all(q.namespace, q.from, q.to, q.asOf ?? Number.MAX_SAFE_INTEGER) as Array<{ k: string | bigint; n: bigint; u0: bigint; u1: bigint; u2: bigint }>;
    let events = 0n;
    let units = 0n;
    const groups = rows.map((r) => {
      const u = unitsOf(r);
      events += r.n;
      units += u;
      const key = typeof r.k === 'bigint' ? new Date(Number(r.k)).toISOString() : r.k;
      return { key, events: Number(r.n), units: exact(u) };
    });
    return {
      namespace: q.namespace,
      from: q.from,
      to: q.to,
      group_by: q.groupBy,
      groups,
      totals: { events: Number(events), units: exact(units) },
    };
  }
}
