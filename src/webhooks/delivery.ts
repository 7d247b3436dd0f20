// The delivery loop (issue 25): sends the outbox's due messages, signed per Standard Webhooks
// (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
// "id.timestamp.body">`, by the `standardwebhooks` package), and logs every attempt in the ledger.
// At least once: a message is moved on only after its attempt is recorded, and only a 2xx
// delivers it; anything else is retried with backoff until 24 h after it was queued, then given
// up (logged so). Its id is fixed when it is queued, so a repeat (a retry, a new leader resending
// what an old one sent but never recorded) carries the same webhook-id and receivers deduplicate.
// The service runs this only on the leader (on PostgreSQL its records are fenced besides).
// A slow or silent receiver holds up nothing else: every attempt has a deadline, at most
// `concurrency` run at once, and at most one per webhook, so one receiver takes at most one slot.
import http from 'node:http';
import https from 'node:https';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { Webhook as Signer } from 'standardwebhooks';
import { redactUrl } from '../event/redact.ts';
import { type DueMessage, WEBHOOK_RETRY_WINDOW_MS, type WebhookStore } from '../ledger/index.ts';
import { checkWebhookUrl, guardedLookup, type Resolver, systemResolver, type UrlPolicy } from './url.ts';

export interface DeliveryOptions {
  store: WebhookStore;
  policy: UrlPolicy;
  /** How host names are resolved (tests stand in a rebinding DNS); the system's by default. */
  resolver?: Resolver;
  logger?: FastifyBaseLogger;
  /** Metrics go here (receipts_webhook_attempts_total{outcome}). */
  registry?: Registry;
  /** One attempt's deadline, connect to response headers, ms (default 10,000). */
  timeoutMs?: number;
  /** Attempts in flight at once, over all webhooks (default 8). */
  concurrency?: number;
  /** How often the outbox is read for due messages, ms (default 1,000); notify() reads it at once. */
  pollMs?: number;
  /** Retry backoff: base × 2^(n−1), capped, with half of it jittered (default 5 s, 1 h). */
  backoff?: { baseMs: number; maxMs: number };
  /** How long after it was queued a message is retried, ms (default 24 h). */
  retryWindowMs?: number;
  now?: () => number;
}

/** What one attempt came to: the receiver's status, or why there was none. */
export interface AttemptResult {
  status: number | null;
  error: string | null;
}

const MAX_ERROR_LENGTH = 500;

/** The Standard Webhooks headers of one attempt of a message, signed now. */
export function signedHeaders(m: Pick<DueMessage, 'id' | 'secret' | 'payload'>, at: Date): Record<string, string> {
  return {
    'webhook-id': m.id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Signer(m.secret).sign(m.id, at, m.payload),
  };
}

/** The delay before retry number n (1 for the first): half fixed, half jittered, capped. */
export function retryDelay(n: number, backoff: { baseMs: number; maxMs: number }, random = Math.random): number {
  const window = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(n - 1, 40));
  return Math.round(window / 2 + (random() * window) / 2);
}

export class WebhookDeliverer {
  private readonly o: Required<Omit<DeliveryOptions, 'logger' | 'registry'>> & { logger: FastifyBaseLogger | undefined };
  private readonly attempts: Counter<'outcome'> | undefined;
  private readonly inFlight = new Map<string, Promise<void>>(); // by webhook id
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Aborts the attempts in flight when the loop stops (the service stops, or leadership is lost). */
  private abort = new AbortController();
  private reading: Promise<void> | undefined;
  private again = false;

  constructor(options: DeliveryOptions) {
    this.o = {
      resolver: systemResolver,
      timeoutMs: 10_000,
      concurrency: 8,
      pollMs: 1000,
      backoff: { baseMs: 5000, maxMs: 3_600_000 },
      retryWindowMs: WEBHOOK_RETRY_WINDOW_MS,
      now: Date.now,
      ...options,
      logger: options.logger,
    };
    if (options.registry) {
      this.attempts = new Counter({
        name: 'receipts_webhook_attempts_total',
        help: 'Webhook delivery attempts recorded, by outcome (delivered, retry, gave_up)',
        labelNames: ['outcome'] as const,
        registers: [options.registry],
      });
      for (const outcome of ['delivered', 'retry', 'gave_up']) this.attempts.inc({ outcome }, 0);
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.timer = setInterval(() => this.notify(), this.o.pollMs);
    this.timer.unref();
    this.notify();
  }

  /**
   * Stops reading the outbox and cuts the attempts in flight short, unrecorded: their messages
   * stay due, and whoever sends next sends them again with the same webhook-id.
   */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.reading;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** Reads the outbox now (an alert was just queued, or an attempt ended). */
  notify(): void {
    if (!this.running) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.fill()
      .catch((err: Error) => this.o.logger?.warn({ err: { message: err.message } }, 'webhooks: reading the outbox failed; retrying'))
      .finally(() => {
        this.reading = undefined;
        if (this.again) {
          this.again = false;
          this.notify();
        }
      });
  }

  /** Starts attempts for due messages while slots are free: one per webhook at a time. */
  private async fill(): Promise<void> {
    const free = this.o.concurrency - this.inFlight.size;
    if (free <= 0) return;
    const due = await this.o.store.due(this.o.now(), free * 4, [...this.inFlight.keys()]);
    for (const m of due) {
      if (!this.running || this.inFlight.size >= this.o.concurrency) break;
      if (this.inFlight.has(m.webhook_id)) continue;
      const done = this.attempt(m).finally(() => {
        this.inFlight.delete(m.webhook_id);
        this.notify();
      });
      this.inFlight.set(m.webhook_id, done);
    }
  }

  private async attempt(m: DueMessage): Promise<void> {
    const n = m.attempts + 1;
    const started = this.o.now();
    const t0 = performance.now();
    const signal = this.abort.signal;
    const result = await this.send(m, new Date(started), signal);
    if (signal.aborted) return; // stopped mid-attempt: not an answer of the receiver's, nothing to record
    const ms = performance.now() - t0;
    const at = this.o.now();
    const delivered = result.status !== null && result.status >= 200 && result.status < 300;
    const expired = at - m.created_at_ms >= this.o.retryWindowMs;
    const outcome = delivered ? 'delivered' : expired ? 'gave_up' : 'retry';
    const nextAt = outcome === 'retry' ? at + retryDelay(n, this.o.backoff) : undefined;
    const where = { webhook_id: m.webhook_id, message_id: m.id, attempt: n, url: redactUrl(m.url) };
    let recorded: boolean;
    try {
      recorded = await this.o.store.record({
        message_id: m.id,
        webhook_id: m.webhook_id,
        attempt: n,
        at_ms: at,
        ms,
        status: result.status,
        error: result.error,
        outcome,
        ...(nextAt !== undefined && { next_at_ms: nextAt }),
      });
    } catch (err) {
      // Not recorded (leadership lost, database down): the message stays due and is sent again,
      // with the same webhook-id, by whoever leads next.
      this.o.logger?.warn({ ...where, err: { message: (err as Error).message } }, 'webhooks: an attempt could not be recorded');
      return;
    }
    if (recorded) this.attempts?.inc({ outcome });
    if (!recorded) {
      // The message moved on without us: its webhook was deleted, or another sender recorded this attempt.
      this.o.logger?.info(
        { ...where, status: result.status },
        'webhooks: attempt not recorded; the message is gone or was recorded already',
      );
      return;
    }
    if (outcome === 'delivered') this.o.logger?.info({ ...where, status: result.status }, 'webhook delivered');
    else if (outcome === 'gave_up')
      this.o.logger?.error(
        { ...where, status: result.status, error: result.error },
        'webhook given up: not delivered within the retry window',
      );
    else
      this.o.logger?.warn(
        { ...where, status: result.status, error: result.error, retry_at: new Date(nextAt!).toISOString() },
        'webhook not delivered; retrying',
      );
  }

  /** One POST of the message: resolves with the status once headers arrive, or why none came. Never throws. */
  private send(m: DueMessage, at: Date, signal: AbortSignal): Promise<AttemptResult> {
    let url: URL;
    try {
      url = checkWebhookUrl(m.url, this.o.policy); // again: the policy may have changed since the webhook was made
    } catch (err) {
      return Promise.resolve({ status: null, error: (err as Error).message });
    }
    const body = Buffer.from(m.payload);
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (r: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(r.error === null ? r : { ...r, error: r.error.slice(0, MAX_ERROR_LENGTH) });
      };
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent: false, // one connection per attempt: nothing pooled outlives its deadline
        signal,
        lookup: guardedLookup(this.o.policy, this.o.resolver),
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'user-agent': 'sui-receipts-webhooks',
          ...signedHeaders(m, at),
        },
      });
      const deadline = setTimeout(() => {
        finish({ status: null, error: `no response within ${this.o.timeoutMs} ms` });
        request.destroy();
      }, this.o.timeoutMs);
      request.on('response', (res) => {
        const status = res.statusCode ?? null;
        const redirect = status !== null && status >= 300 && status < 400;
        finish({ status, error: redirect ? `answered ${status}: redirects are not followed` : null });
        res.destroy(); // the body is not needed; a receiver trickling one holds nothing
      });
      request.on('error', (err: NodeJS.ErrnoException) => finish({ status: null, error: err.message || String(err.code) }));
      request.end(body);
    });
  }
}
