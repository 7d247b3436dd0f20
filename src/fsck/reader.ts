// What fsck reads from a ledger: each engine supplies one (src/ledger/*/readers.ts), in one read
// snapshot, so that a ledger checked while it is served is checked as of one moment. Rows come
// as the driver gives them; fsck checks their shape itself (rows.ts) before using them.
import type { Row } from './rows.ts';

/** A rollup row that differs from its events: table, namespace, bucket or day (ms), action or caller, both sides' values. */
export interface RollupDifferenceRow {
  tbl: 'usage_buckets' | 'usage_caller_days';
  namespace: string;
  k1: number;
  k2: string;
  stored: string | null;
  recomputed: string | null;
}

export interface LedgerReader {
  readonly engine: 'sqlite' | 'postgres';
  /** The ledger, for messages: a URL without its password. */
  readonly location: string;
  /** How many epochs there are (for progress). */
  epochCount(): Promise<number>;
  /** How many events no epoch holds: seq > lastSealedSeq, or (PostgreSQL) no seq yet. */
  unsealedCount(lastSealedSeq: number): Promise<number>;
  /** Epoch headers after `after`, in epoch order: epoch, first_seq, last_seq, size, root, first_ts, last_ts. */
  epochs(after: number, limit: number): Promise<Row[]>;
  /** Events with seq first … last, in seq order: id, seq, the leaf fields (namespace, request_id, caller, action, units, artifact_digest, ts) and leaf_hash. */
  sealedEvents(firstSeq: number, lastSeq: number): Promise<Row[]>;
  /** Stored tree-node chunks of epochs first … last, in (epoch, level, chunk) order: epoch, level, chunk, hashes. */
  nodes(firstEpoch: number, lastEpoch: number): Promise<Row[]>;
  /** Events no epoch holds, id > afterId, in id order (the columns of sealedEvents). */
  unsealedEvents(lastSealedSeq: number, afterId: number, limit: number): Promise<Row[]>;
  /**
   * Usage rollup rows that differ from the same aggregates recomputed from their events (the
   * count and the first `limit`); null when the ledger has no rollups (a schema before them).
   */
  rollupDifferences(limit: number): Promise<{ count: number; rows: RollupDifferenceRow[] } | null>;
  /** Ends the snapshot and closes what the reader opened (nothing it was lent). */
  close(): Promise<void>;
}

/** The ledger cannot be read at all (no such file, not a ledger, database unreachable): nothing was checked. */
export class UnreadableLedgerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreadableLedgerError';
  }
}
