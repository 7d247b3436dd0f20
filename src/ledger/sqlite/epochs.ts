// Epochs and their tree nodes on SQLite: the SQL and the I/O of the seal (sealing.ts holds the
// steps). An epoch is a dense run of the ledger, first_seq … last_seq (leaf index = seq −
// first_seq). The run is read in a read snapshot, without the write lock, so ingest goes on while
// it is hashed; the write lock is held only to store the nodes and the header, after checking
// that no other sealer got there first.
import type { Statement } from 'better-sqlite3';
import { HASH_SIZE } from '../../merkle/hash.ts';
import { EPOCH_COLUMNS, holding, listBounds, epochRecordOf, type EpochRow } from '../epoch-record.ts';
import { nodeChunks, nodePlace, storedNode } from '../node-chunks.ts';
import { sealWith, type Run, type SealIO } from '../sealing.ts';
import type { EpochListQuery, EpochRecord, EpochStore, SealRequest } from '../types.ts';
import { CHECKPOINT_COLUMNS, checkpointOf, type CheckpointRow } from '../checkpoint-record.ts';
import { nextCheckpoint, type StoredCheckpoint } from '../epoch-log.ts';
import type { Db } from './db.ts';
import { aggregateRun, catchUpRollups, clearRollups, storeRunRollup, type RunRollup } from './rollups.ts';
import type { RollupProgress } from '../rollup-check.ts';

/** A run, and the last sealed seq it follows (the fence: unchanged when the write comes). */
type SqliteRun = Run & { after: number; rollup?: RunRollup };

export class SqliteEpochStore implements EpochStore {
  private readonly byEpoch: Statement<[number]>;
  private readonly bySeq: Statement<[number]>;
  private readonly last: Statement<[]>;
  private readonly asc: Statement<[number, number, number]>;
  private readonly desc: Statement<[number, number, number]>;
  private readonly nodeStmt: Statement<[number, number, number, number]>;
  private readonly levelStmt: Statement<[number, number]>;
  private readonly chunkStmt: Statement<[number, number, number]>;
  private readonly lastCheckpoint: Statement<[]>;
  private readonly io: SealIO<SqliteRun>;
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
    this.byEpoch = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch = ?`);
    this.bySeq = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE last_seq >= ? ORDER BY last_seq LIMIT 1`);
    this.last = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs ORDER BY epoch DESC LIMIT 1`);
    this.asc = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch > ? AND epoch < ? ORDER BY epoch LIMIT ?`);
    this.desc = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch > ? AND epoch < ? ORDER BY epoch DESC LIMIT ?`);
    this.nodeStmt = db.prepare('SELECT substr(hashes, ?, 32) FROM epoch_nodes WHERE epoch = ? AND level = ? AND chunk = ?').pluck();
    this.levelStmt = db.prepare('SELECT hashes FROM epoch_nodes WHERE epoch = ? AND level = ? ORDER BY chunk').pluck();
    this.chunkStmt = db.prepare('SELECT hashes FROM epoch_nodes WHERE epoch = ? AND level = ? AND chunk = ?').pluck();
    this.lastCheckpoint = db.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1`);
    this.io = sealIO(db);
  }

  async get(epoch: number): Promise<EpochRecord | undefined> {
    const row = this.byEpoch.get(epoch) as EpochRow | undefined;
    return row && epochRecordOf(row);
  }

  async latest(): Promise<EpochRecord | undefined> {
    const row = this.last.get() as EpochRow | undefined;
    return row && epochRecordOf(row);
  }

  async list(q: EpochListQuery): Promise<EpochRecord[]> {
    return ((q.desc ? this.desc : this.asc).all(...listBounds(q), q.limit) as EpochRow[]).map(epochRecordOf);
  }

  async containing(seq: number): Promise<EpochRecord | undefined> {
    return holding(this.bySeq.get(seq) as EpochRow | undefined, seq);
  }

  async node(epoch: number, level: number, index: number): Promise<Uint8Array> {
    const { chunk, offset } = nodePlace(index);
    return storedNode(this.nodeStmt.get(offset, epoch, level, chunk) as Buffer | undefined, epoch, level, index);
  }

  async level(epoch: number, level: number): Promise<Uint8Array> {
    return Buffer.concat(this.levelStmt.all(epoch, level) as Buffer[]);
  }

  // In-process reads: one call, no promise per node, and one read per stored chunk however
  // many of its places are asked (a receipt asks for a block of neighbouring leaves).
  async nodes(epoch: number, places: ReadonlyArray<readonly [level: number, index: number]>): Promise<Uint8Array[]> {
    const chunks = new Map<string, Buffer | undefined>();
    return places.map(([level, index]) => {
      const { chunk, offset } = nodePlace(index);
      const key = `${level}:${chunk}`;
      let hashes = chunks.get(key);
      if (hashes === undefined && !chunks.has(key)) {
        hashes = this.chunkStmt.get(epoch, level, chunk) as Buffer | undefined;
        chunks.set(key, hashes);
      }
      return storedNode(hashes?.subarray(offset - 1, offset - 1 + HASH_SIZE), epoch, level, index);
    });
  }

  sealNext(request: SealRequest): Promise<EpochRecord | null> {
    // Epochs sealed before rollups existed (or after a rebuild) are rolled up first, in order.
    catchUpRollups(this.db, (p) => request.progress?.('rollup-catch-up', { epoch: p.epoch, size: p.events, done: p.done, of: p.of }));
    return sealWith(this.io, request);
  }

  async checkpoint(): Promise<StoredCheckpoint | undefined> {
    return checkpointOf(this.lastCheckpoint.get() as CheckpointRow | undefined);
  }

  async clearRollups(): Promise<void> {
    clearRollups(this.db);
  }

  async catchUpRollups(progress?: RollupProgress): Promise<number> {
    return catchUpRollups(this.db, progress);
  }
}

function sealIO(db: Db): SealIO<SqliteRun> {
  const lastSealed = db.prepare('SELECT epoch, last_seq FROM epochs ORDER BY epoch DESC LIMIT 1');
  const insertChunk = db.prepare('INSERT INTO epoch_nodes (epoch, level, chunk, hashes) VALUES (?, ?, ?, ?)');
  const insertEpoch = db.prepare(`INSERT INTO epochs (${EPOCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  const allEpochs = db.prepare(`SELECT ${EPOCH_COLUMNS} FROM epochs ORDER BY epoch`);
  const lastCheckpoint = db.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1`);
  const insertCheckpoint = db.prepare(`INSERT INTO checkpoints (${CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?)`);
  return {
    readRun: (maxEvents) => db.transaction(() => readRun(db, maxEvents))(), // a consistent snapshot
    store: (run, tree, now, progress, log) =>
      db
        .transaction((): boolean => {
          const last = lastSealed.get() as { last_seq: number } | undefined;
          if ((last?.last_seq ?? 0) !== run.after) return false; // another sealer took this run: read again
          for (const c of nodeChunks(tree.levels)) insertChunk.run(run.epoch, c.level, c.chunk, c.hashes);
          insertEpoch.run(run.epoch, run.firstSeq, run.lastSeq, run.size, tree.root, run.firstTs, run.lastTs, now);
          // The epoch's usage rollups (aggregated while the run was read), in the same transaction
          // (behind: the catch-up adds them).
          if (run.rollup && storeRunRollup(db, run.epoch, run.rollup)) progress('rolled-up', { epoch: run.epoch, size: run.size });
          progress('stored', { epoch: run.epoch, size: run.size });
          if (log) {
            // The epoch log's new checkpoint, in this transaction: refused (and nothing stored)
            // unless the log is consistent with the last checkpoint.
            const epochs = (allEpochs.all() as EpochRow[]).map(epochRecordOf);
            const last = checkpointOf(lastCheckpoint.get() as CheckpointRow | undefined);
            const c = nextCheckpoint(epochs, last, log, now);
            insertCheckpoint.run(c.size, c.root, c.note, c.signed_at_ms);
            progress('signed', { epoch: run.epoch, size: c.size });
          }
          return true;
        })
        .immediate(),
  };
}

/**
 * Leaf hashes per read of a run (512 KB). Each read's blob is garbage once copied: with 65,536 a
 * read (2 MB) a 1M-event seal peaked at 258-260 MB, with 16,384 at 252 MB, in no more time.
 */
const READ_SLICE = 16_384;

/** The next run of unsealed events, up to maxEvents, ending before any gap in the sequence. */
function readRun(db: Db, maxEvents: number): SqliteRun | null {
  const last = db.prepare('SELECT epoch, last_seq FROM epochs ORDER BY epoch DESC LIMIT 1').get() as
    | { epoch: number; last_seq: number }
    | undefined;
  const epoch = last ? last.epoch + 1 : 0;
  const after = last ? last.last_seq : 0;
  // Leaf hashes concatenated by SQLite itself, a slice of 16,384 at a time (one blob per slice
  // instead of a row object per event), straight into shared memory the tree-hashing threads read
  // in place. Slices, not one blob: a 1M-event read peaked 70 MB higher as one hex string. In a
  // UTF-8 file (every ledger openDb creates) the blobs are concatenated as they are: a BLOB read as
  // text is its bytes there, and CAST back to BLOB gives them back. Hex, the way that holds in any
  // encoding (UTF-16 text is read as UTF-8, changing the bytes), cost 0.45 s more of a 1M-event
  // read, sorting 64-character strings for the ORDER BY (the one order group_concat promises).
  // The count of corrections tells the rollups whether the run has take-backs to look for.
  const leavesOf =
    db.pragma('encoding', { simple: true }) === 'UTF-8'
      ? `CAST(group_concat(leaf_hash, '' ORDER BY seq) AS BLOB)`
      : `unhex(group_concat(hex(leaf_hash), '' ORDER BY seq))`;
  const slice = db.prepare(`SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi, min(ts) AS t0, max(ts) AS t1,
      sum(kind <> 0) AS corrections, ${leavesOf} AS leaves
    FROM (SELECT seq, ts, kind, leaf_hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?)`);
  type Slice = { n: number; lo: number; hi: number; t0: number; t1: number; corrections: number; leaves: Buffer | null };
  const first = slice.get(after, Math.min(maxEvents, READ_SLICE)) as Slice;
  if (first.n === 0 || !first.leaves) return null;
  const waiting =
    first.n < READ_SLICE
      ? first.n
      : Math.min(maxEvents, db.prepare('SELECT count(*) FROM events WHERE seq > ?').pluck().get(after) as number);
  const leaves = new Uint8Array(new SharedArrayBuffer(waiting * HASH_SIZE));
  const next = { n: 0, lo: first.lo, hi: after, t0: first.t0, t1: first.t1, corrections: 0 };
  for (let s: Slice = first; ; s = slice.get(next.hi, Math.min(waiting - next.n, READ_SLICE)) as Slice) {
    if (s.n === 0 || !s.leaves) break;
    // Never seal what was not read whole: a leaf hash of another size would shift every leaf after it.
    if (s.leaves.length !== s.n * HASH_SIZE)
      throw new Error(
        `sealing read ${s.leaves.length} bytes of leaf hashes for ${s.n} events (seq ${s.lo}…${s.hi}), not ${HASH_SIZE} each`,
      );
    leaves.set(s.leaves, next.n * HASH_SIZE);
    next.corrections += s.corrections;
    next.n += s.n;
    next.hi = s.hi;
    next.t0 = Math.min(next.t0, s.t0);
    next.t1 = Math.max(next.t1, s.t1);
    if (next.n >= waiting) break;
  }
  const run: SqliteRun = {
    epoch,
    after,
    size: next.n,
    firstSeq: next.lo,
    lastSeq: next.hi,
    firstTs: next.t0,
    lastTs: next.t1,
    leaves: leaves.subarray(0, next.n * HASH_SIZE),
  };
  if (run.lastSeq - run.firstSeq + 1 !== run.size) {
    // A gap in the sequence (only if rows were deleted by hand): the epoch ends before it.
    const seqs = db.prepare('SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?').pluck().all(after, maxEvents) as number[];
    run.size = seqs.findIndex((seq, i) => seq !== run.firstSeq + i);
    run.lastSeq = run.firstSeq + run.size - 1;
    run.leaves = run.leaves.subarray(0, run.size * HASH_SIZE);
    const times = db
      .prepare('SELECT min(ts) AS t0, max(ts) AS t1 FROM events WHERE seq BETWEEN ? AND ?')
      .get(run.firstSeq, run.lastSeq) as { t0: number; t1: number };
    run.firstTs = times.t0;
    run.lastTs = times.t1;
  }
  // The run's usage aggregates, in this read snapshot, outside the write lock (like the tree).
  // Corrections counted over what was read (a gap only shortens the run): none, no take-backs.
  run.rollup = aggregateRun(db, run.firstSeq, run.lastSeq, next.corrections > 0);
  return run;
}
