// Anchors on SQLite: where each epoch's root landed on chain, and every attempt's digest,
// written before the transaction is sent. Only SQL: the ledger caches found anchors above this
// (anchor-cache.ts).
import type { AnchorAttempt, AnchorRecord, AnchorStore } from '../types.ts';
import type { Db } from './db.ts';

export class SqliteAnchorStore implements AnchorStore {
  private readonly db: Db;
  private readonly byEpoch;

  constructor(db: Db) {
    this.db = db;
    this.byEpoch = db.prepare(
      'SELECT network, package_id, registry_id, tx_digest, checkpoint, anchored_at AS anchored_at_ms FROM anchors WHERE epoch = ?',
    );
  }

  async get(epoch: number): Promise<AnchorRecord | null> {
    return (this.byEpoch.get(epoch) as AnchorRecord | undefined) ?? null;
  }

  async anchoredThrough(): Promise<number | null> {
    return (this.db.prepare('SELECT max(epoch) AS e FROM anchors').get() as { e: number | null }).e;
  }

  async recordAttempt(a: AnchorAttempt): Promise<void> {
    this.db
      .prepare('INSERT OR IGNORE INTO anchor_attempts (tx_digest, first_epoch, last_epoch, created_at) VALUES (?, ?, ?, ?)')
      .run(a.tx_digest, a.first_epoch, a.last_epoch, a.created_at_ms);
  }

  async attemptsCovering(epoch: number): Promise<string[]> {
    return this.db
      .prepare('SELECT tx_digest FROM anchor_attempts WHERE first_epoch <= ? AND last_epoch >= ? ORDER BY created_at DESC')
      .pluck()
      .all(epoch, epoch) as string[];
  }

  async record(epochs: number[], a: AnchorRecord): Promise<void> {
    const insert = this.db.prepare(
      'INSERT INTO anchors (epoch, network, package_id, registry_id, tx_digest, checkpoint, anchored_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (epoch) DO NOTHING',
    );
    this.db.transaction(() => {
      for (const e of epochs) insert.run(e, a.network, a.package_id, a.registry_id, a.tx_digest, a.checkpoint, a.anchored_at_ms);
    })();
  }
}
