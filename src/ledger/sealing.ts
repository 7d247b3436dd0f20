// The seal, once for both engines: check the request, read the next run of unsealed events,
// build its tree outside any write lock, check the tree, store it (fenced), and hand out the
// epoch. Each engine supplies only the read and the fenced write (its SQL and its I/O).
import { HASH_SIZE } from '../merkle/hash.ts';
import type { LogSigner } from './epoch-log.ts';
import type { BuiltTree, EpochRecord, SealRequest } from './types.ts';

/** The next run of unsealed events, as an engine read it: ledger positions first_seq … last_seq. */
export interface Run {
  epoch: number;
  firstSeq: number;
  lastSeq: number;
  size: number;
  firstTs: number;
  lastTs: number;
  /** The run's leaf hashes concatenated, in ledger order. */
  leaves: Uint8Array;
}

export type Progress = NonNullable<SealRequest['progress']>;

export interface SealIO<R extends Run> {
  /** The next run, up to maxEvents events, in one consistent read; null when nothing waits. */
  readRun(maxEvents: number): R | null | Promise<R | null>;
  /**
   * Stores the tree's nodes and the epoch row in one transaction, fenced so that a second or
   * stale sealer can never write an epoch twice or skip an event. False: another sealer stored
   * this run's epoch first, nothing was written; read again.
   */
  store(run: R, tree: BuiltTree, now: number, progress: Progress, log?: LogSigner): boolean | Promise<boolean>;
}

/** Refuses what a sealer cannot mean: maxEvents is the most events one epoch takes. */
export function checkSealRequest(request: SealRequest): void {
  if (!(Number.isSafeInteger(request.maxEvents) && request.maxEvents >= 1)) {
    throw new RangeError(`maxEvents must be a positive integer, got ${request.maxEvents}`);
  }
}

/** Refuses a tree that is not over the leaves it was given: it would store a corrupt epoch. */
export function checkBuiltTree(tree: BuiltTree, leaves: Uint8Array): void {
  if (tree.levels[0]?.length !== leaves.length) throw new Error('the tree builder returned a leaf level of the wrong size');
  if (tree.root?.length !== HASH_SIZE) throw new Error(`the tree builder returned a root of ${tree.root?.length} bytes, not ${HASH_SIZE}`);
  if (tree.levels.some((l) => l.length === 0 || l.length % HASH_SIZE !== 0))
    throw new Error(`the tree builder returned a level that is not whole ${HASH_SIZE}-byte hashes`);
}

/** Seals the next epoch with the engine's read and write; null when nothing waits. */
export async function sealWith<R extends Run>(io: SealIO<R>, request: SealRequest): Promise<EpochRecord | null> {
  checkSealRequest(request);
  const progress: Progress = request.progress ?? (() => {});
  for (;;) {
    const run = await io.readRun(request.maxEvents);
    if (!run) return null; // an empty interval makes no epoch
    progress('read', { epoch: run.epoch, size: run.size });

    const tree = await request.build(run.leaves);
    checkBuiltTree(tree, run.leaves);
    progress('hashed', { epoch: run.epoch, size: run.size });

    if (!(await io.store(run, tree, request.now, progress, request.log))) continue;
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
