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
  lowerBound,
  pagedInSql,
  readOnFrom,
  totalsOfWholeRead,
  type PartRow,
} from '../rollups.ts';

export const KEY_EXPR: Record<PartKey, string> = {
  action: 'action',
  caller: 'caller',
  bucket: '(ts / 900000) * 900000',
  ts: 'ts',
  none: 'NULL::text',
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

/** Where the rollups reach, and the last sealed position, read first in the question's snapshot. */
export const REACH = `SELECT coalesce((SELECT e.last_seq FROM rollup_state s JOIN epochs e ON e.epoch = s.epoch), 0) AS r,
  coalesce((SELECT max(last_seq) FROM epochs), 0) AS sealed`;

/**
 * Where the rollups reach in this snapshot: r, the last ledger position they hold, and sealed, the
 * last position any epoch holds (r < sealed only while rollups catch up).
 */
export interface Reach {
  r: number;
  sealed: number;
}

/** One part as a SELECT of (k text, n, u, bn, bu), its values bound in p. */
export function partSql(part: UsagePart, ns: string, asOf: number, billable: string, p: Params, reach: Reach): string {
  const nsP = p.add(ns);
  const from = p.add(part.from, '::int8');
  const to = p.add(part.to, '::int8');
  if (part.kind === 'rollup') {
    const none = part.key === 'none';
    return part.table === 'buckets'
      ? `SELECT ${none ? 'NULL' : part.key === 'action' ? 'action' : 'bucket'}::text AS k, ${ROLLUP_SUMS} FROM usage_buckets
         WHERE namespace = ${nsP} AND bucket >= ${from} AND bucket < ${to} GROUP BY 1`
      : `SELECT ${none ? 'NULL' : 'caller'}::text AS k, ${ROLLUP_SUMS} FROM usage_caller_days WHERE namespace = ${nsP} AND day >= ${from} AND day < ${to} GROUP BY 1`;
  }
  const asOfP = p.add(asOf, '::int8');
  const outer = (sides: string) =>
    `SELECT k::text, ${SIGNED_SUMS} FROM (SELECT ${KEY_EXPR[part.key]} AS k, units, ${billable} AS b, s FROM (${sides}) AS x) AS e GROUP BY 1`;
  if (part.kind === 'events') {
    // Every row through (namespace, ts, id), as before corrections; the take-backs through the
    // partial index of corrections only, so ordinary events are read once, as before.
    const where = `namespace = ${nsP} AND ts >= ${from} AND ts < ${to} AND id <= ${asOfP}`;
    return outer(`SELECT ts, action, caller, units, 1 AS s FROM events WHERE ${where}
        UNION ALL SELECT ts, action, caller, units, -1 FROM (${takeBacks(where)}) AS t`);
  }
  // The tail, in disjoint branches each found through its own index, never the range's (the
  // range's columns are compared as expressions so the planner cannot pick events_namespace_ts,
  // which would read every event of the range): unsealed events up to the snapshot (+1, the
  // partial index on seq IS NULL); sealed events the rollups do not reach yet (+1, the seq range:
  // only while they catch up); rolled-up events past the snapshot (−1, the id range: only for a
  // paged read's snapshot). The take-backs of each branch's corrections (opposite sign) through
  // the partial index of corrections only.
  const inRange = `namespace || '' = ${nsP} AND ts + 0 >= ${from} AND ts + 0 < ${to}`;
  const corrections = `namespace = ${nsP} AND ts >= ${from} AND ts < ${to}`;
  const branch = (cond: string, sign: 1 | -1) =>
    `SELECT ts, action, caller, units, ${sign} AS s FROM events WHERE ${cond} AND ${inRange}
      UNION ALL SELECT ts, action, caller, units, ${-sign} FROM (${takeBacks(`${cond} AND ${corrections}`)}) AS t`;
  const branches = [branch(`seq IS NULL AND id <= ${asOfP}`, 1)];
  if (reach.sealed > reach.r) {
    const r = p.add(reach.r, '::int8');
    const sealed = p.add(reach.sealed, '::int8');
    branches.push(branch(`seq > ${r} AND seq <= ${sealed} AND id <= ${asOfP}`, 1));
  }
  if (asOf < Number.MAX_SAFE_INTEGER) {
    const r = p.add(reach.r, '::int8');
    branches.push(branch(`id > ${asOfP} AND seq <= ${r}`, -1));
  }
  return outer(branches.join('\n      UNION ALL '));
}

/**
 * Corrections in sums (docs/design.md "Corrections in totals"): every row adds its own (caller,
 * action, units), +1, as before corrections (a void's units are 0); every correction takes the
 * version it replaces back, −1 at (prev_caller, prev_action, prev_units), and a void also takes
 * its own +1 back (−1, 0 units). So the heads' totals stay a plain sum over rows, and ordinary
 * rows are read exactly as before: only corrections have take-backs.
 * The take-backs of the corrections `where` selects (namespace, ts, action, caller, units, seq,
 * id), in one pass over them.
 */
export const takeBacks = (where: string) =>
  `SELECT e.namespace, e.ts, v.action, v.caller, v.units, e.seq, e.id FROM events AS e
     CROSS JOIN LATERAL (VALUES (1, e.prev_action, e.prev_caller, e.prev_units), (2, e.action, e.caller, 0::int8)) AS v(w, action, caller, units)
     WHERE ${where} AND e.kind <> 0 AND (v.w = 1 OR e.kind = 1)`;

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
    // One snapshot for the rollups' reach and every part (REPEATABLE READ): the tail's branches
    // are planned with the reach as values, so each takes its own small index.
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const head = await client.query<{ r: string; sealed: string }>(REACH);
      const reach = { r: Number(head.rows[0]!.r), sealed: Number(head.rows[0]!.sealed) };
      if (pagedInSql(q)) {
        // Text groups a page at a time in the database (never every caller in memory): each
        // part's first limit + 1 keys after the page's start ("C" order), and its totals apart.
        let totals: PartRow[] | undefined;
        const rows: Awaited<ReturnType<typeof this.run>> = [];
        for (let after: string | null = q.after ?? ''; ; ) {
          const page = { after, rows: q.limit! + 1 };
          const got = await this.run(client, q, parts, stored, asOf, reach, page);
          let bound: string | null = null;
          for (let i = 0; i < parts.length; i++) {
            const mine = got.filter((r) => r.part === i);
            if (mine.length === page.rows) bound = lowerBound(bound, mine.at(-1)!.key as string);
          }
          rows.push(...got);
          totals ??=
            totalsOfWholeRead(q, bound, rows) ??
            (await this.run(
              client,
              q,
              parts.map((p) => ({ ...p, key: 'none' as const })),
              stored,
              asOf,
              reach,
            ));
          const out = foldUsageParts(q, rows, { totals, bound });
          after = readOnFrom(q, out, bound, rows);
          if (after === null) {
            await client.query('COMMIT');
            return out;
          }
        }
      }
      const first = await this.run(client, q, parts, stored, asOf, reach);
      // Buckets a window edge cuts (none in today's zones) are read again from their events.
      const again = splitParts(q, first);
      const rows = again.length === 0 ? first : [...withoutSplit(first, again), ...(await this.run(client, q, again, stored, asOf, reach))];
      await client.query('COMMIT');
      return foldUsageParts(q, rows);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  /** The parts in one statement (inside the question's snapshot). */
  private async run(
    client: pg.PoolClient,
    q: UsageQuery,
    parts: UsagePart[],
    stored: ClassificationPeriod[],
    asOf: number,
    reach: Reach,
    page?: { after: string; rows: number },
  ): Promise<Array<TaggedRow & { part: number }>> {
    const p = new Params();
    const billable = billableExpr(stored, p);
    const pageOf = (sql: string) =>
      page
        ? `SELECT * FROM (${sql}) AS y WHERE y.k COLLATE "C" > ${p.add(page.after)} ORDER BY y.k COLLATE "C" LIMIT ${p.add(page.rows, '::int8')}`
        : sql;
    // Each part in parentheses: a page's ORDER BY and LIMIT stay its own inside the UNION ALL.
    const text = parts
      .map((part, i) => `(SELECT ${i} AS i, x.* FROM (${pageOf(partSql(part, q.namespace, asOf, billable, p, reach))}) AS x)`)
      .join('\nUNION ALL ');
    const { rows } = await client.query<Row>({ text, values: p.values });
    return rows.map((r): TaggedRow & { part: number } => {
      const key = parts[Number(r.i)]!.key;
      const time = key === 'bucket' || key === 'ts';
      return {
        part: Number(r.i),
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
