// API keys on SQLite. Read from the database on every authentication (an indexed lookup of a
// few µs) so a revocation by `receipts keys revoke` takes effect at once.
import type { ApiKey, KeyStore, Principal } from '../types.ts';
import {
  DEFAULT_RIGHTS,
  keyIdOf,
  type ListRow,
  listed,
  newKey,
  PatternCache,
  parseRights,
  type Right,
  RightsCache,
  rightsJson,
  rightsOf,
  sameKeyHash,
} from '../api-keys.ts';
import type { Db } from './db.ts';

type KeyRow = { owner: string; namespaces: string; rights: string; key_hash: Buffer; revoked_at: number | null };

export class SqliteKeyStore implements KeyStore {
  private readonly db: Db;
  private readonly byId: (id: string) => KeyRow | undefined;
  private readonly patterns = new PatternCache();
  private readonly rightSets = new RightsCache();

  constructor(db: Db) {
    this.db = db;
    const stmt = db.prepare('SELECT owner, namespaces, rights, key_hash, revoked_at FROM api_keys WHERE id = ?');
    this.byId = (id) => stmt.get(id) as KeyRow | undefined;
  }

  async create(
    owner: string,
    namespaces: string[],
    now = Date.now(),
    rights: readonly Right[] = DEFAULT_RIGHTS,
  ): Promise<ApiKey & { key: string }> {
    const { id, key, hash } = newKey(owner, namespaces, rights);
    const granted = parseRights(rights);
    this.db
      .prepare('INSERT INTO api_keys (id, owner, namespaces, rights, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, owner, JSON.stringify(namespaces), rightsJson(granted), hash, now);
    return { key, id, owner, namespaces, rights: granted, created_at: now, revoked_at: null };
  }

  async list(): Promise<ApiKey[]> {
    const rows = this.db
      .prepare('SELECT id, owner, namespaces, rights, created_at, revoked_at FROM api_keys ORDER BY created_at, id')
      .all() as ListRow[];
    return rows.map((r) => listed(r, this.rightSets));
  }

  async revoke(id: string, now = Date.now()): Promise<boolean> {
    return this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes === 1;
  }

  async authenticate(presented: string): Promise<Principal | null> {
    const id = keyIdOf(presented);
    if (!id) return null;
    const row = this.byId(id);
    if (!row || row.revoked_at !== null || !sameKeyHash(row.key_hash, presented)) return null;
    const set = this.patterns.get(row.namespaces);
    return {
      keyId: id,
      owner: row.owner,
      namespaces: set.namespaces,
      allows: set.allows,
      ...rightsOf(this.rightSets.get(row.rights).list),
    };
  }
}
