// Building receipts from the ledger: the event row, its epoch header, and one stored node per
// tree level. Epochs never change once sealed, so their headers are cached.
import type { Statement } from 'better-sqlite3';
import type { Db } from '../ledger/db.ts';
import { HASH_SIZE } from '../merkle/hash.ts';
import { auditPath } from '../merkle/tree.ts';
import { NODE_CHUNK } from '../seal/sealer.ts';
import type { Receipt } from './format.ts';

export interface EventRow {
  seq: number;
  namespace: string;
  request_id: string;
  caller: string;
  action: string;
  units: number;
  artifact_digest: Buffer | null;
  ts: number;
  leaf_hash: Buffer;
  epoch: number | null;
  leaf_index: number | null;
}

export const EVENT_COLUMNS = 'seq, namespace, request_id, caller, action, units, artifact_digest, ts, leaf_hash, epoch, leaf_index';

export interface EpochRow {
  epoch: number;
  size: number;
  root: Buffer;
  first_ts: number;
  last_ts: number;
  sealed_at: number;
}

export class ReceiptReader {
  private readonly eventById: Statement<[number]>;
  private readonly epochById: Statement<[number]>;
  private readonly node: Statement<[number, number, number, number]>;
  private readonly epochCache = new Map<number, EpochRow>();
  private readonly page: Statement<[string, number, number, number, number, number, number]>;
  private readonly maxSeqStmt: Statement<[]>;

  constructor(db: Db) {
    this.eventById = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq = ?`);
    this.epochById = db.prepare('SELECT epoch, size, root, first_ts, last_ts, sealed_at FROM epochs WHERE epoch = ?');
    // Keyset paging on (ts, seq) within the (namespace, ts) index; seq <= snapshot bound.
    this.page = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events
      WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ? AND (ts, seq) > (?, ?)
      ORDER BY ts, seq LIMIT ?`);
    this.maxSeqStmt = db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck();
    this.node = db.prepare('SELECT substr(hashes, ?, 32) AS h FROM epoch_nodes WHERE epoch = ? AND level = ? AND chunk = ?').pluck();
  }

  /** The newest ledger sequence number: the snapshot bound of a paged read. */
  maxSeq(): number {
    return this.maxSeqStmt.get() as number;
  }

  /** Events of a namespace in [from, to) with seq ≤ maxSeq, after the (ts, seq) position, in (ts, seq) order. */
  eventsPage(namespace: string, from: number, to: number, maxSeq: number, after: [number, number], limit: number): EventRow[] {
    return this.page.all(namespace, from, to, maxSeq, after[0], after[1], limit) as EventRow[];
  }

  event(id: number): EventRow | undefined {
    return this.eventById.get(id) as EventRow | undefined;
  }

  epoch(epoch: number): EpochRow | undefined {
    let row = this.epochCache.get(epoch);
    if (!row) {
      row = this.epochById.get(epoch) as EpochRow | undefined;
      if (!row) return undefined;
      if (this.epochCache.size >= 10_000) this.epochCache.clear();
      this.epochCache.set(epoch, row);
    }
    return row;
  }

  /** The receipt of a stored event: pending until its epoch is sealed. */
  receipt(row: EventRow): Receipt {
    const event = {
      namespace: row.namespace,
      request_id: row.request_id,
      caller: row.caller,
      action: row.action,
      units: row.units,
      artifact_digest: row.artifact_digest ? row.artifact_digest.toString('hex') : '',
      ts_ms: row.ts,
    };
    const leaf_hash = row.leaf_hash.toString('hex');
    const epoch = row.epoch === null ? undefined : this.epoch(row.epoch);
    if (!epoch || row.leaf_index === null) {
      return { version: 1, id: row.seq, status: 'pending', event, leaf_hash, epoch: null, leaf_index: null, tree_size: null, proof: null, root: null, anchor: null };
    }
    const proof = auditPath(row.leaf_index, epoch.size, (level, index) => {
      const chunk = Math.floor(index / NODE_CHUNK);
      const offset = (index % NODE_CHUNK) * HASH_SIZE + 1; // substr counts from 1
      return this.node.get(offset, epoch.epoch, level, chunk) as Buffer;
    }).map((h) => Buffer.from(h).toString('hex'));
    return {
      version: 1,
      id: row.seq,
      status: 'sealed',
      event,
      leaf_hash,
      epoch: epoch.epoch,
      leaf_index: row.leaf_index,
      tree_size: epoch.size,
      proof,
      root: epoch.root.toString('hex'),
      anchor: null,
    };
  }
}
