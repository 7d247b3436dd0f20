// The client's options: its public types, and the options with their defaults, checked once
// at construction (every problem thrown there, never later from record()). Edge-safe.
import { MAX_EVENTS_PER_REQUEST } from '../event/limits.ts';
import type { FieldError } from '../event/validate.ts';
import type { AnyReceipt } from '../receipt/format.ts';
import { UsageClientError } from './errors.ts';
import type { LimitCheckAnswer, LimitCheckItem } from './check.ts';
import type { Sink } from './sinks/index.ts';

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

/**
 * An event the sink has stored (created, or a duplicate of one stored before): with the id the
 * ledger gave it and its leaf hash where the sink knows them (the HTTP sink always does), so a
 * service can hand its customer the receipt of one call without a second lookup.
 */
export interface DeliveredEvent {
  event: QueuedEvent;
  status: 'created' | 'duplicate';
  /** The ledger's id: GET /v1/events/{id}/receipt, or client.receipt(id). */
  id?: number;
  /** The event's leaf hash (64 hex), as in its receipt. */
  leaf_hash?: string;
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
   * The events each answered batch stored, in the order recorded, with their ids and leaf hashes
   * (a retry answered `duplicate` carries the first one's). Called once per batch.
   */
  onDelivered?: (deliveries: DeliveredEvent[]) => void;
  /**
   * Transient problems (network, 5xx, 429, 401), for logging; the events are kept and retried.
   * Also a spool that cannot write (reported once, then once when it works again) and spooled
   * rows that were set aside as unreadable. Always a UsageClientError: switch on its `code`.
   */
  onError?: (error: UsageClientError) => void;
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
  receipt(id: number): Promise<AnyReceipt>;
  /**
   * Asks the service whether work may run under the owner's hard limits (POST /v1/limits/check):
   * one item answers one answer, an array of at most 100 one per item. Needs url and apiKey (a key
   * with the read right); throws UsageClientError `check_failed` when the service does not answer.
   * Optional in the type, so that clients written before it still are UsageClients.
   */
  check?<T extends LimitCheckItem | readonly LimitCheckItem[]>(
    items: T,
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<T extends readonly LimitCheckItem[] ? LimitCheckAnswer[] : LimitCheckAnswer>;
}

/** Most events in one batch (the API takes at most 1,000). */
export const MAX_BATCH = MAX_EVENTS_PER_REQUEST;

/** The options as the client uses them: every tunable set. */
export type Settings = Required<
  Pick<UsageClientOptions, 'batchSize' | 'flushIntervalMs' | 'maxQueue' | 'overflow' | 'retry' | 'timeoutMs' | 'closeTimeoutMs'>
> &
  UsageClientOptions;

/** The longest delay setTimeout keeps (longer ones fire after 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const DEFAULTS = {
  batchSize: 500,
  flushIntervalMs: 1000,
  maxQueue: 10_000,
  overflow: 'drop-oldest',
  retry: { baseMs: 200, maxMs: 30_000 },
  timeoutMs: 10_000,
  closeTimeoutMs: 10_000,
} as const;

/**
 * The options with their defaults. An option given as `undefined` (`batchSize: config.batchSize`
 * with nothing configured) takes its default: spread over the defaults, it made the batch size
 * NaN, and the client then spun on empty batches and starved the app's event loop.
 */
export function settings(options: UsageClientOptions): Settings {
  if (!options || typeof options !== 'object')
    throw new UsageClientError('bad_option', 'createUsageClient: options are required ({ url, apiKey } or { sink })');
  const o: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
  const number = (name: string, v: unknown, min: number, rule: string, max = Number.POSITIVE_INFINITY) => {
    if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max)
      throw new UsageClientError('bad_option', `createUsageClient: ${name} must be ${rule} (got ${typeof v === 'number' ? v : typeof v})`);
  };
  number('batchSize', o.batchSize, 1, 'a number of events, at least 1 (at most 1,000 are used)');
  o.batchSize = Math.min(MAX_BATCH, Math.floor(o.batchSize as number));
  number('maxQueue', o.maxQueue, 1, 'a number of events, at least 1');
  // Timers: setTimeout turns anything above 2^31 - 1 ms (~24.8 days), Infinity included, into 1 ms.
  const ms = (name: string, v: unknown, min: number) => number(name, v, min, `a number of ms from ${min} to ${MAX_TIMER_MS}`, MAX_TIMER_MS);
  ms('flushIntervalMs', o.flushIntervalMs, 0);
  ms('timeoutMs', o.timeoutMs, 1);
  ms('closeTimeoutMs', o.closeTimeoutMs, 0);
  if (o.overflow !== 'drop-oldest' && o.overflow !== 'block')
    throw new UsageClientError(
      'bad_option',
      `createUsageClient: overflow must be 'drop-oldest' or 'block' (got ${JSON.stringify(o.overflow)})`,
    );
  const retry = o.retry as { baseMs?: unknown; maxMs?: unknown } | null;
  if (!retry || typeof retry !== 'object') throw new UsageClientError('bad_option', 'createUsageClient: retry must be { baseMs, maxMs }');
  ms('retry.baseMs', retry.baseMs ?? DEFAULTS.retry.baseMs, 0);
  ms('retry.maxMs', retry.maxMs ?? DEFAULTS.retry.maxMs, 0);
  o.retry = { baseMs: retry.baseMs ?? DEFAULTS.retry.baseMs, maxMs: retry.maxMs ?? DEFAULTS.retry.maxMs };
  return o as unknown as Settings;
}
