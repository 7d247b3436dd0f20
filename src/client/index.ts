// The client SDK for services that record usage. record() returns at once and never throws;
// events are batched, sent with idempotent retries, and every outcome reaches a callback.
// Edge-safe: fetch only, no Node-only module on this path (the SQLite spool is a separate,
// Node-only module the caller passes in). The parts, by job: options.ts (the options and their
// defaults), queue.ts (the queue and its batches), sender.ts (one batch to the sink, with
// retries), spooling.ts (the spool, and memory while it cannot write), close.ts (the deadline).
import type { FieldError } from '../event/validate.ts';
import type { AnyReceipt } from '../receipt/format.ts';
import { CheckedEvent } from './checked.ts';
import { checkLimits, type LimitCheckAnswer, type LimitCheckItem } from './check.ts';
import { pastDeadline, undelivered } from './close.ts';
import { asClientError, UsageClientError } from './errors.ts';
import { nodeVersionProblem } from './node-version.ts';
import {
  type DeliveredEvent,
  MAX_TIMER_MS,
  settings,
  type QueuedEvent,
  type Rejection,
  type Settings,
  type UsageClient,
  type UsageClientOptions,
  type UsageClientStats,
  type UsageEventInput,
} from './options.ts';
import { describe, EventQueue } from './queue.ts';
import { newRequestId } from './request-id.ts';
import { sendBatch, type Delivery, type InFlight } from './sender.ts';
import { createHttpSink, resolveSink, type Sink, type SinkResult } from './sinks/index.ts';
import { SpoolKeeper } from './spooling.ts';

export { verifyReceipt } from '../verify/index.ts';
export { USAGE_CLIENT_ERROR_CODES, UsageClientError, type UsageClientErrorCode } from './errors.ts';
export { createHttpSink, createMemorySink, registerSink, registeredSinks, retryAfterMs } from './sinks/index.ts';
export type { HttpSinkOptions, MemorySink, Sink, SinkAnswer, SinkFactory, SinkResult } from './sinks/index.ts';
export type {
  DeliveredEvent,
  QueuedEvent,
  Rejection,
  Spool,
  SpoolQuarantine,
  UsageClient,
  UsageClientOptions,
  UsageClientStats,
  UsageEventInput,
} from './options.ts';
export { newRequestId, usableRequestId } from './request-id.ts';
export type { LimitCheckAnswer, LimitCheckItem } from './check.ts';

/**
 * What the sink said of one stored event. The id and leaf hash are taken only when they are what
 * they must be (a safe integer, 64 hex): an answer that is not is passed on without them.
 */
function deliveryOf(event: QueuedEvent, r: SinkResult | undefined): DeliveredEvent {
  const d: DeliveredEvent = { event, status: r?.status === 'duplicate' ? 'duplicate' : 'created' };
  if (r && Number.isSafeInteger(r.id) && (r.id as number) > 0) d.id = r.id as number;
  if (r && typeof r.leaf_hash === 'string' && HEX64.test(r.leaf_hash)) d.leaf_hash = r.leaf_hash;
  return d;
}
const HEX64 = /^[0-9a-f]{64}$/;

export function createUsageClient(options: UsageClientOptions): UsageClient {
  // Fail at construction, in words, rather than later in a spool's segmentation fault.
  const problem = nodeVersionProblem('the sui-receipts client');
  if (problem) throw new UsageClientError('unsupported_runtime', problem);
  return new Client(options);
}

class Client implements UsageClient, Delivery {
  readonly o: Settings;
  readonly sink: Sink;
  private readonly queue = new EventQueue();
  private inFlightCount = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The pending timer sends at once (a full batch waits). */
  private timerSoon = false;
  private sending: Promise<void> | undefined;
  private current: InFlight | null = null;
  private closing: Promise<void> | undefined;
  /** close() gave up: nothing more is sent, and answers that still come are ignored. */
  private isStopped = false;
  private closed = false;
  private readonly counters = { sent: 0, retried: 0, dropped: 0, rejected: 0, quarantined: 0 };
  private readonly keeper: SpoolKeeper | undefined;
  private roomWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(options: UsageClientOptions) {
    this.o = settings(options);
    // Configuration errors throw here, at start-up, never later from record().
    if (options.sink === undefined)
      this.sink = createHttpSink({ url: options.url!, apiKey: options.apiKey!, fetch: options.fetch, timeoutMs: this.o.timeoutMs });
    else if (typeof options.sink === 'string') this.sink = resolveSink(options.sink, options);
    else if (typeof options.sink?.send === 'function') this.sink = options.sink;
    else
      throw new UsageClientError(
        'bad_option',
        'createUsageClient: sink must be a Sink ({ name, send(events, signal) }) or a registered name such as "memory"',
      );
    this.keeper = options.spool ? new SpoolKeeper(options.spool, this.o.maxQueue, (e) => this.report(e)) : undefined;
    let left: QueuedEvent[] = [];
    try {
      left =
        options.spool?.load((q) => {
          this.counters.quarantined += q.rows;
          this.report(
            new UsageClientError(
              'spool_rows_set_aside',
              `the spool held ${q.rows} unreadable rows; they were set aside, not sent, in ${q.where} (${q.reasons.join('; ')})`,
            ),
          );
        }) ?? [];
    } catch (err) {
      // Never a reason for the app not to start: the rows stay where they are for an operator,
      // and new events are recorded (and spooled, if the spool can write).
      this.report(
        new UsageClientError(
          'spool_unreadable',
          `the usage client could not read the spool (${describe(err)}); events left in it from an earlier run are not sent`,
          { cause: err },
        ),
      );
    }
    if (left.length > 0) {
      for (const e of left) this.queue.push(e, 0); // read back from the spool: checked again
      this.schedule(0);
    }
  }

  record(event: UsageEventInput): void | Promise<void> {
    try {
      if (this.closed) {
        this.reject({ ...(event as QueuedEvent), request_id: String(event?.request_id ?? '') }, 'rejected', [
          { path: '', rule: 'client_closed', message: 'the client was closed' },
        ]);
        return;
      }
      // A copy, so the caller cannot change a queued event; the middleware's own events
      // (CheckedEvent, never handed to anyone else) are queued as they are.
      const bound = CheckedEvent.boundOf(event);
      const queued: QueuedEvent =
        bound > 0
          ? (event as QueuedEvent)
          : { ...event, request_id: typeof event.request_id === 'string' ? event.request_id : newRequestId() };
      if (this.queue.size() + this.inFlightCount >= this.o.maxQueue) {
        if (this.o.overflow === 'block') return this.waitForRoom().then(() => this.record(queued));
        if (this.queue.size() > 0) {
          const dropped = [this.queue.take()];
          this.counters.dropped++;
          this.keeper?.remove([dropped[0]!.request_id]);
          this.queue.compact(); // while the server is down nothing else would
          try {
            this.o.onDropped?.(dropped);
          } catch {}
        }
      }
      this.keeper?.add(queued); // durable before record returns, when the disk allows
      this.queue.push(queued, bound);
      if (this.queue.size() >= this.o.batchSize) this.schedule(0);
      else if (!this.timer && !this.sending) this.schedule(this.o.flushIntervalMs);
    } catch (err) {
      // Never into the caller's request path: a bad event object (a getter that throws, a
      // failing spool) is reported, not thrown.
      this.report(asClientError('bad_event', err));
    }
  }

  private waitForRoom(): Promise<void> {
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private schedule(delayMs: number): void {
    if (this.timer) {
      // Already due as soon (every record() past a full batch lands here until the send
      // starts: re-arming each time cost more than the rest of record()).
      if (delayMs > 0 || this.timerSoon) return;
      clearTimeout(this.timer);
    }
    this.timerSoon = delayMs === 0;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerSoon = false;
      void this.pump();
    }, delayMs);
    if (this.o.waitUntil) this.o.waitUntil(this.whenIdle());
  }

  /** Sends batches until the queue is empty; one batch in flight at a time, in order. */
  private pump(): Promise<void> {
    let failed = false;
    this.sending ??= (async () => {
      while (this.queue.size() > 0 && !this.isStopped) {
        const batch = this.queue.takeBatch(this.o.batchSize, (e, errors) => {
          this.reject(e, 'rejected', errors);
          this.keeper?.remove([e.request_id]);
        });
        this.inFlightCount = batch.length;
        const current: InFlight = { batch, answered: new Set(), abort: null, wake: null };
        this.current = current;
        try {
          await sendBatch(this, batch);
        } catch (err) {
          // Not an answer of the sink but a fault (an answer it could not read): what was not
          // answered goes back to the front of the queue, for the retry.
          if (!this.isStopped) this.queue.putBack(batch.filter((e) => !current.answered.has(e)));
          throw err;
        } finally {
          this.current = null;
          this.inFlightCount = 0;
          for (const w of this.roomWaiters.splice(0)) w();
        }
      }
    })()
      .catch((err) => {
        // A fault of the client itself (a sink's answer it could not read): reported, and
        // tried again later, never at once (an immediate retry of a failing pump is a loop of
        // promises that starves the app).
        failed = true;
        this.report(
          new UsageClientError(
            'send_failed',
            `the usage client could not send (${describe(err)}); trying again in ${this.o.retry.baseMs} ms`,
            { cause: err },
          ),
        );
      })
      .finally(() => {
        this.sending = undefined;
        if (failed && this.queue.size() > 0 && !this.isStopped) this.schedule(Math.max(1, this.o.retry.baseMs));
        else if (this.queue.size() > 0 && !this.isStopped) void this.pump();
        else for (const w of this.idleWaiters.splice(0)) w();
      });
    return this.sending;
  }

  // ---- Delivery: what sendBatch tells the client ----

  stopped(): boolean {
    return this.isStopped;
  }

  inFlight(): InFlight | null {
    return this.current;
  }

  delivered(events: QueuedEvent[], results: readonly SinkResult[] | undefined): void {
    const onDelivered = this.o.onDelivered;
    const stored: DeliveredEvent[] | undefined = onDelivered ? [] : undefined;
    if (!results) {
      this.counters.sent += events.length;
      if (stored) for (const event of events) stored.push({ event, status: 'created' });
    } else {
      for (let i = 0; i < events.length; i++) {
        const r = results[i];
        if (!r || r.status === 'created' || r.status === 'duplicate') {
          this.counters.sent++;
          if (stored) stored.push(deliveryOf(events[i]!, r));
        } else this.reject(events[i]!, r.status === 'conflict' ? 'conflict' : 'rejected', r.errors ?? []);
      }
    }
    this.answered(events);
    if (onDelivered && stored!.length > 0) {
      try {
        onDelivered(stored!);
      } catch {}
    }
  }

  refused(events: QueuedEvent[], errors: FieldError[]): void {
    for (const e of events) this.reject(e, 'rejected', errors);
    this.answered(events);
  }

  retrying(error: Error): void {
    this.counters.retried++;
    // A sink's own Error (a third-party sink's answer) gets the code too, its message kept.
    this.report(asClientError('send_failed', error));
  }

  /** Events with their answer: out of the spool, and (part of a halved batch) marked answered. */
  private answered(events: QueuedEvent[]): void {
    const current = this.current;
    if (current && events !== current.batch) for (const e of events) current.answered.add(e);
    this.keeper?.remove(events.map((e) => e.request_id));
  }

  private reject(event: QueuedEvent, status: Rejection['status'], errors: FieldError[]): void {
    this.counters.rejected++;
    try {
      this.o.onRejected?.({ event, status, errors });
    } catch {}
  }

  private whenIdle(): Promise<void> {
    if (this.isStopped || (this.queue.size() === 0 && !this.sending && !this.timer)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerSoon = false;
    }
    if (this.queue.size() > 0 || this.sending) {
      const idle = this.whenIdle();
      void this.pump();
      await idle;
    }
  }

  close(options?: { timeoutMs?: number }): Promise<void> {
    // Once: a second call waits for the first (it would otherwise report the same events again).
    this.closing ??= this.closeOnce(options?.timeoutMs);
    return this.closing;
  }

  private async closeOnce(timeoutMs: number | undefined): Promise<void> {
    this.closed = true;
    const given = typeof timeoutMs === 'number' && timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS;
    if (timeoutMs !== undefined && !given)
      this.report(
        new UsageClientError(
          'bad_option',
          `close: timeoutMs must be a number of ms from 0 to ${MAX_TIMER_MS} (got ${timeoutMs}); using closeTimeoutMs, ${this.o.closeTimeoutMs}`,
        ),
      );
    const ms = given ? timeoutMs : this.o.closeTimeoutMs;
    if (await pastDeadline(() => this.flush(), ms)) this.giveUp(ms);
    try {
      this.keeper?.close();
      await this.sink.close?.();
    } catch (err) {
      this.report(asClientError('close_failed', err));
    }
  }

  /** To onError, which must not throw into the client. */
  private report(error: UsageClientError): void {
    try {
      this.o.onError?.(error);
    } catch {}
  }

  /**
   * close() past its deadline (the sink down or slow): stop sending. A send still under way may
   * yet be delivered: a resend then is a duplicate, which the service ignores.
   */
  private giveUp(ms: number): void {
    if (this.isStopped) return;
    this.isStopped = true;
    const current = this.current;
    current?.abort?.abort(new UsageClientError('closing', 'the client is closing'));
    current?.wake?.();
    const left = [...(current?.batch.filter((e) => !current.answered.has(e)) ?? []), ...this.queue.drain()];
    this.inFlightCount = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.idleWaiters.splice(0)) w();
    for (const w of this.roomWaiters.splice(0)) w();
    const lost = undelivered(left, this.keeper, ms, (e) => this.report(e));
    if (lost.length === 0) return;
    this.counters.dropped += lost.length;
    try {
      this.o.onDropped?.(lost);
    } catch {}
  }

  stats(): UsageClientStats {
    return { queued: this.queue.size(), inFlight: this.inFlightCount, ...this.counters };
  }

  async receipt(id: number): Promise<AnyReceipt> {
    if (!this.sink.receipt)
      throw new UsageClientError(
        'no_receipts',
        `receipt ${id}: the ${this.sink.name} sink has no receipts; they come from the service (use the HTTP sink, or GET /v1/events/${id}/receipt)`,
      );
    return this.sink.receipt(id);
  }

  check<T extends LimitCheckItem | readonly LimitCheckItem[]>(
    items: T,
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<T extends readonly LimitCheckItem[] ? LimitCheckAnswer[] : LimitCheckAnswer> {
    const target = { url: this.o.url, apiKey: this.o.apiKey, fetch: this.o.fetch, timeoutMs: this.o.timeoutMs };
    return checkLimits(target, items, options) as Promise<T extends readonly LimitCheckItem[] ? LimitCheckAnswer[] : LimitCheckAnswer>;
  }
}
