// Raising alerts (issue 25): on the leader, a short timer asks a crossing source which thresholds
// of which limits the usage has reached in their current period, and queues one alert per
// (owner, limit, threshold, period) in the ledger's outbox. Queueing is once only by that key, so
// asking again (every tick, after a restart, on a new leader) never sends a second alert; and a
// crossing seen but not yet queued when the process dies is seen again by the next run (usage in a
// period does not shrink but by a correction), so none is lost.
import type { FastifyBaseLogger } from 'fastify';
import type { Ledger } from '../ledger/index.ts';
import { alertOf, type Crossing } from './payload.ts';

/** Which thresholds are crossed now (each limit's current period); the keys already queued may be skipped. */
export type CrossingSource = (now: number, queued: (key: string) => Promise<boolean>) => Promise<Crossing[]>;

export interface AlertDetectorOptions {
  ledger: Ledger;
  source: CrossingSource;
  /** How often to look, ms (default 2,000). */
  intervalMs?: number;
  /** Told when alerts were queued (the delivery loop reads the outbox at once). */
  onQueued?: (messages: number) => void;
  logger?: FastifyBaseLogger;
  now?: () => number;
}

export class AlertDetector {
  private readonly o: AlertDetectorOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** Keys known queued (an alert is never unqueued): asked of the ledger once each. */
  private readonly queued = new Set<string>();

  constructor(options: AlertDetectorOptions) {
    this.o = options;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs ?? 2000);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private tick(): Promise<unknown> {
    this.running ??= this.runOnce()
      .catch((err: Error) => this.o.logger?.warn({ err: { message: err.message } }, 'alerts: looking for crossed thresholds failed'))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** One look: queues what is crossed and not yet queued; returns how many alerts were queued. */
  async runOnce(): Promise<number> {
    const now = (this.o.now ?? Date.now)();
    const { webhooks } = this.o.ledger;
    if (this.queued.size > 100_000) this.queued.clear();
    const queued = async (key: string) => {
      if (this.queued.has(key)) return true;
      const known = await webhooks.alerted(key);
      if (known) this.queued.add(key);
      return known;
    };
    const crossings = await this.o.source(now, queued);
    let alerts = 0;
    let messages = 0;
    for (const c of crossings) {
      // Queued on the real clock: the retry window and backoff run on it (the payload keeps the measuring time).
      const alert = alertOf(c, Date.now());
      const r = await webhooks.enqueueAlert(alert);
      this.queued.add(alert.key);
      if (!r.created) continue;
      alerts++;
      messages += r.messages.length;
      this.o.logger?.info(
        {
          owner: c.owner,
          namespace: c.namespace,
          limit: c.limit.id,
          threshold: c.threshold.name,
          as_of: c.as_of,
          messages: r.messages.length,
        },
        r.messages.length > 0 ? 'alert queued' : 'alert raised; no webhook of the owner takes the namespace',
      );
    }
    if (messages > 0) this.o.onQueued?.(messages);
    return alerts;
  }
}
