// The ledger: one SQLite file holding keys and events (and, later, epochs and tree nodes).
import { openDb, type Db, type OpenOptions } from './db.ts';
import { EventWriter, type GroupCommitOptions } from './events.ts';
import { KeyStore } from './keys.ts';
import { UsageReader } from './usage.ts';
import { ReceiptReader } from '../receipt/reader.ts';

export interface LedgerOptions extends OpenOptions {
  groupCommit?: GroupCommitOptions;
}

export class Ledger {
  readonly file: string;
  readonly db: Db;
  readonly keys: KeyStore;
  readonly writer: EventWriter;
  readonly usage: UsageReader;
  readonly receipts: ReceiptReader;

  constructor(file: string, options: LedgerOptions = {}) {
    this.file = file;
    this.db = openDb(file, options);
    this.keys = new KeyStore(this.db);
    this.writer = new EventWriter(this.db, options.groupCommit);
    this.usage = new UsageReader(this.db);
    this.receipts = new ReceiptReader(this.db);
  }

  /** Whether the database answers. */
  healthy(): boolean {
    try {
      return (this.db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  /** Commits what is queued, then closes the file. */
  close(): void {
    if (!this.db.open) return;
    this.writer.flush();
    this.db.close();
  }
}

export { openDb, type Db } from './db.ts';
export type { WriteResult, EventToWrite } from './events.ts';
export type { Principal, ApiKey } from './keys.ts';
export type { GroupBy, UsageResult } from './usage.ts';
