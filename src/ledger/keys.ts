// API keys. A key is `sr_<id>_<secret>`; the id is public (lists, logs), the secret is 256
// random bits. Only SHA-256 of the whole key is stored: a stolen database yields no usable key.
// A plain hash suffices because the secret is random, not a password.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.ts';

export interface ApiKey {
  id: string;
  owner: string;
  namespaces: string[];
  created_at: number;
  revoked_at: number | null;
}

/** What a request is authorised as: the key's owner and what its namespace patterns allow. */
export interface Principal {
  keyId: string;
  owner: string;
  namespaces: string[];
  /** Whether this key may write and read the namespace. */
  allows(namespace: string): boolean;
}

/** A namespace pattern: the namespace alphabet, with `*` matching any run of characters (`/` too). */
export const NAMESPACE_PATTERN_RULE = /^[a-z0-9._/*-]{1,128}$/;

export function compileNamespacePatterns(patterns: string[]): (namespace: string) => boolean {
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`));
  return (namespace) => res.some((re) => re.test(namespace));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

const KEY_FORMAT = /^sr_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

function hashKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

type KeyRow = { owner: string; namespaces: string; key_hash: Buffer; revoked_at: number | null };

export class KeyStore {
  private readonly db: Db;
  private readonly byId: (id: string) => KeyRow | undefined;
  /** Parsed and compiled pattern sets, by their JSON text: few distinct sets, each done once. */
  private readonly patterns = new Map<string, { namespaces: string[]; allows: (namespace: string) => boolean }>();

  constructor(db: Db) {
    this.db = db;
    const stmt = db.prepare('SELECT owner, namespaces, key_hash, revoked_at FROM api_keys WHERE id = ?');
    this.byId = (id) => stmt.get(id) as KeyRow | undefined;
  }

  create(owner: string, namespaces: string[], now = Date.now()): ApiKey & { key: string } {
    if (owner.length < 1 || owner.length > 256) throw new Error('owner must be 1 to 256 characters');
    if (namespaces.length === 0) throw new Error('at least one --namespace pattern is required');
    for (const p of namespaces) {
      if (!NAMESPACE_PATTERN_RULE.test(p)) {
        throw new Error(`namespace pattern "${p}" must be 1 to 128 characters of a-z 0-9 . _ / - and *`);
      }
    }
    const id = randomBytes(8).toString('hex').slice(0, 12);
    const key = `sr_${id}_${randomBytes(32).toString('base64url')}`;
    this.db
      .prepare('INSERT INTO api_keys (id, owner, namespaces, key_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, owner, JSON.stringify(namespaces), hashKey(key), now);
    return { key, id, owner, namespaces, created_at: now, revoked_at: null };
  }

  list(): ApiKey[] {
    const rows = this.db
      .prepare('SELECT id, owner, namespaces, created_at, revoked_at FROM api_keys ORDER BY created_at, id')
      .all() as Array<Omit<ApiKey, 'namespaces'> & { namespaces: string }>;
    return rows.map((r) => ({ ...r, namespaces: JSON.parse(r.namespaces) as string[] }));
  }

  /** Revokes a key; false when there is no such key or it was already revoked. */
  revoke(id: string, now = Date.now()): boolean {
    return this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes === 1;
  }

  /**
   * The principal for a presented key, or null. Read from the database on every call (an indexed
   * lookup of a few µs) so a revocation by `receipts keys revoke` takes effect at once.
   */
  authenticate(presented: string): Principal | null {
    const m = KEY_FORMAT.exec(presented);
    if (!m) return null;
    const row = this.byId(m[1]!);
    if (!row || row.revoked_at !== null) return null;
    if (!timingSafeEqual(row.key_hash, hashKey(presented))) return null;
    let set = this.patterns.get(row.namespaces);
    if (!set) {
      const namespaces = JSON.parse(row.namespaces) as string[];
      set = { namespaces: Object.freeze(namespaces) as string[], allows: compileNamespacePatterns(namespaces) }; // shared: read-only
      this.patterns.set(row.namespaces, set);
    }
    return { keyId: m[1]!, owner: row.owner, namespaces: set.namespaces, allows: set.allows };
  }
}
