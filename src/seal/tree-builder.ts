// The seal's tree builder: the same RFC 6962 tree as merkle/tree.ts's buildTree, hashed off the
// caller's event loop on worker threads (one per core, two at most here), a level at a time. The
// levels live in one SharedArrayBuffer; each level's pairs are split between the threads, and the
// small top levels (too few pairs to be worth splitting) go to one thread in one message. The
// caller's thread only copies the leaves in and waits: on PostgreSQL the leader's event loop keeps
// serving (and its lock heartbeat keeps beating) while a large epoch is hashed.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HASH_SIZE } from '../merkle/hash.ts';
import { kernelModule } from '../merkle/level-hasher.ts';
import { buildTreeBulk, levelSizes, rootOf } from '../merkle/tree.ts';
import type { BuiltTree } from '../ledger/index.ts';
import { TREE_WORKER_SOURCE } from './tree-worker.ts';

/**
 * Work for a tree-hashing thread: pairs [from, to) of each level, in order. `below` and `out` are
 * byte offsets into levels, except that the first level reads the leaves (`fromLeaves`).
 */
export interface HashJob {
  id: number;
  leaves: { buf: SharedArrayBuffer; offset: number };
  levels: SharedArrayBuffer;
  steps: Array<{ fromLeaves: boolean; below: number; count: number; out: number; from: number; to: number }>;
}

/** Below this many leaves the tree is hashed on the caller's thread: under a millisecond. */
export const PARALLEL_MIN_LEAVES = 4096;
/** A level with fewer pairs than this is not split (the rest of the tree goes to one thread). */
const SPLIT_MIN_PAIRS = 8192;

type Pending = { resolve: () => void; reject: (err: Error) => void };

/** Tree-hashing threads, started on first use and kept (an idle one never holds the process open). */
export class TreeWorkers {
  readonly threads: number;
  private readonly workers: Array<Worker | undefined>;
  private readonly pending = new Map<number, Pending & { worker: number }>();
  private nextId = 0;

  constructor(threads = Math.min(2, availableParallelism())) {
    this.threads = Math.max(1, threads);
    this.workers = new Array(this.threads).fill(undefined);
  }

  private worker(i: number): Worker {
    const existing = this.workers[i];
    if (existing) return existing;
    const worker = new Worker(TREE_WORKER_SOURCE, { eval: true, workerData: { module: kernelModule() } });
    worker.on('message', (m: { id: number; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (![...this.pending.values()].some((q) => q.worker === i)) worker.unref();
      if (m.error !== undefined) p?.reject(new Error(`tree hashing failed: ${m.error}`));
      else p?.resolve();
    });
    // A thread that dies fails what it held (the seal fails, stores nothing, and is retried) and
    // is replaced on the next job.
    const gone = (err: Error) => {
      if (this.workers[i] === worker) this.workers[i] = undefined;
      for (const [id, p] of this.pending)
        if (p.worker === i) {
          this.pending.delete(id);
          p.reject(err);
        }
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`a tree-hashing thread exited (code ${code})`)));
    // Held open only while it holds work (a 'message' listener refs it; idle, it is unref'd).
    worker.unref();
    this.workers[i] = worker;
    return worker;
  }

  private run(i: number, job: Omit<HashJob, 'id' | 'steps'>, steps: HashJob['steps']): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject, worker: i });
      const worker = this.worker(i);
      worker.ref(); // a build in progress keeps the process alive; an idle thread does not
      worker.postMessage({ id, ...job, steps } satisfies HashJob);
    });
  }

  /** The epoch tree over concatenated leaf hashes, every level and the root, hashed on the threads. */
  async build(leaves: Uint8Array): Promise<BuiltTree> {
    const sizes = levelSizes(leaves.length / HASH_SIZE);
    if (sizes[0]! < PARALLEL_MIN_LEAVES) {
      const tree = buildTreeBulk(leaves);
      return { root: rootOf(tree), levels: tree.levels };
    }
    // Levels 1 … root in one shared buffer; the leaves are read in place when the engine read
    // them into shared memory (both engines do), else copied in once.
    const offsets: number[] = [0];
    let total = 0;
    for (const n of sizes.slice(1)) {
      offsets.push(total);
      total += n * HASH_SIZE;
    }
    const levels = new SharedArrayBuffer(total);
    const bytes = new Uint8Array(levels);
    let shared = leaves;
    if (!(leaves.buffer instanceof SharedArrayBuffer)) {
      shared = new Uint8Array(new SharedArrayBuffer(leaves.length));
      shared.set(leaves);
    }
    const job = { leaves: { buf: shared.buffer as SharedArrayBuffer, offset: shared.byteOffset }, levels };
    const step = (l: number, from: number, to: number) => ({
      fromLeaves: l === 1,
      below: offsets[l - 1]!,
      count: sizes[l - 1]!,
      out: offsets[l]!,
      from,
      to,
    });
    let l = 1;
    for (; l < sizes.length && sizes[l - 1]! >> 1 >= SPLIT_MIN_PAIRS * this.threads; l++) {
      const pairs = sizes[l - 1]! >> 1;
      const share = Math.ceil(pairs / this.threads / 4) * 4; // whole SIMD groups of four per thread
      const jobs: Promise<void>[] = [];
      for (let t = 0; t < this.threads; t++) {
        const from = Math.min(pairs, t * share);
        const to = t === this.threads - 1 ? pairs : Math.min(pairs, from + share);
        if (from < to) jobs.push(this.run(t, job, [step(l, from, to)]));
      }
      await Promise.all(jobs);
    }
    const rest: HashJob['steps'] = [];
    for (; l < sizes.length; l++) rest.push(step(l, 0, sizes[l - 1]! >> 1));
    if (rest.length > 0) await this.run(0, job, rest);
    const tree = sizes.map((n, i) => (i === 0 ? leaves : bytes.subarray(offsets[i]!, offsets[i]! + n * HASH_SIZE)));
    return { root: tree.at(-1)!.slice(0, HASH_SIZE), levels: tree };
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0, this.workers.length, ...new Array(this.threads).fill(undefined));
    await Promise.all(workers.map((w) => w?.terminate()));
  }
}

let shared: TreeWorkers | undefined;

/** The process's tree-hashing threads (one set, shared by every seal in the process). */
export function treeWorkers(): TreeWorkers {
  shared ??= new TreeWorkers();
  return shared;
}

/** The seal's builder: the epoch tree hashed off the event loop, on every core (two at most). */
export function buildEpochTreeOffThread(leaves: Uint8Array): Promise<BuiltTree> {
  return treeWorkers().build(leaves);
}
