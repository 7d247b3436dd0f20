// API keys on PostgreSQL. A key read from the database is kept in memory while this instance
// listens on the channel every key change is announced on (migration 005: a trigger, so a
// revocation by `receipts keys revoke` from any instance, or an UPDATE by hand, is heard when it
// commits). Whenever the listening connection is not up, every authentication reads the
// database, as it would with no cache: a revocation is never missed, only the round trip saved.
import pg from 'pg';
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
import { pgTypes } from './db.ts';

type KeyRow = { owner: string; namespaces: string; rights: string; key_hash: Buffer; revoked_at: number | null };

export const KEY_CHANNEL = 'sui_receipts_keys';

export interface KeyCacheOptions {
  /** The database URL, for the listening connection; without it nothing is cached. */
  url?: string;
  /** A kept key is read again after this long even without a notification, ms. Default 10,000. */
  ttlMs?: number;
  /** Most keys kept. Default 10,000. */
  maxKeys?: number;
  /** After the listening connection drops, wait this long before connecting again, ms. Default 1,000. */
  retryMs?: number;
}

export class PgKeyStore implements KeyStore {
  private readonly pool: pg.Pool;
  private readonly patterns = new PatternCache();
  private readonly rightSets = new RightsCache();
  private readonly cache = new Map<string, { row: KeyRow; until: number }>();
  private readonly listener: KeyChangeListener | null;
  private readonly ttlMs: number;
  private readonly maxKeys: number;

  constructor(pool: pg.Pool, options: KeyCacheOptions = {}) {
    this.pool = pool;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.maxKeys = options.maxKeys ?? 10_000;
    this.listener = options.url
      ? new KeyChangeListener(options.url, options.retryMs ?? 1000, (id) => (id === '*' ? this.cache.clear() : this.cache.delete(id)))
      : null;
  }

  async create(
    owner: string,
    namespaces: string[],
    now = Date.now(),
    rights: readonly Right[] = DEFAULT_RIGHTS,
  ): Promise<ApiKey & { key: string }> {
    const { id, key, hash } = newKey(owner, namespaces, rights);
    const granted = parseRights(rights);
    await this.pool.query({
      name: 'keys-create',
      text: 'INSERT INTO api_keys (id, owner, namespaces, rights, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
      values: [id, owner, JSON.stringify(namespaces), rightsJson(granted), hash, now],
    });
    return { key, id, owner, namespaces, rights: granted, created_at: now, revoked_at: null };
  }

  async list(): Promise<ApiKey[]> {
    const { rows } = await this.pool.query<ListRow>({
      name: 'keys-list',
      text: 'SELECT id, owner, namespaces, rights, created_at, revoked_at FROM api_keys ORDER BY created_at, id COLLATE "C"',
    });
    return rows.map((r) => listed(r, this.rightSets));
  }

  async revoke(id: string, now = Date.now()): Promise<boolean> {
    const done = await this.pool.query({
      name: 'keys-revoke',
      text: 'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
      values: [now, id],
    });
    this.cache.delete(id); // this instance at once; the others when the trigger's notice arrives
    return done.rowCount === 1;
  }

  async authenticate(presented: string): Promise<Principal | null> {
    const id = keyIdOf(presented);
    if (!id) return null;
    const row = await this.row(id);
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

  /** The key's row: kept while listening (and younger than the TTL), else read. Unknown ids are never kept. */
  private async row(id: string): Promise<KeyRow | undefined> {
    // Nothing is kept while not listening (the listener clears the cache when it drops).
    const listening = this.listener?.listening() ?? false;
    if (!listening) {
      this.listener?.start();
    } else {
      const kept = this.cache.get(id);
      if (kept && kept.until > Date.now()) return kept.row;
    }
    const generation = this.listener?.generation ?? 0;
    const { rows } = await this.pool.query<KeyRow>({
      name: 'keys-by-id',
      text: 'SELECT owner, namespaces, rights, key_hash, revoked_at FROM api_keys WHERE id = $1',
      values: [id],
    });
    const row = rows[0];
    // Kept only if no change was announced (and no reconnect happened) while it was being read:
    // a read that raced a revocation must not put the old row back.
    if (row && listening && this.listener!.listening() && this.listener!.generation === generation) {
      if (this.cache.size >= this.maxKeys) this.cache.clear();
      this.cache.set(id, { row, until: Date.now() + this.ttlMs });
    }
    return row;
  }

  /** Whether keys are being kept (the listening connection is up). */
  get listening(): boolean {
    return this.listener?.listening() ?? false;
  }

  /** Stops listening (the ledger's close). */
  async close(): Promise<void> {
    this.cache.clear();
    await this.listener?.stop();
  }
}

/**
 * One connection LISTENing on the key channel, started on first use and reconnected after a
 * pause when it drops. `generation` counts every notice and every (re)connect.
 */
class KeyChangeListener {
  generation = 0;
  private client: pg.Client | null = null;
  private up = false;
  private starting = false;
  private stopped = false;
  private retryAt = 0;

  private readonly url: string;
  private readonly retryMs: number;
  private readonly changed: (id: string) => void;

  constructor(url: string, retryMs: number, changed: (id: string) => void) {
    this.url = url;
    this.retryMs = retryMs;
    this.changed = changed;
  }

  listening(): boolean {
    return this.up;
  }

  start(): void {
    if (this.up || this.starting || this.stopped || Date.now() < this.retryAt) return;
    this.starting = true;
    const client = new pg.Client({ connectionString: this.url, types: pgTypes, connectionTimeoutMillis: 5000, keepAlive: true });
    const lost = () => {
      if (this.client !== client) return;
      this.client = null;
      this.up = false;
      this.generation++;
      this.changed('*'); // notices may be missed from now on: nothing kept is known to be current
      this.retryAt = Date.now() + this.retryMs;
      void client.end().catch(() => {});
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      if (n.channel !== KEY_CHANNEL) return;
      this.generation++;
      this.changed(n.payload ?? '*');
    });
    this.client = client;
    void (async () => {
      try {
        await client.connect();
        await client.query(`LISTEN ${KEY_CHANNEL}`);
        if (this.client === client && !this.stopped) {
          this.generation++;
          this.up = true;
        }
      } catch {
        lost();
      } finally {
        this.starting = false;
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.up = false;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}
