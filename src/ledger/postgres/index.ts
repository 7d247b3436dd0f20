// The PostgreSQL engine: several service instances on one database. Any instance ingests and
// reads; one elected leader seals and anchors, fenced by a term so a stale leader cannot write.
// See epochs.ts for the ordering rule and leadership.ts for the election and fencing.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Ledger, SealerSite } from '../types.ts';
import { AnchorCache } from '../anchor-cache.ts';
import { PgAnchorStore } from './anchors.ts';
import { copyRows, type CopyCounts, type CopyData } from './copy.ts';
import { createPool, migrate } from './db.ts';
import { describeLocation } from '../location.ts';
import { PgEpochStore } from './epochs.ts';
import { PgEventStore, type GroupCommitOptions } from './events.ts';
import { PgKeyStore } from './keys.ts';
import { PgLeadership } from './leadership.ts';
import { PgUsageStore } from './usage.ts';
import { PgClassificationStore } from './classification.ts';
import { PgCosignatureStore } from './cosignatures.ts';
import { PgMeterStore } from './meters.ts';
import { PgWebhookStore } from './webhooks.ts';
import { PgLimitStore } from './limits.ts';

export interface PostgresLedgerOptions {
  groupCommit?: GroupCommitOptions;
  /** Pooled connections for ingest and reads (the leader's lock connection is extra). Default 10. */
  poolSize?: number;
  /** Who this instance is, in the leadership table and /healthz. Default host:pid:random. */
  instanceId?: string;
  /** A leader that lost its lock connection is replaced within about this long, ms. Default 3000. */
  leaseMs?: number;
  /**
   * How long an API key read from the database is trusted without a change notice, ms (default
   * 10,000). Changes are announced (LISTEN/NOTIFY) and drop it at once; this bounds what a notice
   * cannot reach (a listening connection cut off without either side knowing yet).
   */
  keyCacheMs?: number;
  /** After the key-change listening connection drops, reconnect after this long, ms. Default 1,000. */
  keyListenerRetryMs?: number;
}

function instanceIdOf(options: PostgresLedgerOptions): string {
  return options.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export class PostgresLedger implements Ledger {
  readonly engine = 'postgres' as const;
  readonly location: string;
  readonly events: PgEventStore;
  readonly keys: PgKeyStore;
  readonly usage: PgUsageStore;
  readonly classification: PgClassificationStore;
  readonly meters: PgMeterStore;
  readonly limits: PgLimitStore;
  readonly epochs: PgEpochStore;
  /** Found anchors are cached once, here above the engine (a recorded anchor never changes). */
  readonly anchors: AnchorCache;
  readonly cosignatures: PgCosignatureStore;
  readonly webhooks: PgWebhookStore;
  readonly leadership: PgLeadership;
  /** In-process: the database does the waiting, and the fenced write needs this instance's term. */
  readonly sealer: SealerSite = { kind: 'in-process' };
  /** The pool, for this engine's own tools (tests, copy); stages never use it. */
  readonly pool: pg.Pool;
  private closing: Promise<void> | undefined;

  constructor(pool: pg.Pool, url: string, options: PostgresLedgerOptions) {
    this.pool = pool;
    this.location = describeLocation(url);
    this.leadership = new PgLeadership({
      url,
      instanceId: instanceIdOf(options),
      leaseMs: options.leaseMs ?? 3000,
    });
    this.events = new PgEventStore(pool, options.groupCommit);
    this.keys = new PgKeyStore(pool, { url, ttlMs: options.keyCacheMs, retryMs: options.keyListenerRetryMs });
    this.classification = new PgClassificationStore(pool);
    this.usage = new PgUsageStore(pool, () => this.classification.history());
    this.meters = new PgMeterStore(pool);
    this.limits = new PgLimitStore(pool);
    this.epochs = new PgEpochStore(pool, this.leadership);
    this.anchors = new AnchorCache(new PgAnchorStore(pool, this.leadership));
    this.cosignatures = new PgCosignatureStore(pool);
    this.webhooks = new PgWebhookStore(pool, this.leadership);
  }

  /** Whether the database answers within 3 s (a health check must not hang on a dead server). */
  async healthy(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3000)));
    const asked = this.pool.query<{ ok: number }>('SELECT 1 AS ok').then(
      (r) => r.rows[0]?.ok === 1,
      () => false,
    );
    try {
      return await Promise.race([asked, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Commits what is queued, gives up leadership, then closes every connection. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.events.flush();
      } finally {
        await this.leadership.stop();
        await this.keys.close();
        await this.pool.end();
      }
    })();
    return this.closing;
  }
}

/**
 * Opens a PostgreSQL ledger at a postgres:// URL: connects, applies the migrations this build
 * knows (refusing a newer schema), and returns the ledger. Leadership starts only when
 * `ledger.leadership.start()` is called (the serve command does; the CLI need not).
 */
export async function openPostgresLedger(url: string, options: PostgresLedgerOptions = {}): Promise<PostgresLedger> {
  options = { ...options, instanceId: instanceIdOf(options) };
  const pool = createPool(url, options.poolSize ?? 10, 10_000, `sui-receipts ${options.instanceId}`);
  try {
    await migrate(pool, describeLocation(url));
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return new PostgresLedger(pool, url, options);
}

/** Copies a whole ledger's raw rows into an empty PostgreSQL ledger, in one transaction. */
export function copyInto(ledger: Ledger, data: CopyData): Promise<CopyCounts> {
  if (!(ledger instanceof PostgresLedger)) throw new TypeError('copyInto needs a ledger opened with openPostgresLedger');
  return copyRows(ledger.pool, data);
}

export { FencedError, type LeadershipState } from './leadership.ts';
export { SchemaTooNewError } from './db.ts';
export type { CopyData, CopyCounts, RowSource } from './copy.ts';
