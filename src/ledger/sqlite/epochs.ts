// Epochs and their tree nodes on SQLite. An epoch is a dense run of the ledger, first_seq …
// last_seq (leaf index = seq − first_seq). Sealing reads and hashes in a read snapshot, without
// the write lock, so ingest goes on meanwhile; the write lock is held only to store the nodes and
// the header, after checking that no other sealer got there first.
import type { Statement } from 'better-sqlite3';
import { HASH_SIZE } from '../../merkle/hash.ts';
import type { EpochListQuery, EpochRecord, EpochStore, SealRequest } from '../types.ts';
import type { Db } from './db.ts';

/** Stored node chunks: up to 64 hashes (2 KiB, one page), so a proof reads one slice per level. */
export const NODE_CHUNK = 64;

const EPOCH_COLUMNS = 'epoch, first_seq, last_seq, size, root, first_ts, last_ts, sealed_at';
type EpochRow = { epoch: number; first_seq: number; last_seq: number; size: number; root: Buffer; first_ts: number; last_ts: number; sealed_at: number };

function toRecord(r: EpochRow): EpochRecord {
  return {
    epoch: r.epoch,
    first_seq: r.first_seq,
    last_seq: r.last_seq,
    size: r.size,
    root: r.root.toString('hex'),
    first_ts_ms: r.first_ts,
    last_ts_ms: r.last_ts,
    sealed_at_ms: r.sealed_at,
  };
}

interface Run {
  epoch: number;
  after: number;
  size: number;
  firstSeq: number;
  lastSeq: number;
  firstTs: number;
  lastTs: number;
  leaves: Uint8Array;
}

export class SqliteEpochStore implements EpochStore {
  private readonly db: Db;
  private readonly byEpoch: Statement<[number]>;
  private readonly bySeq: Statement<[number]>;
  private readonly last: Statement<[]>;
  private readonly asc: Statement<[number, number, number]>;
  private readonly desc: Statement<[number, number, number]>;
  private readonly nodeStmt: Statement<[number, number, number, number]>;
  private readonly levelStmt: Statement<[number, number]>;

  constructor(db: Db) {
    this.db = db;
    this.byEpoch = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch = ?`);
    this.bySeq = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE last_seq >= ? ORDER BY last_seq LIMIT 1`);
    this.last = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs ORDER BY epoch DESC LIMIT 1`);
    this.asc = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch > ? AND epoch < ? ORDER BY epoch LIMIT ?`);
    this.desc = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch > ? AND epoch < ? ORDER BY epoch DESC LIMIT ?`);
    this.nodeStmt = db.prepare('SELECT substr(hashes, ?, 32) FROM epoch_nodes WHERE epoch = ? AND level = ? AND chunk = ?').pluck();
    this.levelStmt = db.prepare('SELECT hashes FROM epoch_nodes WHERE epoch = ? AND level = ? ORDER BY chunk').pluck();
  }

  async get(epoch: number): Promise<EpochRecord | undefined> {
    const row = this.byEpoch.get(epoch) as EpochRow | undefined;
    return row && toRecord(row);
  }

  async latest(): Promise<EpochRecord | undefined> {
    const row = this.last.get() as EpochRow | undefined;
    return row && toRecord(row);
  }

  async list(q: EpochListQuery): Promise<EpochRecord[]> {
    const rows = (q.desc ? this.desc : this.asc).all(q.after ?? -1, q.before ?? Number.MAX_SAFE_INTEGER, q.limit);
    return (rows as EpochRow[]).map(toRecord);
  }

  async containing(seq: number): Promise<EpochRecord | undefined> {
    const row = this.bySeq.get(seq) as EpochRow | undefined;
    return row && row.first_seq <= seq ? toRecord(row) : undefined;
  }

  async node(epoch: number, level: number, index: number): Promise<Uint8Array> {
    return this.nodeStmt.get((index % NODE_CHUNK) * HASH_SIZE + 1, epoch, level, Math.floor(index / NODE_CHUNK)) as Buffer;
  }

  async level(epoch: number, level: number): Promise<Uint8Array> {
    return Buffer.concat(this.levelStmt.all(epoch, level) as Buffer[]);
  }

  async sealNext(request: SealRequest): Promise<EpochRecord | null> {
    return sealNextSync(this.db, request);
  }
}

/** The synchronous seal (the worker thread runs it on its own connection). */
export function sealNextSync(db: Db, request: SealRequest): EpochRecord | null {
  const progress = request.progress ?? (() => {});
  for (;;) {
    const run = db.transaction(() => readRun(db, request.maxEvents))(); // a consistent snapshot
    if (!run) return null; // an empty interval makes no epoch
    progress('read', { epoch: run.epoch, size: run.size });

    const tree = request.build(run.leaves);
    progress('hashed', { epoch: run.epoch, size: run.size });

    const stored = db.transaction((): boolean => {
      if (lastSealedSeq(db) !== run.after) return false; // another sealer took this run: read again
      const insertChunk = db.prepare('INSERT INTO epoch_nodes (epoch, level, chunk, hashes) VALUES (?, ?, ?, ?)');
      const bytes = NODE_CHUNK * HASH_SIZE;
      tree.levels.forEach((level, l) => {
        for (let c = 0; c * bytes < level.length; c++) insertChunk.run(run.epoch, l, c, level.subarray(c * bytes, (c + 1) * bytes));
      });
      db.prepare('INSERT INTO epochs (epoch, first_seq, last_seq, size, root, first_ts, last_ts, sealed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(run.epoch, run.firstSeq, run.lastSeq, run.size, tree.root, run.firstTs, run.lastTs, request.now);
      progress('stored', { epoch: run.epoch, size: run.size });
      return true;
    }).immediate();
    if (!stored) continue;
    return {
      epoch: run.epoch,
      first_seq: run.firstSeq,
      last_seq: run.lastSeq,
      size: run.size,
      root: Buffer.from(tree.root).toString('hex'),
      first_ts_ms: run.firstTs,
      last_ts_ms: run.lastTs,
      sealed_at_ms: request.now,
    };
  }
}

function lastSealedSeq(db: Db): number {
  const last = db.prepare('SELECT last_seq FROM epochs ORDER BY epoch DESC LIMIT 1').get() as { last_seq: number } | undefined;
  return last?.last_seq ?? 0;
}

/** The next run of unsealed events, up to maxEvents, ending before any gap in the sequence. */
function readRun(db: Db, maxEvents: number): Run | null {
  const last = db.prepare('SELECT epoch, last_seq FROM epochs ORDER BY epoch DESC LIMIT 1').get() as
    | { epoch: number; last_seq: number }
    | undefined;
  const epoch = last ? last.epoch + 1 : 0;
  const after = last ? last.last_seq : 0;
  // Leaf hashes concatenated by SQLite itself: one 32 MB blob for a 1M-event epoch instead of a
  // million row objects (0.7 s against 1.7–3.3 s, and a quarter of the memory).
  const next = db.prepare(`SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi, min(ts) AS t0, max(ts) AS t1,
      unhex(group_concat(hex(leaf_hash), '' ORDER BY seq)) AS leaves
    FROM (SELECT seq, ts, leaf_hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?)`).get(after, maxEvents) as
    { n: number; lo: number; hi: number; t0: number; t1: number; leaves: Buffer | null };
  if (next.n === 0 || !next.leaves) return null;
  const run: Run = {
    epoch, after, size: next.n, firstSeq: next.lo, lastSeq: next.hi, firstTs: next.t0, lastTs: next.t1,
    leaves: new Uint8Array(next.leaves.buffer, next.leaves.byteOffset, next.leaves.byteLength),
  };
  if (run.lastSeq - run.firstSeq + 1 !== run.size) {
    // A gap in the sequence (only if rows were deleted by hand): the epoch ends before it.
    const seqs = db.prepare('SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?').pluck().all(after, maxEvents) as number[];
    run.size = seqs.findIndex((seq, i) => seq !== run.firstSeq + i);
    run.lastSeq = run.firstSeq + run.size - 1;
    run.leaves = run.leaves.subarray(0, run.size * HASH_SIZE);
    const times = db.prepare('SELECT min(ts) AS t0, max(ts) AS t1 FROM events WHERE seq BETWEEN ? AND ?').get(run.firstSeq, run.lastSeq) as { t0: number; t1: number };
    run.firstTs = times.t0;
    run.lastTs = times.t1;
  }
  return run;
}
