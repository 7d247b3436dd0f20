// The SQLite engine: one file holding keys, events, epochs, tree nodes and anchors. One process
// writes it (WAL; the CLI may share it through the busy timeout), so that process always leads.
import { hostname } from 'node:os';
import type { Ledger, Leadership, LeadershipState, Role, SealerSite } from '../types.ts';
import { AnchorCache } from '../anchor-cache.ts';
import { SqliteAnchorStore } from './anchors.ts';
import { openDb, type Db, type OpenOptions } from './db.ts';
import { SqliteEpochStore } from './epochs.ts';
import { SqliteEventStore, type GroupCommitOptions } from './events.ts';
import { SqliteKeyStore } from './keys.ts';
import { SqliteUsageStore } from './usage.ts';
import { SqliteClassificationStore } from './classification.ts';
import { SqliteCosignatureStore } from './cosignatures.ts';
import { SqliteMeterStore } from './meters.ts';
import { SqliteWebhookStore } from './webhooks.ts';
import { SqliteLimitStore } from './limits.ts';

export interface SqliteLedgerOptions extends OpenOptions {
  groupCommit?: GroupCommitOptions;
}

/** The one process on the file seals and anchors (role() is 'leader' without start(), as before), until stop(). */
class SoleLeadership implements Leadership {
  private current: Role = 'leader';
  private onChange: (role: Role) => void = () => {};
  role(): Role {
    return this.current;
  }
  describe(): LeadershipState {
    return { role: this.current, term: null, holder: this.current === 'leader' ? `${hostname()}:${process.pid}` : null, error: null };
  }
  async start(onChange: (role: Role) => void): Promise<void> {
    this.onChange = onChange;
    this.current = 'leader';
    onChange('leader');
  }
  async stop(): Promise<void> {
    if (this.current !== 'leader') return;
    this.current = 'follower';
    this.onChange('follower');
  }
}

export class SqliteLedger implements Ledger {
  readonly engine = 'sqlite' as const;
  readonly location: string;
  /** The connection, for this engine's own tools (tests, benchmarks); stages never use it. */
  readonly db: Db;
  readonly events: SqliteEventStore;
  readonly keys: SqliteKeyStore;
  readonly usage: SqliteUsageStore;
  readonly classification: SqliteClassificationStore;
  readonly meters: SqliteMeterStore;
  readonly limits: SqliteLimitStore;
  readonly epochs: SqliteEpochStore;
  /** Found anchors are cached once, here above the engine (a recorded anchor never changes). */
  readonly anchors: AnchorCache;
  readonly cosignatures: SqliteCosignatureStore;
  readonly webhooks: SqliteWebhookStore;
  readonly leadership = new SoleLeadership();
  /** A file is sealed on a worker thread with its own connection; ':memory:' cannot be shared. */
  readonly sealer: SealerSite;

  constructor(file: string, options: SqliteLedgerOptions = {}) {
    this.location = file;
    this.db = openDb(file, options);
    this.sealer =
      file === ':memory:' || options.readonly
        ? { kind: 'in-process' }
        : { kind: 'worker', open: { engine: 'sqlite', file, synchronous: options.synchronous ?? 'full' } };
    this.keys = new SqliteKeyStore(this.db);
    this.events = new SqliteEventStore(this.db, options.groupCommit);
    this.classification = new SqliteClassificationStore(this.db);
    this.usage = new SqliteUsageStore(this.db, () => this.classification.historySync());
    this.meters = new SqliteMeterStore(this.db);
    this.limits = new SqliteLimitStore(this.db);
    this.epochs = new SqliteEpochStore(this.db);
    this.anchors = new AnchorCache(new SqliteAnchorStore(this.db));
    this.cosignatures = new SqliteCosignatureStore(this.db);
    this.webhooks = new SqliteWebhookStore(this.db);
  }

  private healthStmt: import('better-sqlite3').Statement<[]> | undefined;

  async healthy(): Promise<boolean> {
    try {
      this.healthStmt ??= this.db.prepare('SELECT 1 AS ok'); // once: /healthz is polled
      return (this.healthStmt.get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  /** Commits what is queued, then closes the file (for exit paths that cannot wait). */
  closeSync(): void {
    if (!this.db.open) return;
    this.events.flush();
    this.db.close();
  }
}

export { openDb, type Db } from './db.ts';
