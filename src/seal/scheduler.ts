// Runs inside `receipts serve`: seals when the oldest unsealed event has waited --epoch-ms, or
// when --epoch-max-events are waiting, whichever comes first.
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../ledger/db.ts';
import { sealNext, unsealed, type EpochHeader } from './sealer.ts';

export interface SchedulerOptions {
  epochMs: number;
  maxEvents: number;
  logger?: FastifyBaseLogger;
  onSealed?: (epoch: EpochHeader, seconds: number) => void;
  onError?: (err: unknown) => void;
}

export class SealScheduler {
  private readonly db: Db;
  private readonly options: SchedulerOptions;
  private timer: NodeJS.Timeout | undefined;

  constructor(db: Db, options: SchedulerOptions) {
    this.db = db;
    this.options = options;
  }

  start(): void {
    // Check often enough to seal within a tenth of the epoch length of it falling due.
    const tick = Math.min(1000, Math.max(20, Math.floor(this.options.epochMs / 10)));
    this.timer = setInterval(() => this.tick(), tick);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Seals what is due; returns the epochs sealed. */
  tick(now = Date.now()): EpochHeader[] {
    const sealed: EpochHeader[] = [];
    try {
      for (;;) {
        const waiting = unsealed(this.db);
        const due =
          waiting.events >= this.options.maxEvents ||
          (waiting.oldestReceivedAt !== null && now - waiting.oldestReceivedAt >= this.options.epochMs);
        if (!due) break;
        const started = performance.now();
        const epoch = sealNext(this.db, { maxEvents: this.options.maxEvents, now });
        if (!epoch) break;
        const seconds = (performance.now() - started) / 1000;
        this.options.logger?.info({ epoch: epoch.epoch, size: epoch.size, root: epoch.root, ms: Math.round(seconds * 1000) }, 'sealed epoch');
        this.options.onSealed?.(epoch, seconds);
        sealed.push(epoch);
      }
    } catch (err) {
      this.options.logger?.error({ err: { message: (err as Error).message } }, 'sealing failed; will retry on the next tick');
      this.options.onError?.(err);
    }
    return sealed;
  }
}
