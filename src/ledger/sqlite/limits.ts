// Limits on SQLite: the limits table (src/ledger/limits.ts says what a version is). A change is
// checked and appended in one immediate transaction, so two writers cannot both add version n.
import type { Statement } from 'better-sqlite3';
import {
  checkLimitCount,
  inForceAll,
  LIMIT_COLUMNS,
  type LimitInput,
  type LimitRowStored,
  type LimitStore,
  type LimitTally,
  type LimitVersion,
  limitOfRow,
  nextLimitVersion,
  rowValues,
  type SealedAsk,
  TALLY_BUCKET_MS,
} from '../limits.ts';
import type { Db } from './db.ts';
import { ROLLED_UP_TO, SLICE_BITS, SLICE_MASK, takeBacks, unitsOf } from './usage.ts';

const S1 = Number(SLICE_BITS);
const S2 = 2 * S1;
/** Signed sums of (units, s) rows, units in three slices as usage sums them (exact past 2^63). */
const SUMS = `sum(s) AS n, sum(s * (units & ${SLICE_MASK})) AS u0, sum(s * ((units >> ${S1}) & ${SLICE_MASK})) AS u1, sum(s * (units >> ${S2})) AS u2`;

/**
 * The not-rolled-up events of a namespace at positions (lo, asOf], net of corrections, by action
 * and bucket: along the rowid (seq is the id on SQLite), never the namespace's range, so a read
 * costs what was written since the last one (lo is the larger of the reach and the last read).
 */
const TAIL = `SELECT action, (ts / ${TALLY_BUCKET_MS}) * ${TALLY_BUCKET_MS} AS bucket, ${SUMS} FROM (
    SELECT action, ts, units, 1 AS s FROM events NOT INDEXED WHERE seq > @lo AND seq <= @asOf AND namespace = @ns
    UNION ALL
    SELECT action, ts, units, -1 AS s FROM (${takeBacks('events NOT INDEXED', 'seq > @lo AND seq <= @asOf AND namespace = @ns')}))
  GROUP BY action, bucket`;

/** A limit's rollup buckets (the primary key's range), its actions filtered here rather than in JavaScript. */
const sealedSql = (actions: number | null) =>
  `SELECT sum(n) AS n, sum(u0) AS u0, sum(u1) AS u1, sum(u2) AS u2 FROM usage_buckets
   WHERE namespace = ? AND bucket >= ? AND bucket < ?${actions === null ? '' : ` AND action IN (${Array(actions).fill('?').join(', ')})`}`;

type Sums = { n: bigint | null; u0: bigint | null; u1: bigint | null; u2: bigint | null };

/** The latest version of each limit of an owner (one namespace's, or all). */
const LATEST = `SELECT ${LIMIT_COLUMNS} FROM limits AS l WHERE owner = ?
  AND version = (SELECT max(version) FROM limits WHERE owner = l.owner AND id = l.id)`;

export class SqliteLimitStore implements LimitStore {
  private readonly db: Db;
  private readonly stmts = new Map<string, Statement>();

  constructor(db: Db) {
    this.db = db;
  }

  private stmt(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /** Statements over sums, read as bigints (one per count of actions, at most MAX_ACTIONS of a limit). */
  private bigStmt(sql: string): Statement {
    const key = `big:${sql}`;
    let s = this.stmts.get(key);
    if (!s) this.stmts.set(key, (s = this.db.prepare(sql).safeIntegers(true)));
    return s;
  }

  async reach(): Promise<number> {
    return Number(this.bigStmt(ROLLED_UP_TO).pluck().get() as bigint);
  }

  async tally(namespace: string, reach: number, after: number, asOf: number, asks: readonly SealedAsk[]): Promise<LimitTally> {
    return this.db.transaction((): LimitTally => {
      const r = Number(this.bigStmt(ROLLED_UP_TO).pluck().get() as bigint);
      if (r !== reach) return { reach: r, tail: [], sealed: [] };
      const rows = this.bigStmt(TAIL).all({ lo: Math.max(after, reach), asOf, ns: namespace }) as Array<
        Sums & { action: string; bucket: bigint }
      >;
      const tail = rows.map((x) => ({ action: x.action, bucket: Number(x.bucket), n: x.n ?? 0n, units: unitsOf(x.u0, x.u1, x.u2) }));
      const sealed = asks.map((a) => {
        const x = this.bigStmt(sealedSql(a.actions === null ? null : a.actions.length)).get(
          namespace,
          a.from,
          a.to,
          ...(a.actions ?? []),
        ) as Sums;
        return { n: x.n ?? 0n, units: unitsOf(x.u0, x.u1, x.u2) };
      });
      return { reach: r, tail, sealed };
    })();
  }

  private versionsSync(owner: string, id: string): LimitVersion[] {
    return (
      this.stmt(`SELECT ${LIMIT_COLUMNS} FROM limits WHERE owner = ? AND id = ? ORDER BY version`).all(owner, id) as LimitRowStored[]
    ).map(limitOfRow);
  }

  private insert(owner: string, v: LimitVersion): void {
    this.stmt(`INSERT INTO limits (owner, ${LIMIT_COLUMNS}) VALUES (${Array(15).fill('?').join(', ')})`).run(
      ...rowValues(owner, v, (d) => (d ? 1 : 0)),
    );
  }

  async define(owner: string, id: string, input: LimitInput, now: number): Promise<{ version: LimitVersion; created: boolean }> {
    return this.db
      .transaction(() => {
        const existing = this.versionsSync(owner, id);
        if (existing.length === 0 || existing.at(-1)!.deleted)
          checkLimitCount(this.stmt(`SELECT count(*) FROM (${LATEST}) WHERE deleted = 0`).pluck().get(owner) as number);
        const v = nextLimitVersion(existing, id, input, now);
        if (!v) return { version: existing.at(-1)!, created: false };
        this.insert(owner, v);
        return { version: v, created: true };
      })
      .immediate();
  }

  async remove(owner: string, id: string, now: number): Promise<LimitVersion | null> {
    return this.db
      .transaction(() => {
        const existing = this.versionsSync(owner, id);
        const latest = existing.at(-1);
        if (!latest || latest.deleted) return null;
        const v = nextLimitVersion(existing, id, { ...latest, deleted: true }, now)!;
        this.insert(owner, v);
        return v;
      })
      .immediate();
  }

  async versions(owner: string, id: string): Promise<LimitVersion[]> {
    return this.versionsSync(owner, id);
  }

  async list(owner: string, namespace?: string): Promise<LimitVersion[]> {
    const rows =
      namespace === undefined
        ? this.stmt(`${LATEST} AND deleted = 0 ORDER BY id`).all(owner)
        : this.stmt(`${LATEST} AND deleted = 0 AND namespace = ? ORDER BY id`).all(owner, namespace);
    return (rows as LimitRowStored[]).map(limitOfRow);
  }

  async inForce(owner: string, namespace: string, at: number): Promise<LimitVersion[]> {
    // Every version of each limit that ever named the namespace (a later version may move it to
    // another namespace or delete it), then the one in force at `at` per limit.
    const rows = this.stmt(
      `SELECT ${LIMIT_COLUMNS} FROM limits WHERE owner = ? AND id IN (SELECT id FROM limits WHERE owner = ? AND namespace = ?) ORDER BY id, version`,
    ).all(owner, owner, namespace) as LimitRowStored[];
    return inForceAll(rows.map(limitOfRow), namespace, at);
  }
}
