// Limits on PostgreSQL: the limits table (src/ledger/limits.ts says what a version is). A change
// is checked and appended in one transaction holding a lock per owner, so two instances cannot
// both add version n or both pass the count of limits.
import type pg from 'pg';
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
import { transaction } from './db.ts';

const LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('limits:' || $1, 0))";
const LATEST = `SELECT DISTINCT ON (id COLLATE "C") ${LIMIT_COLUMNS} FROM limits WHERE owner = $1 ORDER BY id COLLATE "C", version DESC`;

export class PgLimitStore implements LimitStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  private async versionsOn(client: pg.Pool | pg.PoolClient, owner: string, id: string): Promise<LimitVersion[]> {
    const { rows } = await client.query<LimitRowStored>({
      text: `SELECT ${LIMIT_COLUMNS} FROM limits WHERE owner = $1 AND id = $2 ORDER BY version`,
      values: [owner, id],
    });
    return rows.map(limitOfRow);
  }

  private async insert(client: pg.PoolClient, owner: string, v: LimitVersion): Promise<void> {
    await client.query({
      text: `INSERT INTO limits (owner, ${LIMIT_COLUMNS}) VALUES (${Array.from({ length: 15 }, (_, i) => `$${i + 1}`).join(', ')})`,
      values: rowValues(owner, v, (d) => d),
    });
  }

  async define(owner: string, id: string, input: LimitInput, now: number): Promise<{ version: LimitVersion; created: boolean }> {
    return transaction(this.pool, async (client) => {
      await client.query(LOCK, [owner]);
      const existing = await this.versionsOn(client, owner, id);
      if (existing.length === 0 || existing.at(-1)!.deleted) {
        const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM (${LATEST}) AS l WHERE NOT deleted`, [owner]);
        checkLimitCount(Number(rows[0]!.n));
      }
      const v = nextLimitVersion(existing, id, input, now);
      if (!v) return { version: existing.at(-1)!, created: false };
      await this.insert(client, owner, v);
      return { version: v, created: true };
    });
  }

  async remove(owner: string, id: string, now: number): Promise<LimitVersion | null> {
    return transaction(this.pool, async (client) => {
      await client.query(LOCK, [owner]);
      const existing = await this.versionsOn(client, owner, id);
      const latest = existing.at(-1);
      if (!latest || latest.deleted) return null;
      const v = nextLimitVersion(existing, id, { ...latest, deleted: true }, now)!;
      await this.insert(client, owner, v);
      return v;
    });
  }

  async versions(owner: string, id: string): Promise<LimitVersion[]> {
    return this.versionsOn(this.pool, owner, id);
  }

  async list(owner: string, namespace?: string): Promise<LimitVersion[]> {
    const { rows } = await this.pool.query<LimitRowStored>({
      text: `SELECT * FROM (${LATEST}) AS l WHERE NOT deleted${namespace === undefined ? '' : ' AND namespace = $2'} ORDER BY id COLLATE "C"`,
      values: namespace === undefined ? [owner] : [owner, namespace],
    });
    return rows.map(limitOfRow);
  }

  async inForce(owner: string, namespace: string, at: number): Promise<LimitVersion[]> {
    // Every version of each limit that ever named the namespace (a later one may move or delete it).
    const { rows } = await this.pool.query<LimitRowStored>({
      text: `SELECT ${LIMIT_COLUMNS} FROM limits WHERE owner = $1 AND id IN (SELECT id FROM limits WHERE owner = $1 AND namespace = $2) ORDER BY id, version`,
      values: [owner, namespace],
    });
    return inForceAll(rows.map(limitOfRow), namespace, at);
  }
}
