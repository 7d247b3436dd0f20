// Runs inside `receipts serve` on the leader: seals when the oldest unsealed event has waited
// --epoch-ms, or when --epoch-max-events are waiting, whichever comes first. On SQLite the seal
// runs on a worker thread (its own connection); only the short write of the epoch takes the lock.
import type { FastifyBaseLogger } from 'fastify';
import { Worker } from 'node:worker_threads';
import { formatSignerKey, type SigningKey } from '../checkpoint/index.ts';
import { EpochLogError, logSigner, type EpochRecord, type Ledger, type WorkerLedgerSpec } from '../ledger/index.ts';
import { sealNext } from './sealer.ts';

/** Seals the next epoch of at most maxEvents; null when nothing waits. */
export type SealExecutor = (maxEvents: number, now: number) => Promise<EpochRecord | null>;

export function inProcessSealer(ledger: Ledger, logKey?: SigningKey, logger?: FastifyBaseLogger): SealExecutor {
  const log = logKey && logSigner(logKey);
  const progress = catchUpLogger(logger);
  return (maxEvents, now) => sealNext(ledger, { maxEvents, now, progress, ...(log && { log }) });
}

/**
 * Logs the rolling up of epochs sealed before usage rollups existed (a large ledger upgraded, or
 * after `receipts rollups rebuild`): a line at most every 5 s, and one when done.
 */
export function catchUpLogger(logger?: FastifyBaseLogger): (phase: string, d: Record<string, number>) => void {
  let last = 0;
  return (phase, d) => {
    if (phase === 'analyze-failed')
      logger?.warn(
        { epoch: d.epoch },
        `planner statistics: ANALYZE events (seq) failed after sealing epoch ${d.epoch}; usage may read the whole events table until autovacuum analyzes it: let the service's role own the events table, or run ANALYZE events after large seals`,
      );
    if (phase !== 'rollup-catch-up' || !logger) return;
    const now = Date.now();
    if (d.done !== d.of && now - last < 5_000) return;
    last = now;
    logger.info(
      { epoch: d.epoch, done: d.done, of: d.of },
      d.done === d.of
        ? `usage rollups: rolled up ${d.of} epochs sealed before them; usage reads them now`
        : `usage rollups: rolling up epochs sealed before them, ${d.done} of ${d.of} (usage stays exact meanwhile, read from events)`,
    );
  };
}

export interface SealerOptions {
  logger?: FastifyBaseLogger;
  /** The log key: each seal signs a checkpoint of the epoch log with it. */
  logKey?: SigningKey;
}

/** How the service seals this ledger, as the ledger says (Ledger.sealer): close() when done. */
export function sealerFor(
  ledger: Ledger,
  options: SealerOptions = {},
): { seal: SealExecutor; catchUp(): Promise<void>; close(): Promise<void> } {
  const site = ledger.sealer;
  if (site.kind === 'worker') return new WorkerSealer(site.open, options);
  const progress = catchUpLogger(options.logger);
  return {
    seal: inProcessSealer(ledger, options.logKey, options.logger),
    catchUp: async () => {
      await ledger.epochs.catchUpRollups((p) => progress('rollup-catch-up', p));
    },
    close: async () => {},
  };
}

type Pending = { resolve: (e: EpochRecord | null) => void; reject: (err: Error) => void };
type FromWorker =
  | { id: number; epoch?: EpochRecord | null; error?: string; epochLog?: boolean }
  | { opened: Record<string, unknown> }
  | { progress: { phase: string; detail: Record<string, number> } }
  | { failed: string };

/**
 * Seals on a worker thread with its own connection (WorkerLedgerSpec). A worker that dies fails
 * the seals it held (the scheduler counts and retries them) and is replaced on the next seal.
 */
export class WorkerSealer {
  private readonly spec: WorkerLedgerSpec;
  private readonly logKey: string | undefined;
  private readonly logger: FastifyBaseLogger | undefined;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  private readonly progress: (phase: string, d: Record<string, number>) => void;

  constructor(spec: WorkerLedgerSpec, options: SealerOptions = {}) {
    this.spec = spec;
    this.logKey = options.logKey && formatSignerKey(options.logKey);
    this.logger = options.logger;
    this.progress = catchUpLogger(options.logger);
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./worker.ts', import.meta.url), {
      workerData: { ...this.spec, ...(this.logKey && { logKey: this.logKey }) },
    });
    worker.unref();
    worker.on('message', (m: FromWorker) => {
      if ('opened' in m)
        return this.logger?.info({ file: this.spec.file, ...m.opened }, 'seal worker opened its own connection to the ledger');
      if ('progress' in m) return this.progress(m.progress.phase, m.progress.detail);
      if ('failed' in m)
        return this.logger?.error(
          { file: this.spec.file, err: { message: m.failed } },
          'seal worker could not open the ledger; will retry on the next seal',
        );
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(m.epochLog ? new EpochLogError(m.error) : new Error(m.error));
      else p?.resolve(m.epoch ?? null);
    });
    const gone = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the seal worker exited (code ${code})`)));
    return worker;
  }

  readonly seal: SealExecutor = (maxEvents, now) =>
    new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('the seal worker is closed'));
      const worker = (this.worker ??= this.spawn());
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, maxEvents, now });
    });

  /** Rolls up, on the worker, epochs the usage rollups do not reach yet. */
  readonly catchUp = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('the seal worker is closed'));
      const worker = (this.worker ??= this.spawn());
      const id = this.nextId++;
      this.pending.set(id, { resolve: () => resolve(), reject });
      worker.postMessage({ id, catchUp: true });
    });

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}

export interface SchedulerOptions {
  epochMs: number;
  maxEvents: number;
  seal: SealExecutor;
  /** Rolls up epochs the usage rollups do not reach yet (see Ledger epochs.catchUpRollups). */
  catchUp?: () => Promise<void>;
  logger?: FastifyBaseLogger;
  onSealed?: (epoch: EpochRecord, seconds: number) => void;
  onError?: (err: unknown) => void;
}

export class SealScheduler {
  private readonly ledger: Ledger;
  private readonly options: SchedulerOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<EpochRecord[]> | undefined;
  /** Why sealing stopped for good (an inconsistent epoch log), if it did. */
  halted: EpochLogError | undefined;
  private firstRound = true;

  constructor(ledger: Ledger, options: SchedulerOptions) {
    this.ledger = ledger;
    this.options = options;
  }

  start(): void {
    if (this.halted) return;
    // Check often enough to seal within a tenth of the epoch length of it falling due.
    const tick = Math.min(1000, Math.max(20, Math.floor(this.options.epochMs / 10)));
    this.timer = setInterval(() => void this.tick(), tick);
    this.timer.unref();
  }

  /** Stops the timer and waits for a seal in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Seals what is due (one tick at a time); resolves with the epochs sealed. */
  tick(now = Date.now()): Promise<EpochRecord[]> {
    this.running ??= this.sealDue(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async sealDue(now: number): Promise<EpochRecord[]> {
    const sealed: EpochRecord[] = [];
    if (this.halted) return sealed;
    try {
      // Once after start, even when nothing is due: epochs sealed before usage rollups existed
      // (a ledger upgraded) are rolled up (each seal would do it first anyway).
      if (this.firstRound && this.options.catchUp) await this.options.catchUp();
      this.firstRound = false;
      for (;;) {
        const waiting = await this.ledger.events.unsealed();
        const due =
          waiting.events >= this.options.maxEvents ||
          (waiting.oldestReceivedAt !== null && now - waiting.oldestReceivedAt >= this.options.epochMs);
        if (!due) break;
        const started = performance.now();
        const epoch = await this.options.seal(this.options.maxEvents, now);
        if (!epoch) break;
        const seconds = (performance.now() - started) / 1000;
        this.options.logger?.info(
          { epoch: epoch.epoch, size: epoch.size, root: epoch.root, ms: Math.round(seconds * 1000) },
          'sealed epoch',
        );
        this.options.onSealed?.(epoch, seconds);
        sealed.push(epoch);
      }
    } catch (err) {
      this.options.onError?.(err);
      if (err instanceof EpochLogError) {
        // Signing would break the log's promise (append only): stop sealing, loudly, until an
        // operator looks. Events are still accepted; they wait unsealed.
        clearInterval(this.timer);
        this.timer = undefined;
        this.halted = err;
        this.options.logger?.fatal(
          { err: { message: err.message } },
          'SEALING STOPPED: the epoch log is not consistent with its last signed checkpoint; nothing was stored. Restore the epochs from a backup or investigate before restarting',
        );
      } else this.options.logger?.error({ err: { message: (err as Error).message } }, 'sealing failed; will retry on the next tick');
    }
    return sealed;
  }
}
