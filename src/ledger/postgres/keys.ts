// API keys on PostgreSQL. Read from the database on every authentication (one indexed lookup)
// so a revocation by `receipts keys revoke`, from any instance, takes effect at once.
import type pg from 'pg';
import type { ApiKey, KeyStore, Principal } from '../types.ts';
import { keyIdOf, newKey, PatternCache, sameKeyHash } from '../keys-common.ts';

type KeyRow = { owner: string; namespaces: string; key_hash: Buffer; revoked_at: number | null };

export class PgKeyStore implements KeyStore {
  private readonly pool: pg.Pool;
  private readonly patterns = new PatternCache();

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async create(owner: string, namespaces: string[], now = Date.now()): Promise<ApiKey & { key: string }> {
    const { id, key, hash } = newKey(owner, namespaces);
    await this.pool.query({
      name: 'keys-create',
      text: 'INSERT INTO api_keys (id, owner, namespaces, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)',
      values: [id, owner, JSON.stringify(namespaces), hash, now],
    });
    return { key, id, owner, namespaces, created_at: now, revoked_at: null };
  }

  async list(): Promise<ApiKey[]> {
    const { rows } = await this.pool.query<Omit<ApiKey, 'namespaces'> & { namespaces: string }>({
      name: 'keys-list',
      text: 'SELECT id, owner, namespaces, created_at, revoked_at FROM api_keys ORDER BY created_at, id COLLATE "C"',
    });
    return rows.map((r) => ({ ...r, namespaces: JSON.parse(r.namespaces) as string[] }));
  }

  async revoke(id: string, now = Date.now()): Promise<boolean> {
    const done = await this.pool.query({
      name: 'keys-revoke',
      text: 'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
      values: [now, id],
    });
    return done.rowCount === 1;
  }

  async authenticate(presented: string): Promise<Principal | null> {
    const id = keyIdOf(presented);
    if (!id) return null;
    const { rows } = await this.pool.query<KeyRow>({
      name: 'keys-by-id',
      text: 'SELECT owner, namespaces, key_hash, revoked_at FROM api_keys WHERE id = $1',
      values: [id],
    });
    const row = rows[0];
    if (!row || row.revoked_at !== null || !sameKeyHash(row.key_hash, presented)) return null;
    const set = this.patterns.get(row.namespaces);
    return { keyId: id, owner: row.owner, namespaces: set.namespaces, allows: set.allows };
  }
}
