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
  type LimitVersion,
  limitOfRow,
  nextLimitVersion,
  rowValues,
} from '../limits.ts';
import type { Db } from './db.ts';

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
