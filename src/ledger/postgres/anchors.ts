// Anchors on PostgreSQL: where each epoch's root landed on chain, and every attempt's digest,
// written before the transaction is sent. Both writes are the leader's, fenced by term. Only SQL:
// the ledger caches found anchors above this (anchor-cache.ts).
import type pg from 'pg';
import type { AnchorAttempt, AnchorRecord, AnchorStore } from '../types.ts';
import type { PgLeadership } from './leadership.ts';

export class PgAnchorStore implements AnchorStore {
  private readonly pool: pg.Pool;
  private readonly leadership: PgLeadership;

  constructor(pool: pg.Pool, leadership: PgLeadership) {
    this.pool = pool;
    this.leadership = leadership;
  }

  async get(epoch: number): Promise<AnchorRecord | null> {
    const { rows } = await this.pool.query<AnchorRecord>({
      name: 'anchors-get',
      text: 'SELECT network, package_id, registry_id, tx_digest, checkpoint, anchored_at AS anchored_at_ms FROM anchors WHERE epoch = $1',
      values: [epoch],
    });
    return rows[0] ?? null;
  }

  async anchoredThrough(): Promise<number | null> {
    const { rows } = await this.pool.query<{ e: number | null }>({ name: 'anchors-through', text: 'SELECT max(epoch) AS e FROM anchors' });
    return rows[0]!.e;
  }

  async recordAttempt(a: AnchorAttempt): Promise<void> {
    await this.leadership.fenced(this.pool, (client) =>
      client.query({
        name: 'anchors-attempt',
        text: `INSERT INTO anchor_attempts (tx_digest, first_epoch, last_epoch, created_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (tx_digest) DO NOTHING`,
        values: [a.tx_digest, a.first_epoch, a.last_epoch, a.created_at_ms],
      }),
    );
  }

  async attemptsCovering(epoch: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ tx_digest: string }>({
      name: 'anchors-covering',
      text: 'SELECT tx_digest FROM anchor_attempts WHERE first_epoch <= $1 AND last_epoch >= $1 ORDER BY created_at DESC, tx_digest',
      values: [epoch],
    });
    return rows.map((r) => r.tx_digest);
  }

  async record(epochs: number[], a: AnchorRecord): Promise<void> {
    if (epochs.length === 0) return;
    await this.leadership.fenced(this.pool, (client) =>
      client.query({
        name: 'anchors-record',
        text: `INSERT INTO anchors (epoch, network, package_id, registry_id, tx_digest, checkpoint, anchored_at)
               SELECT e, $2, $3, $4, $5, $6, $7 FROM unnest($1::int8[]) AS e
               ON CONFLICT (epoch) DO NOTHING`,
        values: [epochs, a.network, a.package_id, a.registry_id, a.tx_digest, a.checkpoint, a.anchored_at_ms],
      }),
    );
  }
}
