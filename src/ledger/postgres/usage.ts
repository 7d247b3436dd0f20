// Usage on PostgreSQL: the SQL of each part of a usage question (src/ledger/rollups.ts plans them
// and folds their rows), all parts in ONE statement, so one snapshot and one round trip. Events
// are read through the (namespace, ts, id) index, the tail through the unsealed index and the
// seq and id ranges past the rollups or the snapshot, the rollups through their primary keys.
// Sums are numeric (exact at any volume), read as text.
import type pg from 'pg';
import type { UsageQuery, UsageResult, UsageStore } from '../types.ts';
import { effectiveHistory, type ClassificationPeriod } from '../../event/classification.ts';
import {
  checkRollupQuery,
  foldUsageParts,
  planUsage,
  splitParts,
  withoutSplit,
  type PartKey,
  type TaggedRow,
  type UsagePart,
} from '../rollups.ts';

export const KEY_EXPR: Record<PartKey, string> = {
  action: 'action',
  caller: 'caller',
  bucket: '(ts / 900000) * 900000',
  ts: 'ts',
};

/** Bound parameters of one statement, numbered as they are added. */
export class Params {
  readonly values: unknown[] = [];
  constructor(start: unknown[] = []) {
    this.values.push(...start);
  }
  add(v: unknown, cast = ''): string {
    this.values.push(v);
    return `$${this.values.length}${cast}`;
  }
}

/**
 * Whether an event's action is billable under the period in force at its ts (the last one with
 * from_ms <= ts); nothing configured: every action is. Each period's start and list are bound.
 */
export function billableExpr(stored: readonly ClassificationPeriod[], p: Params): string {
  if (stored.length === 0) return 'true';
  const whens = [...effectiveHistory(stored)].reverse().map((c) => {
    const from = p.add(c.from_ms, '::int8');
    const list = p.add(c.other === 'billable' ? c.non_billable : c.billable, '::text[]');
    return `WHEN ts >= ${from} THEN ${c.other === 'billable' ? `action <> ALL(${list})` : `action = ANY(${list})`}`;
  });
  return `CASE ${whens.join(' ')} ELSE true END`;
}

const SIGNED_SUMS = `coalesce(sum(s), 0)::text AS n, coalesce(sum(s * units), 0)::text AS u,
     coalesce(sum(s) FILTER (WHERE b AND units > 0), 0)::text AS bn, coalesce(sum(s * units) FILTER (WHERE b), 0)::text AS bu`;

const ROLLUP_SUMS = 'sum(n)::text AS n, sum(u)::text AS u, sum(bn)::text AS bn, sum(bu)::text AS bu';

/** The last ledger position the rollups hold (0: none), computed once per statement. */
const ROLLED_UP_TO = '(SELECT coalesce((SELECT e.last_seq FROM rollup_state s JOIN epochs e ON e.epoch = s.epoch), 0))';

/** One part as a SELECT of (k text, n, u, bn, bu), its values bound in p. */
export function partSql(part: UsagePart, ns: string, asOf: number, billable: string, p: Params): string {
  const nsP = p.add(ns);
  const from = p.add(part.from, '::int8');
  const to = p.add(part.to, '::int8');
  if (part.kind === 'rollup') {
    return part.table === 'buckets'
      ? `SELECT ${part.key === 'action' ? 'action' : 'bucket'}::text AS k, ${ROLLUP_SUMS} FROM usage_buckets
         WHERE namespace = ${nsP} AND bucket >= ${from} AND bucket < ${to} GROUP BY 1`
      : `SELECT caller::text AS k, ${ROLLUP_SUMS} FROM usage_caller_days WHERE namespace = ${nsP} AND day >= ${from} AND day < ${to} GROUP BY 1`;
  }
  const asOfP = p.add(asOf, '::int8');
  if (part.kind === 'events') {
    return `SELECT k::text, ${SIGNED_SUMS} FROM (SELECT ${KEY_EXPR[part.key]} AS k, units, ${billable} AS b, 1 AS s
        FROM events WHERE namespace = ${nsP} AND ts >= ${from} AND ts < ${to} AND id <= ${asOfP}) AS e GROUP BY 1`;
  }
  // The tail: events past the rollups up to the snapshot count +1, rolled-up events past the
  // snapshot −1; found through the unsealed index and the seq and id ranges, never the range.
  return `SELECT k::text, ${SIGNED_SUMS} FROM (SELECT ${KEY_EXPR[part.key]} AS k, units, ${billable} AS b,
        CASE WHEN seq IS NOT NULL AND seq <= ${ROLLED_UP_TO} THEN (CASE WHEN id > ${asOfP} THEN -1 ELSE 0 END)
             WHEN id <= ${asOfP} THEN 1 ELSE 0 END AS s
      FROM events WHERE (seq IS NULL OR seq > ${ROLLED_UP_TO} OR id > ${asOfP})
        AND namespace = ${nsP} AND ts >= ${from} AND ts < ${to}) AS e GROUP BY 1`;
}

type Row = { i: number; k: string | null; n: string | null; u: string | null; bn: string | null; bu: string | null };

const big = (v: string | null) => (v === null ? 0n : BigInt(v));

export class PgUsageStore implements UsageStore {
  private readonly pool: pg.Pool;
  private readonly history: () => Promise<ClassificationPeriod[]>;

  /** history: the stored classification periods, read on every query (one small table). */
  constructor(pool: pg.Pool, history: () => Promise<ClassificationPeriod[]> = async () => []) {
    this.pool = pool;
    this.history = history;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    checkRollupQuery(q);
    const parts = planUsage(q);
    if (parts.length === 0) return foldUsageParts(q, []);
    const stored = await this.history();
    const asOf = q.asOf ?? Number.MAX_SAFE_INTEGER;
    const first = await this.run(q, parts, stored, asOf);
    // Buckets a window edge cuts (none in today's zones) are read again from their events, in a
    // second statement: its snapshot may be a little later than the first's (a paged read's
    // as_of bound still applies to it).
    const again = splitParts(q, first);
    return foldUsageParts(q, again.length === 0 ? first : [...withoutSplit(first, again), ...(await this.run(q, again, stored, asOf))]);
  }

  /** The parts in one statement: one snapshot, one round trip. */
  private async run(q: UsageQuery, parts: UsagePart[], stored: ClassificationPeriod[], asOf: number): Promise<TaggedRow[]> {
    const p = new Params();
    const billable = billableExpr(stored, p);
    const text = parts
      .map((part, i) => `SELECT ${i} AS i, x.* FROM (${partSql(part, q.namespace, asOf, billable, p)}) AS x`)
      .join('\nUNION ALL ');
    const { rows } = await this.pool.query<Row>({ text, values: p.values });
    return rows.map((r): TaggedRow => {
      const key = parts[Number(r.i)]!.key;
      const time = key === 'bucket' || key === 'ts';
      return {
        bucketed: key === 'bucket',
        key: r.k === null ? null : time ? Number(r.k) : r.k,
        n: big(r.n),
        u: big(r.u),
        bn: big(r.bn),
        bu: big(r.bu),
      };
    });
  }
}
