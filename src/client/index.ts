// The client SDK for services that record usage. record() returns at once and never throws;
// events are batched, sent with idempotent retries, and every outcome reaches a callback.
// Edge-safe: fetch only, no Node-only module on this path (the SQLite spool is a separate,
// Node-only module the caller passes in).
import { uuidv7 } from 'uuidv7';
import type { FieldError } from '../event/validate.ts';
import { validateEvent } from '../event/validate.ts';
import type { Receipt } from '../receipt/format.ts';
import { backoffDelay } from '../retry/backoff.ts';
import { nodeVersionProblem } from './node-version.ts';
import { createHttpSink, resolveSink, type Sink, type SinkAnswer } from './sinks/index.ts';

export { verifyReceipt } from '../verify/index.ts';
export { createHttpSink, createMemorySink, registerSink, registeredSinks, retryAfterMs } from './sinks/index.ts';
export type { HttpSinkOptions, MemorySink, Sink, SinkAnswer, SinkFactory, SinkResult } from './sinks/index.ts';

/** An event as a service records it; request_id is assigned when left out. */
export interface UsageEventInput {
  request_id?: string;
  namespace: string;
  action: string;
  caller: string;
  units?: number;
  artifact_digest?: string;
  ts?: number | string;
  source?: string;
  metadata?: Record<string, unknown>;
}

/** A queued event: its request id is fixed from the moment it is recorded. */
export type QueuedEvent = UsageEventInput & { request_id: string };

export interface Rejection {
  event: QueuedEvent;
  /** `rejected`: the server (or the client's own check) refused it; `conflict`: the request id was used with other content. */
  status: 'rejected' | 'conflict';
  errors: FieldError[];
}

/** Where queued events survive a restart of the calling process (see `sui-receipts/spool`). */
export interface Spool {
  /**
   * Events left from an earlier run, oldest first. Stored rows that are not events are set
   * aside (kept, not returned) and told to `onQuarantined`, once, rather than thrown.
   */
  load(onQuarantined?: (quarantine: SpoolQuarantine) => void): QueuedEvent[];
  /** Throws when the event cannot be stored (a full, read-only or failing disk). */
  add(event: QueuedEvent): void;
  /** Several at once, all or none (optional; else add() each). */
  addMany?(events: QueuedEvent[]): void;
  remove(requestIds: string[]): void;
  close(): void;
}

/** Spooled rows that were not events, set aside by load(). */
export interface SpoolQuarantine {
  rows: number;
  /** Where they were kept, in words (the SQLite spool: its table spool_quarantine). */
  where: string;
  /** Why, for the first few. */
  reasons: string[];
}

export interface UsageClientOptions {
  /** The service, e.g. http://127.0.0.1:8080 (for the default HTTP sink). */
  url?: string;
  apiKey?: string;
  /**
   * Where batches go: a Sink, or a registered name with an optional target (`memory`,
   * `jsonl:./usage.jsonl`, `http`). Default: HTTP to `url` with `apiKey`.
   */
  sink?: Sink | string;
  /** Send when this many events wait (default 500, like OpenTelemetry's 512 spans; at most 1,000). */
  batchSize?: number;
  /** Send at the latest this long after an event was recorded, ms (default 1,000). */
  flushIntervalMs?: number;
  /** Most events held (queued and in flight) before `overflow` applies (default 10,000). */
  maxQueue?: number;
  /** When full: drop the oldest (reported to onDropped), or make record() return a promise that waits for room. */
  overflow?: 'drop-oldest' | 'block';
  /** Backoff after a failed send: full jitter under base·2^attempt, capped (default 200 ms, 30 s). */
  retry?: { baseMs: number; maxMs: number };
  /** Per-request timeout, ms (default 10,000). */
  timeoutMs?: number;
  /**
   * How long `close()` keeps trying to deliver, ms (default 10,000). Then it stops: what is not
   * delivered stays in the spool for the next run, or without one is dropped (onDropped).
   */
  closeTimeoutMs?: number;
  onRejected?: (rejection: Rejection) => void;
  onDropped?: (events: QueuedEvent[]) => void;
  /**
   * Transient problems (network, 5xx, 429, 401), for logging; the events are kept and retried.
   * Also a spool that cannot write (reported once, then once when it works again) and spooled
   * rows that were set aside as unreadable.
   */
  onError?: (error: Error) => void;
  spool?: Spool;
  /** Edge runtimes: receives the promise of each scheduled flush (e.g. ctx.waitUntil). */
  waitUntil?: (promise: Promise<unknown>) => void;
  fetch?: typeof fetch;
}

export interface UsageClientStats {
  queued: number;
  inFlight: number;
  sent: number;
  retried: number;
  dropped: number;
  rejected: number;
  /** Rows of the spool set aside at start as unreadable (see Spool.load); not sent. */
  quarantined: number;
}

export interface UsageClient {
  /** Queues an event; returns at once (a promise only under `block` when full). Never throws. */
  record(event: UsageEventInput): void | Promise<void>;
  /** Resolves when everything recorded so far has been answered by the server (or rejected). */
  flush(): Promise<void>;
  /**
   * Flushes, then stops timers and closes the spool. Later records are rejected. Gives up after
   * `timeoutMs` (default: the client's `closeTimeoutMs`, 10 s) while the sink is down: the rest
   * stays in the spool, or is dropped (onDropped) without one. Never rejects.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
  stats(): UsageClientStats;
  /** The receipt of a recorded event, by the id the server gave it. */
  receipt(id: number): Promise<Receipt>;
}

const MAX_BATCH = 1000;
/** While the spool cannot write, it is tried again at most this often (on the next record()). */
const SPOOL_RETRY_MS = 1000;
const ASCII = /^[\x00-\x7f]*$/;
const OK = { ok: true } as const;

/**
 * Marks an event whose every field was checked when it was built (the metering middleware:
 * its fields come from a fixed allow-list and checked option values); its value is `true` or
 * a bound of the event's JSON size in bytes. Internal; the spool does not keep it, so an event
 * read back from the spool is checked again.
 */
export const PRECHECKED: unique symbol = Symbol.for('sui-receipts.prechecked');
/** Stay under the API's 1 MiB body limit with room for the envelope. */
const MAX_BODY_BYTES = 1_000_000;

/** The options as the client uses them: every tunable set. */
type Settings = Required<Pick<UsageClientOptions, 'batchSize' | 'flushIntervalMs' | 'maxQueue' | 'overflow' | 'retry' | 'timeoutMs' | 'closeTimeoutMs'>> & UsageClientOptions;

/** The longest delay setTimeout keeps (longer ones fire after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const DEFAULTS = { batchSize: 500, flushIntervalMs: 1000, maxQueue: 10_000, overflow: 'drop-oldest', retry: { baseMs: 200, maxMs: 30_000 }, timeoutMs: 10_000, closeTimeoutMs: 10_000 } as const;

/**
 * The options with their defaults. An option given as `undefined` (`batchSize: config.batchSize`
 * with nothing configured) takes its default: spread over the defaults, it made the batch size
 * NaN, and the client then spun on empty batches and starved the app's event loop.
 */
function settings(options: UsageClientOptions): Settings {
  if (!options || typeof options !== 'object') throw new Error('createUsageClient: options are required ({ url, apiKey } or { sink })');
  const o: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
  const number = (name: string, v: unknown, min: number, rule: string, max = Number.POSITIVE_INFINITY) => {
    if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max) throw new Error(`createUsageClient: ${name} must be ${rule} (got ${typeof v === 'number' ? v : typeof v})`);
  };
  number('batchSize', o.batchSize, 1, 'a number of events, at least 1 (at most 1,000 are used)');
  o.batchSize = Math.min(MAX_BATCH, Math.floor(o.batchSize as number));
  number('maxQueue', o.maxQueue, 1, 'a number of events, at least 1');
  // Timers: setTimeout turns anything above 2^31 - 1 ms (~24.8 days), Infinity included, into 1 ms.
  const ms = (name: string, v: unknown, min: number) => number(name, v, min, `a number of ms from ${min} to ${MAX_TIMER_MS}`, MAX_TIMER_MS);
  ms('flushIntervalMs', o.flushIntervalMs, 0);
  ms('timeoutMs', o.timeoutMs, 1);
  ms('closeTimeoutMs', o.closeTimeoutMs, 0);
  if (o.overflow !== 'drop-oldest' && o.overflow !== 'block') throw new Error(`createUsageClient: overflow must be 'drop-oldest' or 'block' (got ${JSON.stringify(o.overflow)})`);
  const retry = o.retry as { baseMs?: unknown; maxMs?: unknown } | null;
  if (!retry || typeof retry !== 'object') throw new Error('createUsageClient: retry must be { baseMs, maxMs }');
  ms('retry.baseMs', retry.baseMs ?? DEFAULTS.retry.baseMs, 0);
  ms('retry.maxMs', retry.maxMs ?? DEFAULTS.retry.maxMs, 0);
  o.retry = { baseMs: retry.baseMs ?? DEFAULTS.retry.baseMs, maxMs: retry.maxMs ?? DEFAULTS.retry.maxMs };
  return o as unknown as Settings;
}

export function createUsageClient(options: UsageClientOptions): UsageClient {
  // Fail at construction, in words, rather than later in a spool's segmentation fault.
  const problem = nodeVersionProblem('the sui-receipts client');
  if (problem) throw new Error(problem);
  return new Client(options);
}

class Client implements UsageClient {
  private readonly o: Settings;
  private readonly sink: Sink;
  /** Queued events are queue[head …]; shift() is O(n) on large arrays, a head index is O(1). */
  private queue: QueuedEvent[] = [];
  private head = 0;
  /** Index in `queue` of the last event that still needs the client's check (-1: none). */
  private lastUnchecked = -1;
  /** The largest JSON size bound among the pre-checked events queued since the queue was last empty. */
  private maxBound = 0;
  private inFlight = 0;
  /**
   * Request ids are this instance's UUIDv7 and a sequence number: unique across processes and
   * restarts, ordered in time, and ~25× cheaper on the caller's path than a UUIDv7 per event.
   */
  private readonly idPrefix = uuidv7();
  private idSeq = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The pending timer sends at once (a full batch waits). */
  private timerSoon = false;
  private sending: Promise<void> | undefined;
  /** The batch being sent, and how to cut its send short (close() past its deadline). */
  private current: { batch: QueuedEvent[]; answered: Set<QueuedEvent>; abort: AbortController | null; wake: (() => void) | null } | null = null;
  private closing: Promise<void> | undefined;
  /** close() gave up: nothing more is sent, and answers that still come are ignored. */
  private stopped = false;
  private closed = false;
  private readonly counters = { sent: 0, retried: 0, dropped: 0, rejected: 0, quarantined: 0 };
  /**
   * The spool failed (a full, read-only or failing disk): events are held in memory only, under
   * the same maxQueue bound, until a write succeeds again (tried at most every SPOOL_RETRY_MS).
   * 0 while it works.
   */
  private spoolRetryAt = 0;
  /** The spool's remove() failed last time (reported once until it works again). */
  private removeFailing = false;
  /** Events this client holds that are not in the spool, by request id, in record order. */
  private readonly memoryOnly = new Map<string, QueuedEvent>();
  private roomWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private readonly utf8 = new TextEncoder();

  constructor(options: UsageClientOptions) {
    this.o = settings(options);
    // Configuration errors throw here, at start-up, never later from record().
    if (options.sink === undefined) this.sink = createHttpSink({ url: options.url!, apiKey: options.apiKey!, fetch: options.fetch, timeoutMs: this.o.timeoutMs });
    else if (typeof options.sink === 'string') this.sink = resolveSink(options.sink, options);
    else if (typeof options.sink?.send === 'function') this.sink = options.sink;
    else throw new Error('createUsageClient: sink must be a Sink ({ name, send(events, signal) }) or a registered name such as "memory"');
    let left: QueuedEvent[] = [];
    try {
      left = options.spool?.load((q) => {
        this.counters.quarantined += q.rows;
        this.report(new Error(`the spool held ${q.rows} unreadable rows; they were set aside, not sent, in ${q.where} (${q.reasons.join('; ')})`));
      }) ?? [];
    } catch (err) {
      // Never a reason for the app not to start: the rows stay where they are for an operator,
      // and new events are recorded (and spooled, if the spool can write).
      this.report(new Error(`the usage client could not read the spool (${describe(err)}); events left in it from an earlier run are not sent`));
    }
    if (left.length > 0) {
      this.queue.push(...left);
      this.lastUnchecked = this.queue.length - 1; // read back from the spool: checked again
      this.schedule(0);
    }
  }

  record(event: UsageEventInput): void | Promise<void> {
    try {
      if (this.closed) {
        this.reject({ ...(event as QueuedEvent), request_id: String(event?.request_id ?? '') }, 'rejected', [{ path: '', rule: 'client_closed', message: 'the client was closed' }]);
        return;
      }
      // A copy, so the caller cannot change a queued event; the middleware's own events
      // (PRECHECKED, never handed to anyone else) are queued as they are.
      const bound = (event as { [PRECHECKED]?: unknown })[PRECHECKED];
      const prechecked = typeof bound === 'number' && bound > 0 && typeof event.request_id === 'string';
      const queued: QueuedEvent = prechecked
        ? (event as QueuedEvent)
        : { ...event, request_id: typeof event.request_id === 'string' ? event.request_id : `${this.idPrefix}-${(++this.idSeq).toString(36)}` };
      if (this.size() + this.inFlight >= this.o.maxQueue) {
        if (this.o.overflow === 'block') return this.waitForRoom().then(() => this.record(queued));
        if (this.size() > 0) {
          const dropped = [this.take()];
          this.counters.dropped++;
          this.unspool([dropped[0]!.request_id]);
          this.compact(); // while the server is down nothing else would
          try {
            this.o.onDropped?.(dropped);
          } catch {}
        }
      }
      if (this.o.spool) this.spoolAdd(queued); // durable before record returns, when the disk allows
      if (!prechecked) this.lastUnchecked = this.queue.length;
      else if ((bound as number) > this.maxBound) this.maxBound = bound as number;
      this.queue.push(queued);
      if (this.size() >= this.o.batchSize) this.schedule(0);
      else if (!this.timer && !this.sending) this.schedule(this.o.flushIntervalMs);
    } catch (err) {
      // Never into the caller's request path: a bad event object (a getter that throws, a
      // failing spool) is reported, not thrown.
      this.o.onError?.(err as Error);
    }
  }

  /**
   * The oldest queued event, removed. Its slot is cleared: a taken event kept reachable from the
   * queue outlives young-generation collections and is promoted (under load that was most of
   * the middleware's cost, in full collections).
   */
  private take(): QueuedEvent {
    const e = this.queue[this.head]!;
    (this.queue as Array<QueuedEvent | undefined>)[this.head++] = undefined;
    return e;
  }

  /** Lets go of the array's taken part: at once when all was taken, else once it is most of it. */
  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.lastUnchecked = -1;
      this.maxBound = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.lastUnchecked = Math.max(-1, this.lastUnchecked - this.head);
      this.head = 0;
    }
  }

  private size(): number {
    return this.queue.length - this.head;
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
      while (this.size() > 0 && !this.stopped) {
        const batch = this.takeBatch();
        this.inFlight = batch.length;
        const current: NonNullable<Client['current']> = { batch, answered: new Set(), abort: null, wake: null };
        this.current = current;
        try {
          await this.send(batch);
        } catch (err) {
          // Not an answer of the sink but a fault (an answer it could not read): what was not
          // answered goes back to the front of the queue, for the retry.
          if (!this.stopped) this.putBack(batch.filter((e) => !current.answered.has(e)));
          throw err;
        } finally {
          this.current = null;
          this.inFlight = 0;
          for (const w of this.roomWaiters.splice(0)) w();
        }
      }
    })()
      .catch((err) => {
        // A fault of the client itself (a sink's answer it could not read):
        // reported, and tried again later, never at once (an immediate retry of a failing pump
        // is a loop of promises that starves the app).
        failed = true;
        this.report(new Error(`the usage client could not send (${describe(err)}); trying again in ${this.o.retry.baseMs} ms`));
      })
      .finally(() => {
        this.sending = undefined;
        if (failed && this.size() > 0 && !this.stopped) this.schedule(Math.max(1, this.o.retry.baseMs));
        else if (this.size() > 0 && !this.stopped) void this.pump();
        else for (const w of this.idleWaiters.splice(0)) w();
      });
    return this.sending;
  }

  /** The next batch: locally invalid events are rejected here, off the caller's path. */
  private takeBatch(): QueuedEvent[] {
    // Only the middleware's pre-checked events, and even at the largest size bound among them the
    // batch fits in a request: taken as a block (under load, one request at a time, this loop was
    // a measurable part of each).
    const n = Math.min(this.size(), this.o.batchSize);
    if (this.lastUnchecked < this.head && n * this.maxBound <= MAX_BODY_BYTES) {
      let batch: QueuedEvent[];
      if (this.head === 0 && n === this.queue.length) {
        batch = this.queue;
        this.queue = [];
      } else {
        batch = this.queue.slice(this.head, this.head + n);
        (this.queue as Array<QueuedEvent | undefined>).fill(undefined, this.head, this.head + n);
        this.head += n;
      }
      this.compact();
      return batch;
    }
    const batch: QueuedEvent[] = [];
    let bytes = 0;
    const now = Date.now();
    while (this.size() > 0 && batch.length < this.o.batchSize) {
      const e = this.queue[this.head]!;
      // The server checks the time window; the client checks everything else (unless the
      // middleware that built the event already did, see PRECHECKED).
      let v: ReturnType<typeof validateEvent> | typeof OK;
      let size = 0;
      try {
        v = (e as { [PRECHECKED]?: unknown })[PRECHECKED] ? OK : validateEvent(e, { now, maxAgeMs: Number.MAX_SAFE_INTEGER, maxFutureMs: Number.MAX_SAFE_INTEGER });
        const checked = (e as { [PRECHECKED]?: unknown })[PRECHECKED];
        if (v.ok) size = typeof checked === 'number' && checked > 0 ? checked : checked ? sizeBound(e) : jsonBytes(JSON.stringify(e), this.utf8) + 1;
      } catch (err) {
        // A BigInt, a getter or a toJSON that throws inside metadata: this event alone is refused
        // (left in the queue, it stopped every send after it).
        v = { ok: false, errors: [{ path: 'metadata', rule: 'json', message: `the event cannot be serialized as JSON: ${describe(err)}` }], unknownFields: false };
      }
      if (!v.ok) {
        this.take();
        this.reject(e, 'rejected', v.errors);
        this.unspool([e.request_id]);
        continue;
      }
      if (batch.length > 0 && bytes + size > MAX_BODY_BYTES) break;
      bytes += size;
      batch.push(e);
      this.take();
    }
    this.compact();
    return batch;
  }

  private reject(event: QueuedEvent, status: Rejection['status'], errors: FieldError[]): void {
    this.counters.rejected++;
    try {
      this.o.onRejected?.({ event, status, errors });
    } catch {}
  }

  /** Sends one batch until every event has an answer; retries what can be retried. */
  private async send(batch: QueuedEvent[]): Promise<void> {
    if (batch.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) return; // close() gave up on these (see close())
      let answer: SinkAnswer;
      // A timer cleared when the send ends: AbortSignal.timeout() would keep a signal and its
      // timer alive for the whole timeout after every batch (thousands, under load).
      const timeout = new AbortController();
      if (this.current) this.current.abort = timeout;
      const timer = setTimeout(() => timeout.abort(new DOMException(`the sink did not answer within ${this.o.timeoutMs} ms`, 'TimeoutError')), this.o.timeoutMs);
      try {
        answer = await this.sink.send(batch, timeout.signal);
      } catch (err) {
        answer = { kind: 'retry', error: new Error(`sink ${this.sink.name}: ${describe(err)}`) };
      } finally {
        clearTimeout(timer);
      }
      if (this.stopped) return;
      if (answer?.kind === 'done') {
        const results = answer.results;
        if (!results) this.counters.sent += batch.length;
        else {
          for (let i = 0; i < batch.length; i++) {
            const r = results[i];
            if (!r || r.status === 'created' || r.status === 'duplicate') this.counters.sent++;
            else this.reject(batch[i]!, r.status === 'conflict' ? 'conflict' : 'rejected', r.errors ?? []);
          }
        }
        this.answered(batch);
        this.unspool(batch.map((e) => e.request_id));
        return;
      }
      if (answer?.kind === 'too_large' && batch.length > 1) {
        // Too large for one request: halve it.
        const half = Math.ceil(batch.length / 2);
        await this.send(batch.slice(0, half));
        await this.send(batch.slice(half));
        return;
      }
      if (answer?.kind === 'refused' || answer?.kind === 'too_large') {
        // Refused as a whole: report each event, never retry.
        const errors = answer.kind === 'refused' ? answer.errors : [{ path: '', rule: 'too_large', message: 'the event alone is too large for the sink' }];
        for (const e of batch) this.reject(e, 'rejected', errors);
        this.answered(batch);
        this.unspool(batch.map((e) => e.request_id));
        return;
      }
      const retry = answer?.kind === 'retry' ? answer : { error: new Error(`sink ${this.sink.name} gave no answer`), retryAfterMs: null };
      await this.retryAfter(attempt, retry.retryAfterMs ?? null, retry.error);
    }
  }

  /**
   * Into the spool before record() returns. A spool that cannot write must not cost the event:
   * it is kept in memory (bounded by maxQueue like every queued event) and sent from there; the
   * failure is reported once, and the spool tried again at most every SPOOL_RETRY_MS, when what
   * memory holds meanwhile is written to it first.
   */
  private spoolAdd(e: QueuedEvent): void {
    const spool = this.o.spool!;
    if (this.spoolRetryAt === 0) {
      try {
        spool.add(e);
        return;
      } catch (err) {
        if (!serializable(e)) return; // the event's fault, not the disk's: rejected when taken for a send
        this.memoryOnly.set(e.request_id, e);
        this.spoolFailed(`could not write (${describe(err)})`);
        return;
      }
    }
    this.memoryOnly.set(e.request_id, e);
    if (Date.now() >= this.spoolRetryAt && this.spoolHeld()) {
      this.spoolRetryAt = 0;
      this.report(new Error('the spool works again: events are spooled again, those held in memory meanwhile included'));
    }
  }

  /** What memory holds that the spool does not, into the spool; false (and retried later) if it cannot write. */
  private spoolHeld(): boolean {
    const spool = this.o.spool!;
    const held = [...this.memoryOnly.values()].filter((e) => serializable(e));
    try {
      if (spool.addMany) spool.addMany(held);
      else for (const e of held) spool.add(e), this.memoryOnly.delete(e.request_id);
    } catch {
      this.spoolRetryAt = Date.now() + SPOOL_RETRY_MS;
      return false;
    }
    this.memoryOnly.clear();
    return true;
  }

  /** Reported on the first failure only: a full disk under load is thousands of them. */
  private spoolFailed(what: string): void {
    const first = this.spoolRetryAt === 0;
    this.spoolRetryAt = Date.now() + SPOOL_RETRY_MS;
    if (first) {
      this.report(new Error(`the spool ${what}; events are kept in memory (at most maxQueue, ${this.o.maxQueue}; beyond it onDropped) and sent from there, but do not survive a crash until the spool works again (tried every ${SPOOL_RETRY_MS} ms)`));
    }
  }

  /**
   * Answered (or dropped) events out of the spool. A spool that fails here (a full or read-only
   * disk) is reported, not a fault of the send: the answer stands, and rows left behind are sent
   * again by the next client on the spool, as duplicates the service ignores. A dropped event
   * left behind is sent by the next client too: reported dropped, it may yet be billed.
   */
  private unspool(ids: string[]): void {
    if (this.memoryOnly.size > 0) for (const id of ids) this.memoryOnly.delete(id);
    try {
      this.o.spool?.remove(ids);
      this.removeFailing = false;
    } catch (err) {
      // Once until a remove works again (a full disk fails every batch's).
      if (!this.removeFailing) this.report(new Error(`the spool could not remove ${ids.length} answered events (${describe(err)}); the next client on it sends them again, as duplicates`));
      this.removeFailing = true;
    }
  }

  /** Events taken for a send that failed, back at the front of the queue (checked again when next taken). */
  private putBack(events: QueuedEvent[]): void {
    if (events.length === 0) return;
    this.queue.splice(this.head, 0, ...events);
    this.lastUnchecked = Math.max(this.lastUnchecked + events.length, this.head + events.length - 1);
  }

  /** Part of the batch being sent has its answer (a batch too large is sent in halves). */
  private answered(events: QueuedEvent[]): void {
    const current = this.current;
    if (current && events !== current.batch) for (const e of events) current.answered.add(e);
  }

  private async retryAfter(attempt: number, told: number | null, error: Error): Promise<void> {
    this.counters.retried++;
    this.report(error);
    const delay = told ?? backoffDelay(attempt + 1, this.o.retry); // attempt counts from 0 here
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      // close() past its deadline ends the wait at once.
      if (this.current) this.current.wake = () => (clearTimeout(timer), resolve());
    });
  }

  private whenIdle(): Promise<void> {
    if (this.stopped || (this.size() === 0 && !this.sending && !this.timer)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerSoon = false;
    }
    if (this.size() > 0 || this.sending) {
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
    if (timeoutMs !== undefined && !given) this.report(new Error(`close: timeoutMs must be a number of ms from 0 to ${MAX_TIMER_MS} (got ${timeoutMs}); using closeTimeoutMs, ${this.o.closeTimeoutMs}`));
    const ms = given ? timeoutMs : this.o.closeTimeoutMs;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const late = await Promise.race([
      this.flush().then(() => false),
      new Promise<boolean>((resolve) => (deadline = setTimeout(() => resolve(true), ms))),
    ]);
    clearTimeout(deadline);
    if (late) this.giveUp(ms);
    try {
      this.o.spool?.close();
      await this.sink.close?.();
    } catch (err) {
      this.report(err as Error);
    }
  }

  /** To onError, which must not throw into the client. */
  private report(error: Error): void {
    try {
      this.o.onError?.(error);
    } catch {}
  }

  /**
   * close() past its deadline (the sink down or slow): stop sending. The undelivered events stay
   * in the spool for the next client on it, or without one are dropped and reported. A send
   * still under way may yet be delivered: a resend then is a duplicate, which the service ignores.
   */
  private giveUp(ms: number): void {
    if (this.stopped) return;
    this.stopped = true;
    const current = this.current;
    current?.abort?.abort(new Error('the client is closing'));
    current?.wake?.();
    const left = [...(current?.batch.filter((e) => !current.answered.has(e)) ?? []), ...this.queue.slice(this.head)];
    this.queue = [];
    this.head = 0;
    this.inFlight = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.idleWaiters.splice(0)) w();
    for (const w of this.roomWaiters.splice(0)) w();
    if (left.length === 0) return;
    let lost = left;
    if (this.o.spool) {
      // Held in memory only while the spool could not write: one more try, else they are lost.
      if (this.memoryOnly.size > 0) this.spoolHeld();
      lost = left.filter((e) => this.memoryOnly.has(e.request_id));
      this.memoryOnly.clear();
      const kept = left.length - lost.length;
      if (kept > 0) this.report(new Error(`close: ${kept} events not delivered within ${ms} ms; they stay in the spool and the next client on it sends them`));
      if (lost.length === 0) return;
    }
    this.counters.dropped += lost.length;
    const why = this.o.spool ? 'the spool could not write them' : 'no spool; give the client a spool to keep them';
    this.report(new Error(`close: ${lost.length} events not delivered within ${ms} ms and dropped (${why})`));
    try {
      this.o.onDropped?.(lost);
    } catch {}
  }

  stats(): UsageClientStats {
    return { queued: this.size(), inFlight: this.inFlight, ...this.counters };
  }

  async receipt(id: number): Promise<Receipt> {
    if (!this.sink.receipt) throw new Error(`receipt ${id}: the ${this.sink.name} sink has no receipts; they come from the service (use the HTTP sink, or GET /v1/events/${id}/receipt)`);
    return this.sink.receipt(id);
  }
}

/** Whether the event can be written as JSON (a BigInt or a throwing getter in metadata cannot). */
function serializable(e: QueuedEvent): boolean {
  try {
    JSON.stringify(e);
    return true;
  } catch {
    return false;
  }
}

/** An error's message for a sentence, whatever was thrown (even an object without toString). */
function describe(err: unknown): string {
  try {
    const message = (err as { message?: unknown } | null | undefined)?.message;
    return typeof message === 'string' ? message : String(err);
  } catch {
    try {
      return Object.prototype.toString.call(err);
    } catch {
      return `a thrown ${typeof err}`; // a Proxy that throws on every read
    }
  }
}

function jsonBytes(json: string, utf8: TextEncoder): number {
  return ASCII.test(json) ? json.length : utf8.encode(json).length;
}

/**
 * An upper bound of a checked event's JSON size without serializing it (a µs per event on the
 * middleware's path): 6 bytes per character (a \uXXXX escape) of its strings, 30 for each
 * number and key's punctuation. Only for flat events whose metadata holds primitives, as the
 * middleware builds them.
 */
function sizeBound(e: QueuedEvent): number {
  let chars = e.request_id.length + e.namespace.length + e.action.length + e.caller.length;
  let rest = 200; // keys, quotes, punctuation, units, ts
  if (e.metadata) {
    for (const k in e.metadata) {
      const v = e.metadata[k];
      chars += k.length + (typeof v === 'string' ? v.length : 0);
      rest += 30;
    }
  }
  return chars * 6 + rest;
}
