// Building receipts from the ledger: the event row, the epoch whose run of sequence numbers
// holds it (leaf index = seq − first_seq), and one stored node per tree level.
// Upper levels (≥ 3: an eighth of the nodes) of recently used epochs are kept in memory, so a
// proof costs 3 indexed reads whatever the epoch size.
import type { Statement } from 'better-sqlite3';
import type { Db } from '../ledger/db.ts';
import { HASH_SIZE } from '../merkle/hash.ts';
import { auditPath } from '../merkle/tree.ts';
import { NODE_CHUNK } from '../seal/sealer.ts';
import type { Anchor, Receipt } from './format.ts';

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
}

export const EVENT_COLUMNS = 'seq, namespace, request_id, caller, action, units, artifact_digest, ts, leaf_hash';

export interface EpochRow {
  epoch: number;
  first_seq: number;
  last_seq: number;
  size: number;
  root: Buffer;
  first_ts: number;
  last_ts: number;
  sealed_at: number;
}

const EPOCH_COLUMNS = 'epoch, first_seq, last_seq, size, root, first_ts, last_ts, sealed_at';
/** Levels from here up are cached whole: 1/8 of an epoch's nodes (4 MB for a 1M-event epoch). */
const CACHED_FROM_LEVEL = 3;
const LEVEL_CACHE_BYTES = 64 * 1024 * 1024;

export class ReceiptReader {
  private readonly eventById: Statement<[number]>;
  private readonly epochById: Statement<[number]>;
  private readonly epochBySeq: Statement<[number]>;
  private readonly node: Statement<[number, number, number, number]>;
  private readonly level: Statement<[number, number]>;
  private readonly page: Statement<[string, number, number, number, number, number, number]>;
  private readonly pageDesc: Statement<[string, number, number, number, number, number, number]>;
  private readonly maxSeqStmt: Statement<[]>;
  private readonly anchorStmt: Statement<[number]>;
  /** Anchors never change once recorded; only found ones are cached. */
  private readonly anchors = new Map<number, Anchor>();
  private readonly levels = new Map<string, Uint8Array>();
  private levelBytes = 0;

  constructor(db: Db) {
    this.eventById = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq = ?`);
    this.epochById = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch = ?`);
    this.epochBySeq = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE last_seq >= ? ORDER BY last_seq LIMIT 1`);
    // Keyset paging on (ts, seq) within the (namespace, ts) index; seq <= snapshot bound.
    this.page = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events
      WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ? AND (ts, seq) > (?, ?)
      ORDER BY ts, seq LIMIT ?`);
    // Newest first (the web page's latest events): the same index walked backwards.
    this.pageDesc = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events
      WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ? AND (ts, seq) < (?, ?)
      ORDER BY ts DESC, seq DESC LIMIT ?`);
    this.maxSeqStmt = db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck();
    this.node = db.prepare('SELECT substr(hashes, ?, 32) FROM epoch_nodes WHERE epoch = ? AND level = ? AND chunk = ?').pluck();
    this.anchorStmt = db.prepare('SELECT network, package_id, registry_id, tx_digest, checkpoint FROM anchors WHERE epoch = ?');
    this.level = db.prepare('SELECT hashes FROM epoch_nodes WHERE epoch = ? AND level = ? ORDER BY chunk').pluck();
  }

  /** The newest ledger sequence number: the snapshot bound of a paged read. */
  maxSeq(): number {
    return this.maxSeqStmt.get() as number;
  }

  /** Events of a namespace in [from, to) with seq ≤ maxSeq, after the (ts, seq) position, in (ts, seq) order
   * (or, with desc, before the position, newest first). */
  eventsPage(namespace: string, from: number, to: number, maxSeq: number, after: [number, number], limit: number, desc = false): EventRow[] {
    return (desc ? this.pageDesc : this.page).all(namespace, from, to, maxSeq, after[0], after[1], limit) as EventRow[];
  }

  event(id: number): EventRow | undefined {
    return this.eventById.get(id) as EventRow | undefined;
  }

  epoch(epoch: number): EpochRow | undefined {
    return this.epochById.get(epoch) as EpochRow | undefined;
  }

  /** Where an epoch's root is on chain, or null while it is not anchored. */
  anchor(epoch: number): Anchor | null {
    const cached = this.anchors.get(epoch);
    if (cached) return cached;
    const row = this.anchorStmt.get(epoch) as Anchor | undefined;
    if (!row) return null;
    if (this.anchors.size >= 100_000) this.anchors.clear();
    this.anchors.set(epoch, row);
    return row;
  }

  /** The sealed epoch holding ledger sequence number `seq`, if any. */
  epochOf(seq: number): EpochRow | undefined {
    const row = this.epochBySeq.get(seq) as EpochRow | undefined;
    return row && row.first_seq <= seq ? row : undefined;
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
    const epoch = this.epochOf(row.seq);
    if (!epoch) {
      return { version: 1, id: row.seq, status: 'pending', event, leaf_hash, epoch: null, leaf_index: null, tree_size: null, proof: null, root: null, anchor: null };
    }
    const leafIndex = row.seq - epoch.first_seq;
    const anchor = this.anchor(epoch.epoch);
    const proof = auditPath(leafIndex, epoch.size, (level, index) => this.readNode(epoch.epoch, level, index)).map(toHex);
    return {
      version: 1,
      id: row.seq,
      status: anchor ? 'anchored' : 'sealed',
      event,
      leaf_hash,
      epoch: epoch.epoch,
      leaf_index: leafIndex,
      tree_size: epoch.size,
      proof,
      root: epoch.root.toString('hex'),
      anchor,
    };
  }

  private readNode(epoch: number, level: number, index: number): Uint8Array {
    if (level < CACHED_FROM_LEVEL) {
      return this.node.get((index % NODE_CHUNK) * HASH_SIZE + 1, epoch, level, Math.floor(index / NODE_CHUNK)) as Buffer;
    }
    const key = `${epoch}:${level}`;
    let hashes = this.levels.get(key);
    if (hashes) {
      this.levels.delete(key); // most recently used goes last
    } else {
      hashes = Buffer.concat(this.level.all(epoch, level) as Buffer[]);
      this.levelBytes += hashes.length;
      while (this.levelBytes > LEVEL_CACHE_BYTES && this.levels.size > 0) {
        const [oldest, bytes] = this.levels.entries().next().value!;
        this.levels.delete(oldest);
        this.levelBytes -= bytes.length;
      }
    }
    this.levels.set(key, hashes);
    return hashes.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
