// Where the usage client delivers its batches. The client keeps the queue, batching, retries
// and the spool; a sink only answers "what happened to this batch". Edge-safe: nothing here
// imports a Node-only module (the JSON-lines file sink is in ./jsonl.ts, Node only).
import { type FieldError, type NormalizedEvent, validateEvent } from '../../event/validate.ts';
import type { AnyReceipt } from '../../receipt/format.ts';
import { UsageClientError } from '../errors.ts';
import type { QueuedEvent, UsageClientOptions } from '../index.ts';

/** The answer for one event of a delivered batch, as the service gives it. */
export interface SinkResult {
  status: 'created' | 'duplicate' | 'rejected' | 'conflict';
  errors?: FieldError[];
  /** Stored: the id the ledger gave it and its leaf hash, where the sink knows them (the HTTP sink does). */
  id?: number;
  leaf_hash?: string;
}

/**
 * What a sink says about one batch:
 * - `done`: delivered; `results` (optional, one per event in order) may refuse single events.
 * - `retry`: nothing was delivered, try again later (after `retryAfterMs` if given).
 * - `refused`: the batch as a whole is refused for good (reported per event, never retried).
 * - `too_large`: send it in smaller parts.
 * A sink that throws is treated as `retry`.
 */
export type SinkAnswer =
  | { kind: 'done'; results?: readonly SinkResult[] }
  | { kind: 'retry'; error: Error; retryAfterMs?: number | null }
  | { kind: 'refused'; errors: FieldError[] }
  | { kind: 'too_large' };

export interface Sink {
  /** For logs and errors, e.g. `http`, `jsonl`, `memory`. */
  readonly name: string;
  /** Delivers one batch (at most 1,000 events, 1 MB of JSON). Must not modify the events. */
  send(events: readonly QueuedEvent[], signal: AbortSignal): Promise<SinkAnswer>;
  /** The receipt of a delivered event, where the sink can know it (the HTTP sink can). */
  receipt?(id: number): Promise<AnyReceipt>;
  close?(): void | Promise<void>;
}

/**
 * Builds a sink from the part of a sink spec after `name:` (may be empty) and the client's options.
 * Called once per client, synchronously; it may open its resources lazily on the first send.
 */
export type SinkFactory = (target: string, options: UsageClientOptions) => Sink;

const factories = new Map<string, SinkFactory>();
const SINK_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Makes a sink available by name, so call sites choose it by configuration alone:
 * `createUsageClient({ sink: process.env.USAGE_SINK })` with `USAGE_SINK=kafka:usage-events`.
 */
export function registerSink(name: string, factory: SinkFactory): void {
  if (!SINK_NAME.test(name))
    throw new UsageClientError('bad_option', `registerSink: name "${name}" must match ${SINK_NAME} (e.g. "kafka")`);
  if (typeof factory !== 'function')
    throw new UsageClientError('bad_option', `registerSink("${name}"): factory must be a function (target, options) => Sink`);
  factories.set(name, factory);
}

export function registeredSinks(): string[] {
  return [...factories.keys()].sort();
}

/** A sink spec is `name` or `name:target`, e.g. `http`, `memory`, `jsonl:./usage.jsonl`. */
export function resolveSink(spec: string, options: UsageClientOptions): Sink {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const target = colon < 0 ? '' : spec.slice(colon + 1);
  const factory = factories.get(name);
  if (!factory) {
    const hint =
      name === 'jsonl'
        ? "; import 'sui-receipts/sinks' (Node only) to register it"
        : '; register it first with registerSink(name, factory)';
    throw new UsageClientError('unknown_sink', `unknown sink "${name}" (registered: ${registeredSinks().join(', ')})${hint}`);
  }
  return factory(target, options);
}

// ---- HTTP: POST /v1/events of the service (the client's default) ----

export interface HttpSinkOptions {
  url: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Per-request timeout for receipt(), ms (sends use the client's signal). Default 10,000. */
  timeoutMs?: number;
}

export function createHttpSink(options: HttpSinkOptions): Sink {
  if (typeof options.url !== 'string' || !/^https?:\/\//.test(options.url))
    throw new UsageClientError('bad_option', 'the HTTP sink needs url: the service, e.g. http://127.0.0.1:8080');
  if (typeof options.apiKey !== 'string' || options.apiKey === '')
    throw new UsageClientError('bad_option', 'the HTTP sink needs apiKey: a key made with `receipts keys create`');
  const endpoint = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const auth = `Bearer ${options.apiKey}`;
  return {
    name: 'http',
    async send(events, signal) {
      let res: Response;
      try {
        res = await doFetch(`${endpoint}/v1/events`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: JSON.stringify({ events }),
          signal,
        });
      } catch (err) {
        return {
          kind: 'retry',
          error: new UsageClientError('send_failed', `cannot reach ${endpoint}: ${(err as Error).message}`, { cause: err }),
        };
      }
      if (res.status === 200) {
        const body = (await res.json()) as { results: SinkResult[] };
        return { kind: 'done', results: body.results };
      }
      if (res.status === 413) {
        await res.body?.cancel().catch(() => {});
        return { kind: 'too_large' };
      }
      if (res.status === 429 || res.status >= 500 || res.status === 401 || res.status === 408) {
        const text = await res.text().catch(() => '');
        return {
          kind: 'retry',
          retryAfterMs: retryAfterMs(res.headers.get('retry-after')),
          error: new UsageClientError('send_failed', `${endpoint} answered ${res.status}: ${text.slice(0, 200)}`),
        };
      }
      // Any other 4xx refuses the request as a whole.
      const error = ((await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string; details?: FieldError[] } }).error;
      return {
        kind: 'refused',
        errors: error?.details?.length
          ? error.details
          : [{ path: '', rule: error?.code ?? `http_${res.status}`, message: error?.message ?? `HTTP ${res.status}` }],
      };
    },
    async receipt(id) {
      let res: Response;
      try {
        res = await doFetch(`${endpoint}/v1/events/${id}/receipt`, {
          headers: { authorization: auth },
          signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        });
      } catch (err) {
        throw new UsageClientError('receipt_failed', `receipt ${id}: cannot reach ${endpoint}: ${(err as Error)?.message}`, { cause: err });
      }
      if (!res.ok)
        throw new UsageClientError(
          'receipt_failed',
          `receipt ${id}: HTTP ${res.status} ${(await res.text().catch(() => '')).slice(0, 200)}`,
        );
      try {
        return (await res.json()) as AnyReceipt;
      } catch (err) {
        throw new UsageClientError('receipt_failed', `receipt ${id}: the answer is not JSON (${(err as Error)?.message})`, { cause: err });
      }
    },
  };
}

/** Retry-After as delay-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

// ---- Memory: for tests ----

export interface MemorySink extends Sink {
  /** Every event delivered, once per request id, in delivery order. */
  readonly events: QueuedEvent[];
  /** How many batches were sent, answers that were not `done` included. */
  batches: number;
  /** Answer the next batches yourself (faults, slowness); return undefined for the normal answer. */
  answer?: (events: readonly QueuedEvent[]) => SinkAnswer | undefined | Promise<SinkAnswer | undefined>;
  /** Resolves when at least n events were delivered. */
  until(n: number, timeoutMs?: number): Promise<void>;
}

/** What the service compares when a request id comes again (src/ledger/event-record.ts differences()). */
function comparable(e: NormalizedEvent): string {
  return JSON.stringify([e.caller, e.action, e.units, e.artifact_digest, e.source, e.metadata]);
}

/**
 * Keeps delivered events in memory, deduplicated by request id the way the service does: each
 * event normalized as the service normalizes it (ts, default units, canonical metadata), the same
 * content again is a duplicate, other content a conflict, and an invalid event is rejected.
 */
export function createMemorySink(): MemorySink {
  const byId = new Map<string, { body: string; ts: number; explicit: boolean }>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const sink: MemorySink = {
    name: 'memory',
    events: [],
    batches: 0,
    async send(events) {
      sink.batches++;
      const told = await sink.answer?.(events);
      if (told && told.kind !== 'done') return told;
      const results = events.map((e): SinkResult => {
        const v = validateEvent(e, { now: Date.now(), maxAgeMs: Number.MAX_SAFE_INTEGER, maxFutureMs: Number.MAX_SAFE_INTEGER });
        if (!v.ok) return { status: 'rejected', errors: v.errors };
        const key = `${v.event.namespace}\u0000${v.event.request_id}`;
        const body = comparable(v.event);
        const seen = byId.get(key);
        if (seen === undefined) {
          byId.set(key, { body, ts: v.event.ts_ms, explicit: v.event.ts_explicit });
          sink.events.push(structuredClone(e));
          return { status: 'created' };
        }
        // An event without ts means "when received": it cannot contradict a stored time.
        const same = seen.body === body && (!v.event.ts_explicit || !seen.explicit || seen.ts === v.event.ts_ms);
        return same
          ? { status: 'duplicate' }
          : {
              status: 'conflict',
              errors: [{ path: 'request_id', rule: 'idempotency_conflict', message: 'request_id was used with other content' }],
            };
      });
      for (const w of waiters.splice(0)) {
        if (sink.events.length >= w.n) w.resolve();
        else waiters.push(w);
      }
      return { kind: 'done', results };
    },
    until(n, timeoutMs = 10_000) {
      if (sink.events.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new UsageClientError('timeout', `memory sink: ${sink.events.length} of ${n} events after ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
  };
  return sink;
}

registerSink('http', (target, o) => createHttpSink({ url: target || o.url!, apiKey: o.apiKey!, fetch: o.fetch, timeoutMs: o.timeoutMs }));
registerSink('memory', () => createMemorySink());
