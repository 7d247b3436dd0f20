// Usage on SQLite: the SQL of each part of a usage question (src/ledger/rollups.ts plans them and
// folds their rows), run in one read transaction so that every part sees the same snapshot.
// Events are read through the (namespace, ts) index, the tail through the rowid range past the
// rollups, the rollups through their primary keys: never a full scan.
import type { Statement } from 'better-sqlite3';
import type { UsageQuery, UsageResult, UsageStore } from '../types.ts';
import type { Db } from './db.ts';
import {
  checkRollupQuery,
  foldUsageParts,
  lowerBound,
  pagedInSql,
  readOnFrom,
  planUsage,
  splitParts,
  totalsOfWholeRead,
  withoutSplit,
  type PartRow,
  type PartKey,
  type TaggedRow,
  type UsagePart,
} from '../rollups.ts';
import { effectiveHistory, type ClassificationPeriod } from '../../event/classification.ts';

// SQLite's sum() is a signed 64-bit integer and fails with "integer overflow" past 2^63−1:
// 1,025 events of the maximum units (2^53−1) would break a namespace's totals for good. So units
// are summed in three 18-bit slices (units < 2^53 = 2^(3·18−1)), each of whose sums stays exact
// below 2^45 events (more than a SQLite file can hold), and put together as a bigint.
export const SLICE_BITS = 18n;
export const SLICE_MASK = (1 << Number(SLICE_BITS)) - 1;
const S1 = Number(SLICE_BITS);
const S2 = 2 * S1;

export const KEY_EXPR: Record<PartKey, string> = {
  action: 'action',
  caller: 'caller',
  bucket: '(ts / 900000) * 900000',
  ts: 'ts',
  none: 'NULL',
};

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/**
 * Whether an event's action is billable (1) or not (0) under the period in force at its ts (the
 * last one with from_ms <= ts); nothing configured: every action is. The action lists are bound
 * parameters, one per action (params, in the order they appear).
 */
export function billableExpr(stored: readonly ClassificationPeriod[]): { sql: string; params: Array<string | number> } {
  if (stored.length === 0) return { sql: '1', params: [] };
  const history = [...effectiveHistory(stored)].reverse();
  const whens = history.map(
    (p) =>
      `WHEN ts >= ? THEN ${
        p.other === 'billable'
          ? `(action NOT IN (${placeholders(p.non_billable.length)}))`
          : `(action IN (${placeholders(p.billable.length)}))`
      }`,
  );
  return {
    sql: `CASE ${whens.join(' ')} ELSE 1 END`,
    params: history.flatMap((p) => [p.from_ms, ...(p.other === 'billable' ? p.non_billable : p.billable)]),
  };
}

/** The sums of the rows of `source` (k, units, b, s: the key, the units, billable 0/1, the sign), by k. */
export const SIGNED_SUMS = `sum(s) AS n,
     sum(s * (units & ${SLICE_MASK})) AS u0, sum(s * ((units >> ${S1}) & ${SLICE_MASK})) AS u1, sum(s * (units >> ${S2})) AS u2,
     sum(s * b * (units > 0)) AS bn,
     sum(s * b * (units & ${SLICE_MASK})) AS b0, sum(s * b * ((units >> ${S1}) & ${SLICE_MASK})) AS b1, sum(s * b * (units >> ${S2})) AS b2`;

/**
 * Corrections in sums (docs/design.md "Corrections in totals"): every row adds its own (caller,
 * action, units), +1, as before corrections (a void's units are 0); every correction takes the
 * version it replaces back, −1 at (prev_caller, prev_action, prev_units), and a void also takes
 * its own +1 back (−1, 0 units). So the heads' totals stay a plain sum over rows, and ordinary
 * rows are read exactly as before: only corrections have take-backs.
 * The take-backs of the corrections `where` selects from `from` (ts, seq, namespace, action,
 * caller, units), in one pass over them: each correction meets a constant pair.
 */
export const takeBacks = (from: string, where: string) =>
  `SELECT ts, seq, namespace, CASE x.w WHEN 1 THEN prev_action ELSE action END AS action,
       CASE x.w WHEN 1 THEN prev_caller ELSE caller END AS caller, CASE x.w WHEN 1 THEN prev_units ELSE 0 END AS units
     FROM ${from} CROSS JOIN (SELECT 1 AS w UNION ALL SELECT 2) AS x
     WHERE ${where} AND kind <> 0 AND (x.w = 1 OR kind = 1)`;

/** Through the partial index of corrections only: a range's take-backs never read ordinary events. */
export const CORRECTIONS = 'events INDEXED BY events_corrections_ts';

/**
 * Every row of [from, to) at the snapshot, by key, as before corrections (takeBackEventsSql nets
 * them). Parameters: billable's, then namespace, from, to, asOf.
 */
export const eventsSql = (key: PartKey, billable: string) =>
  `SELECT k, ${SIGNED_SUMS} FROM (SELECT ${KEY_EXPR[key]} AS k, units, ${billable} AS b, 1 AS s
     FROM events WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ?) GROUP BY k`;

/**
 * What the rollups (up to ledger position R) do not say about [from, to) at the snapshot asOf:
 * events past R up to asOf count +1, rolled-up events past asOf −1. Read along the rowid from
 * min(asOf, R): bounded by what was written since the rollups or the snapshot, never the range.
 * Rows as before corrections (takeBackTailSql nets them).
 * Parameters: billable's, then R, asOf, asOf, then min(asOf, R), namespace, from, to.
 */
export const tailSql = (key: PartKey, billable: string) =>
  `SELECT k, ${SIGNED_SUMS} FROM (SELECT ${KEY_EXPR[key]} AS k, units, ${billable} AS b,
       CASE WHEN seq <= ? THEN (CASE WHEN seq > ? THEN -1 ELSE 0 END) WHEN seq <= ? THEN 1 ELSE 0 END AS s
     FROM events NOT INDEXED WHERE seq > ? AND namespace = ? AND ts >= ? AND ts < ?) WHERE s <> 0 GROUP BY k`;

/**
 * The take-backs of the corrections among the rows eventsSql reads (−1 each), through the partial
 * index of corrections only: a statement of its own, so ordinary rows are read exactly as before
 * corrections. Parameters: as eventsSql's.
 */
export const takeBackEventsSql = (key: PartKey, billable: string) =>
  `SELECT k, ${SIGNED_SUMS} FROM (SELECT ${KEY_EXPR[key]} AS k, units, ${billable} AS b, -1 AS s
     FROM (${takeBacks(CORRECTIONS, 'namespace = ? AND ts >= ? AND ts < ? AND seq <= ?')})) GROUP BY k`;

/** The take-backs of the corrections among the rows tailSql reads (the opposite sign). Parameters: as tailSql's. */
export const takeBackTailSql = (key: PartKey, billable: string) =>
  `SELECT k, ${SIGNED_SUMS} FROM (SELECT ${KEY_EXPR[key]} AS k, units, ${billable} AS b,
       -(CASE WHEN seq <= ? THEN (CASE WHEN seq > ? THEN -1 ELSE 0 END) WHEN seq <= ? THEN 1 ELSE 0 END) AS s
     FROM (${takeBacks(CORRECTIONS, 'seq > ? AND namespace = ? AND ts >= ? AND ts < ?')})) WHERE s <> 0 GROUP BY k`;

const ROLLUP_SUMS = 'sum(n) AS n, sum(u0) AS u0, sum(u1) AS u1, sum(u2) AS u2, sum(bn) AS bn, sum(b0) AS b0, sum(b1) AS b1, sum(b2) AS b2';

/** Whole buckets or UTC days of [from, to) from the rollups. Parameters: namespace, from, to. */
export const rollupSql = (table: 'buckets' | 'callers', key: PartKey) =>
  table === 'buckets'
    ? `SELECT ${key === 'none' ? 'NULL' : key === 'action' ? 'action' : 'bucket'} AS k, ${ROLLUP_SUMS} FROM usage_buckets
       WHERE namespace = ? AND bucket >= ? AND bucket < ? GROUP BY k`
    : `SELECT ${key === 'none' ? 'NULL' : 'caller'} AS k, ${ROLLUP_SUMS} FROM usage_caller_days WHERE namespace = ? AND day >= ? AND day < ? GROUP BY k`;

/** A part's first rows after a text key, in byte order (BINARY collation): one page's worth. */
export const pageOf = (sql: string) => `SELECT * FROM (${sql}) WHERE k > ? ORDER BY k LIMIT ?`;

/** The last ledger position the rollups hold (0: none). */
export const ROLLED_UP_TO = `SELECT coalesce((SELECT e.last_seq FROM rollup_state s JOIN epochs e ON e.epoch = s.epoch), 0) AS r`;

type Row = { k: string | bigint | null; n: bigint; u0: bigint; u1: bigint; u2: bigint; bn: bigint; b0: bigint; b1: bigint; b2: bigint };

export const unitsOf = (a: bigint | null, b: bigint | null, c: bigint | null) =>
  (a ?? 0n) + ((b ?? 0n) << SLICE_BITS) + ((c ?? 0n) << (2n * SLICE_BITS));

const MAX_CACHED_STATEMENTS = 128;

export class SqliteUsageStore implements UsageStore {
  private readonly db: Db;
  private readonly history: () => ClassificationPeriod[];
  private readonly stmts = new Map<string, Statement>();
  private readonly rolledUpTo: Statement;

  /** history: the stored classification periods, read on every query (one small table). */
  constructor(db: Db, history: () => ClassificationPeriod[] = () => []) {
    this.db = db;
    this.history = history;
    this.rolledUpTo = db.prepare(ROLLED_UP_TO).pluck().safeIntegers(true);
  }

  private stmt(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      if (this.stmts.size >= MAX_CACHED_STATEMENTS) this.stmts.clear();
      s = this.db.prepare(sql).safeIntegers(true);
      this.stmts.set(sql, s);
    }
    return s;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    checkRollupQuery(q);
    const parts = planUsage(q);
    const b = billableExpr(this.history());
    const asOf = q.asOf ?? Number.MAX_SAFE_INTEGER;
    // One read transaction: the rollups' reach and every part from the same snapshot.
    return this.db.transaction(() => {
      const r = Number(this.rolledUpTo.get() as bigint);
      if (pagedInSql(q)) {
        // Text groups a page at a time in the database (never every caller in memory): each
        // part's first limit + 1 keys after the page's start, and each part's totals apart.
        let totals: PartRow[] | undefined;
        const rows: TaggedRow[] = [];
        for (let after: string | null = q.after ?? ''; ; ) {
          const page = { after, rows: q.limit! + 1 };
          let bound: string | null = null;
          for (const p of parts) {
            for (const got of this.part(p, b, r, asOf, q.namespace, page)) {
              if (got.length === page.rows) bound = lowerBound(bound, got.at(-1)!.key as string);
              rows.push(...got);
            }
          }
          totals ??=
            totalsOfWholeRead(q, bound, rows) ?? parts.flatMap((p) => this.part({ ...p, key: 'none' }, b, r, asOf, q.namespace).flat());
          const out = foldUsageParts(q, rows, { totals, bound });
          after = readOnFrom(q, out, bound, rows);
          if (after === null) return out;
        }
      }
      const run = (ps: UsagePart[]) => ps.flatMap((p) => this.part(p, b, r, asOf, q.namespace).flat());
      const first = run(parts);
      const again = splitParts(q, first); // buckets a window edge cuts (none in today's zones)
      return foldUsageParts(q, again.length === 0 ? first : [...withoutSplit(first, again), ...run(again)]);
    })();
  }

  private part(
    p: UsagePart,
    b: { sql: string; params: Array<string | number> },
    r: number,
    asOf: number,
    ns: string,
    page?: { after: string; rows: number },
  ): TaggedRow[][] {
    const paged = (sql: string) => (page ? pageOf(sql) : sql);
    const tail = page ? [page.after, page.rows] : [];
    // Events and the tail: the rows as before corrections, and apart the take-backs of the
    // corrections among them (a list each: a page's bound is per statement).
    let lists: Row[][];
    if (p.kind === 'rollup') lists = [this.stmt(paged(rollupSql(p.table, p.key))).all(ns, p.from, p.to, ...tail) as Row[]];
    else if (p.kind === 'events') {
      const params = [...b.params, ns, p.from, p.to, asOf, ...tail];
      lists = [eventsSql, takeBackEventsSql].map((sql) => this.stmt(paged(sql(p.key, b.sql))).all(...params) as Row[]);
    } else {
      const params = [...b.params, r, asOf, asOf, Math.min(asOf, r), ns, p.from, p.to, ...tail];
      lists = [tailSql, takeBackTailSql].map((sql) => this.stmt(paged(sql(p.key, b.sql))).all(...params) as Row[]);
    }
    const bucketed = p.key === 'bucket';
    return lists.map((rows) =>
      rows.map((x) => ({
        bucketed,
        key: typeof x.k === 'bigint' ? Number(x.k) : x.k,
        n: x.n ?? 0n,
        u: unitsOf(x.u0, x.u1, x.u2),
        bn: x.bn ?? 0n,
        bu: unitsOf(x.b0, x.b1, x.b2),
      })),
    );
  }
}
