// What the fastify, Express and edge middleware share: the options, the one place where an
// event is built, refusal (admission) classification, request ids, and the per-request context
// that upstream attribution reads. Edge-safe: no Node-only import (AsyncLocalStorage is looked
// up at run time, see requestContext()).
import { CheckedEvent } from '../client/checked.ts';
import { createUsageClient, type UsageClient, type UsageClientOptions } from '../client/index.ts';
import { newRequestId, usableRequestId } from '../client/request-id.ts';
import { looksLikeSecret } from '../event/redact.ts';
import { ACTION_PATTERN, LEAF_STRING_MAX, MAX_ACTION_LENGTH, MAX_UNITS, NAMESPACE_PATTERN } from '../event/limits.ts';

/** How a request ended, as the `units` function sees it. */
export interface RequestOutcome {
  status: number;
  /** The client went away before the answer was complete. */
  aborted: boolean;
  /** Set when the request was refused before it ran (then units are 0 whatever `units` says). */
  admission?: string;
  durationMs: number;
}

export interface MeterOptions<Req, Res> {
  /** The usage client to record through; or give `url` + `apiKey` (and `clientOptions`) to build one. */
  client?: UsageClient;
  url?: string;
  apiKey?: string;
  clientOptions?: Omit<UsageClientOptions, 'url' | 'apiKey'>;
  namespace: string | ((request: Req) => string);
  /** Who; for refused requests, where it throws or gives nothing, `anonymous`. */
  caller: (request: Req) => string;
  action: string | ((request: Req) => string);
  /** How much (default: 1 for a status below 400, else 0). Ignored (0) for refused requests. */
  units?: (request: Req, reply: Res, outcome: RequestOutcome) => number;
  /** Default: the incoming `x-request-id` when it is a usable id, else a generated one. */
  requestId?: (request: Req) => string | undefined;
  /** Requests that are not metered at all (health checks). */
  skip?: (request: Req) => boolean;
  /**
   * Statuses that mean "refused before the work ran", with their reason
   * (default 401 unauthorized, 403 forbidden, 429 rate_limited, 503 unavailable).
   */
  refusedStatuses?: Record<number, string>;
  /** Your own refusal reasons (`over_quota`, `suspended`): a string marks the request refused. */
  refusal?: (request: Req, reply: Res) => string | undefined;
  /** The action recorded for a refused request (default: the action itself). */
  refusedAction?: (action: string, reason: string) => string;
  /**
   * Metering problems (an option function that threw or gave no string: that request is not
   * metered), never thrown into the request. Default: logged through the app's logger (fastify's
   * `app.log`; elsewhere `console`), at most LOG_BURST lines a minute plus one line counting
   * the rest. The client the middleware builds reports to it too (and logs its rejected and
   * dropped events), unless `clientOptions` says otherwise.
   */
  onError?: (error: Error) => void;
  /**
   * The admission gate (issue 25, docs/middleware.md "Limits"): before the handler runs, asks the
   * service whether the owner's hard limits leave room (client.check). Over a limit, the request
   * is answered `status` (429) without running the handler, and recorded with units 0 and
   * metadata.admission "over_limit". Off when omitted.
   */
  limits?: LimitGateOptions<Req>;
}

export interface LimitGateOptions<Req> {
  /** The units the work will record, for the check (default 1). */
  units?: (request: Req) => number;
  /** The status of a request refused over a limit (default 429). */
  status?: number;
  /**
   * When the service cannot answer the check in time: run the handler (`fail_open`, the default)
   * or refuse the request with `unavailableStatus` (`fail_closed`). Either way its event says so in
   * metadata.limit_check, and the failure goes to onError.
   */
  policy?: 'fail_open' | 'fail_closed';
  /** The status of a request refused by fail_closed (default 503). */
  unavailableStatus?: number;
  /** How long a check may take, ms (default 1,000). */
  timeoutMs?: number;
}

/** The answer the gate gives instead of running the handler. */
export interface GateRefusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What the gate decided about a request, read back when its event is built. */
interface GateMark {
  admission?: string;
  /** metadata.limit_check: over_limit, fail_open or fail_closed. */
  check: string;
  limitId?: string;
}

/** What the default onError writes to: pino's (fastify's) or console's error method. */
export interface MeterLogger {
  error(...args: unknown[]): void;
}

/** Lines the default onError writes per minute, at most; the rest are counted and the count logged. */
export const LOG_BURST = 10;
const LOG_WINDOW_MS = 60_000;

/**
 * The default onError: each problem through `logger.error`, LOG_BURST a minute at most (a caller
 * function that fails on every request would otherwise write a line per request); when a
 * minute with suppressed lines ends, the next line says how many were not logged.
 */
export function loggingOnError(logger: MeterLogger, where: string): (error: Error) => void {
  let windowStart = 0;
  let logged = 0;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - windowStart >= LOG_WINDOW_MS) {
      windowStart = now;
      logged = 0;
    }
    if (logged >= LOG_BURST) {
      suppressed++;
      return;
    }
    logged++;
    const more = suppressed > 0 ? ` (${suppressed} more metering problems were not logged in the minute before)` : '';
    suppressed = 0;
    try {
      logger.error(`${error.message.startsWith(`${where}:`) ? '' : `${where}: `}${error.message}${more}`);
    } catch {}
  };
}

export const DEFAULT_REFUSED: Readonly<Record<number, string>> = Object.freeze({
  401: 'unauthorized',
  403: 'forbidden',
  429: 'rate_limited',
  503: 'unavailable',
});

/**
 * The only values that reach `metadata`: primitives of the request, never objects or headers.
 * Passed to Meter.record as arguments in this order (an object per request was a measurable part of one).
 */
export type RequestFacts = [
  ts: number,
  requestId: string,
  method: string,
  route: string | undefined,
  status: number,
  aborted: boolean,
  durationMs: number,
  bytesIn: number,
  bytesOut: number,
];

export interface Meter<Req, Res> {
  readonly client: UsageClient;
  /** Whether this meter built its client (and so closes it). */
  readonly ownsClient: boolean;
  requestId(request: Req, incoming: string | null | undefined): string;
  /** Builds and records the event; never throws. */
  record(request: Req, reply: Res, ...facts: RequestFacts): void;
  /** The per-request context for upstream attribution. */
  context(request: Req, requestId: string): InboundContext;
  /** The admission gate: null to run the handler, or the answer to give instead (never throws). */
  admit(request: Req): Promise<GateRefusal | null>;
  /** Whether the gate is on (options.limits). */
  readonly gated: boolean;
  report(error: unknown): void;
}

export { newRequestId, usableRequestId };

/**
 * The leaf rules of src/event/validate.ts for the three option values, remembered per value:
 * services have few namespaces and actions and callers repeat, so the full validation (zod and
 * the credential scan, tens of µs) would otherwise cost more than a trivial request.
 */
const LEAF_RULES = {
  namespace: (v: string) => v.length <= LEAF_STRING_MAX.namespace && NAMESPACE_PATTERN.test(v),
  action: (v: string) => v.length <= LEAF_STRING_MAX.action && ACTION_PATTERN.test(v),
  caller: (v: string) => v.length <= LEAF_STRING_MAX.caller && v.isWellFormed() && !v.includes('\u0000'),
};
/**
 * A checker for one field: the rule and the credential scan, remembered per value (bounded: many
 * distinct callers only cost re-checks), and the last good value compared first (most requests
 * repeat it: often the very same string, compared by pointer).
 */
function leafChecker(rule: (v: string) => boolean): (value: string) => boolean {
  const cache = new Map<string, boolean>();
  let last = '';
  return (value) => {
    if (value === last && value !== '') return true;
    let ok = cache.get(value);
    if (ok === undefined) {
      ok = rule(value) && !looksLikeSecret(value);
      if (cache.size >= 10_000) cache.clear();
      cache.set(value, ok);
    }
    if (ok) last = value;
    return ok;
  };
}
const namespaceOk = leafChecker(LEAF_RULES.namespace);
const actionOk = leafChecker(LEAF_RULES.action);
const callerOk = leafChecker(LEAF_RULES.caller);

/** Route patterns come from the app's code; still bounded so metadata stays far under 4 KiB. */
let lastRoute: string | undefined;
function routeValue(route: string | undefined): string | undefined {
  if (route === lastRoute) return route;
  const ok = typeof route === 'string' && route.length <= 256 && route.isWellFormed() && !route.includes('\u0000');
  if (ok) lastRoute = route;
  return ok ? route : undefined;
}

export function createMeter<Req, Res>(options: MeterOptions<Req, Res>, where: string, logger: MeterLogger = console): Meter<Req, Res> {
  if (!options || typeof options !== 'object')
    throw new Error(`${where}: options are required ({ namespace, caller, action, client | url + apiKey })`);
  for (const k of ['namespace', 'action'] as const) {
    const v = options[k];
    if (typeof v !== 'function' && (typeof v !== 'string' || v === ''))
      throw new Error(`${where}: ${k} must be a function of the request or a non-empty string`);
  }
  if (typeof options.caller !== 'function')
    throw new Error(`${where}: caller must be a function of the request, e.g. (request) => request.user.id`);
  for (const k of ['units', 'requestId', 'skip', 'refusal', 'refusedAction', 'onError'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'function') throw new Error(`${where}: ${k} must be a function`);
  }
  // Nothing is dropped silently: without an onError, problems are logged (rate-limited).
  const onError = options.onError ?? loggingOnError(logger, where);
  const ownsClient = !options.client;
  const client =
    options.client ??
    createUsageClient({
      ...options.clientOptions,
      url: options.url,
      apiKey: options.apiKey,
      onError: options.clientOptions?.onError ?? onError,
      onRejected:
        options.clientOptions?.onRejected ??
        ((r) =>
          onError(
            new Error(
              `the usage service refused the event of request ${r.event.request_id} (${r.status}: ${r.errors.map((e) => `${e.path} ${e.rule}`).join(', ')})`,
            ),
          )),
      onDropped:
        options.clientOptions?.onDropped ??
        ((events) =>
          onError(
            new Error(`${events.length} usage events were dropped (the client's queue was full, or close() gave up without a spool)`),
          )),
    });
  // An array by status: integer lookups in a (frozen) object's elements, or a Map, were a
  // measurable part of a request.
  const refused: Array<string | undefined> = new Array(1000).fill(undefined);
  for (const [k, v] of Object.entries(options.refusedStatuses ?? DEFAULT_REFUSED)) {
    const status = Number(k);
    if (Number.isInteger(status) && status >= 0 && status < refused.length) refused[status] = v;
  }
  const fn = <T>(v: T | ((r: Req) => T)) => (typeof v === 'function' ? (v as (r: Req) => T) : () => v);
  // A fixed namespace or action is checked once, here (and refused here if it breaks a leaf rule).
  const namespaceFixed = typeof options.namespace === 'string';
  const actionFixed = typeof options.action === 'string' && !options.refusedAction;
  // (Also a fixed action that refusedAction may rename: the action itself must be a good one.)
  for (const [k, fixed, ok] of [
    ['namespace', namespaceFixed, namespaceOk],
    ['action', typeof options.action === 'string', actionOk],
  ] as const) {
    if (fixed && !ok(options[k] as string))
      throw new Error(`${where}: ${k} ${JSON.stringify(options[k])} breaks the leaf rule for ${k}s (src/event/validate.ts)`);
  }
  const namespaceOf = fn(options.namespace);
  const actionOf = fn(options.action);
  const gate = options.limits;
  if (gate !== undefined) {
    if (!gate || typeof gate !== 'object') throw new Error(`${where}: limits must be an object ({ policy, status, units, timeoutMs })`);
    if (typeof client.check !== 'function')
      throw new Error(`${where}: limits needs a client with check() (createUsageClient with url and apiKey)`);
    if (gate.policy !== undefined && gate.policy !== 'fail_open' && gate.policy !== 'fail_closed')
      throw new Error(`${where}: limits.policy must be 'fail_open' or 'fail_closed'`);
    for (const k of ['status', 'unavailableStatus'] as const)
      if (gate[k] !== undefined && !(Number.isInteger(gate[k]) && gate[k]! >= 400 && gate[k]! <= 599))
        throw new Error(`${where}: limits.${k} must be an HTTP error status (400 to 599)`);
    if (gate.timeoutMs !== undefined && !(Number.isSafeInteger(gate.timeoutMs) && gate.timeoutMs > 0))
      throw new Error(`${where}: limits.timeoutMs must be a positive whole number of ms`);
    if (gate.units !== undefined && typeof gate.units !== 'function') throw new Error(`${where}: limits.units must be a function`);
  }
  // Keyed by the request object: the gate runs before the handler, the event is built after it.
  const marks = new WeakMap<object, GateMark>();

  const report = (error: unknown) => {
    try {
      onError(error instanceof Error ? error : new Error(String(error)));
    } catch {}
  };
  /** Calls an option function; a throw or a non-string is reported and gives undefined. */
  const text = (name: string, f: (r: Req) => string, request: Req, quiet = false): string | undefined => {
    try {
      const v = f(request);
      if (typeof v === 'string' && v !== '') return v;
      if (!quiet)
        report(
          new Error(
            `${where}: ${name}(request) gave ${v === '' ? 'an empty string' : `${typeof v}, not a string`}; the request was not metered (return a non-empty string, e.g. 'anonymous')`,
          ),
        );
    } catch (err) {
      if (!quiet) report(new Error(`${where}: ${name}(request) threw (${(err as Error)?.message}); the request was not metered`));
    }
    return undefined;
  };

  const refusal = (
    status: number,
    code: string,
    message: string,
    extra: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) => ({
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify({ error: { code, message, ...extra } }),
  });

  const meter: Meter<Req, Res> = {
    client,
    ownsClient,
    report,
    gated: gate !== undefined,
    async admit(request) {
      if (!gate) return null;
      try {
        if (options.skip?.(request)) return null;
      } catch {
        return null; // record() reports it
      }
      const namespace = text('namespace', namespaceOf, request, true);
      const action = text('action', actionOf, request, true);
      if (namespace === undefined || action === undefined) return null; // not metered: record() reports it
      let units = 1;
      if (gate.units) {
        try {
          const u = gate.units(request);
          if (Number.isSafeInteger(u) && u >= 0) units = u;
          else report(new Error(`${where}: limits.units(request) gave ${String(u)}, not a whole number ≥ 0; checked with 1`));
        } catch (err) {
          report(new Error(`${where}: limits.units(request) threw (${(err as Error)?.message}); checked with 1`));
        }
      }
      try {
        const a = await client.check!({ namespace, action, units }, { timeoutMs: gate.timeoutMs ?? 1000 });
        if (a.allowed) return null;
        marks.set(request as object, { admission: 'over_limit', check: 'over_limit', ...(a.limit_id !== null && { limitId: a.limit_id }) });
        const retry = a.resets_at === null ? undefined : Math.max(1, Math.ceil((Date.parse(a.resets_at) - Date.now()) / 1000));
        return refusal(
          gate.status ?? 429,
          'over_limit',
          `the limit ${a.limit_id} is reached (used ${a.used}, ${a.remaining} left${a.resets_at ? `, until ${a.resets_at}` : ''})`,
          { limit_id: a.limit_id, used: a.used, remaining: a.remaining, resets_at: a.resets_at },
          retry === undefined || !Number.isFinite(retry) ? {} : { 'retry-after': String(retry) },
        );
      } catch (err) {
        const closed = gate.policy === 'fail_closed';
        report(
          new Error(
            `${where}: the limit check failed (${(err as Error)?.message ?? String(err)}); ${closed ? 'fail_closed: the request was refused' : 'fail_open: the request ran'}`,
          ),
        );
        if (!closed) {
          marks.set(request as object, { check: 'fail_open' });
          return null;
        }
        marks.set(request as object, { admission: 'limit_unavailable', check: 'fail_closed' });
        return refusal(gate.unavailableStatus ?? 503, 'limit_unavailable', 'the usage limits could not be checked; retry later', {});
      }
    },
    requestId(request, incoming) {
      if (options.requestId) {
        try {
          const id = options.requestId(request);
          if (usableRequestId(id)) return id;
        } catch (err) {
          report(err);
        }
        return newRequestId();
      }
      return usableRequestId(incoming) ? incoming : newRequestId();
    },
    record(request, reply, ts, requestId, method, route0, status, aborted, durationMs, bytesIn, bytesOut) {
      try {
        if (options.skip?.(request)) return;
        let admission: string | undefined;
        const mark = gate ? marks.get(request as object) : undefined;
        if (mark?.admission) admission = mark.admission;
        if (admission === undefined && options.refusal) admission = options.refusal(request, reply) || undefined;
        if (admission === undefined && !aborted) admission = refused[status];
        const namespace = typeof options.namespace === 'string' ? options.namespace : text('namespace', namespaceOf, request);
        let action = typeof options.action === 'string' ? options.action : text('action', actionOf, request);
        // A refused request often has no caller yet (401): still measured, as anonymous.
        const caller =
          text('caller', options.caller, request, admission !== undefined) ?? (admission !== undefined ? 'anonymous' : undefined);
        if (namespace === undefined || action === undefined || caller === undefined) return;
        let units = 0;
        if (admission !== undefined) {
          if (options.refusedAction) {
            const renamed = options.refusedAction(action, admission);
            // Not a usable action: the refusal is still measured, under the action itself.
            if (typeof renamed === 'string' && actionOk(renamed)) action = renamed;
            else
              report(
                new Error(
                  `${where}: refusedAction(${JSON.stringify(action)}, ${JSON.stringify(admission)}) gave ${typeof renamed === 'string' ? JSON.stringify(renamed) : typeof renamed}, not an action (the leaf rule for actions, src/event/validate.ts); recorded under ${JSON.stringify(action)}`,
                ),
              );
          }
        } else if (options.units) {
          units = options.units(request, reply, { status, aborted, durationMs });
        } else units = !aborted && status < 400 ? 1 : 0;
        const route = routeValue(route0);
        const duration = Math.round(durationMs * 100) / 100;
        // One literal each (no property added after): the common event is one allocation.
        const metadata: Record<string, string | number | boolean> =
          route !== undefined
            ? { method, route, status, duration_ms: duration, bytes_in: bytesIn, bytes_out: bytesOut }
            : { method, status, duration_ms: duration, bytes_in: bytesIn, bytes_out: bytesOut };
        if (aborted) metadata.aborted = true;
        if (admission !== undefined) metadata.admission = admission;
        if (mark) {
          metadata.limit_check = mark.check;
          if (mark.limitId) metadata.limit_id = mark.limitId;
        }
        // Every field known good: the client skips its full check. Otherwise it checks the event
        // and reports exactly what is wrong to onRejected.
        const good =
          // (the request id was checked when it was taken or made, see requestId())
          Number.isSafeInteger(units) &&
          units >= 0 &&
          units <= MAX_UNITS &&
          (namespaceFixed || namespaceOk(namespace)) &&
          (actionFixed || actionOk(action)) &&
          callerOk(caller) &&
          (admission === undefined || (admission.length <= MAX_ACTION_LENGTH && admission.isWellFormed())) &&
          typeof method === 'string' &&
          method.length <= 32;
        // What its JSON can take at most, for the client's batch size limit: 6 bytes per
        // character (a \uXXXX escape) of its strings, and room for keys, numbers and punctuation.
        const bound = good
          ? (requestId.length +
              namespace.length +
              action.length +
              caller.length +
              method.length +
              (route?.length ?? 0) +
              (admission?.length ?? 0) +
              (mark ? 120 : 0)) *
              6 +
            500
          : 0;
        client.record(
          good
            ? new CheckedEvent(requestId, namespace, caller, action, units, ts, metadata, bound)
            : { request_id: requestId, namespace, caller, action, units, ts, metadata },
        );
      } catch (err) {
        report(new Error(`${where}: metering the request failed (${(err as Error)?.message ?? String(err)}); the request was not metered`));
      }
    },
    context(request, requestId) {
      let identity: { namespace: string; caller: string } | undefined;
      let skipped: boolean | undefined;
      return {
        requestId,
        client,
        upstreamCalls: 0,
        skipped() {
          // As record() decides it: a skip() that throws is reported, and the request not metered.
          if (skipped === undefined) {
            try {
              skipped = Boolean(options.skip?.(request)); // truthy, as record() takes it
            } catch (err) {
              report(err);
              skipped = true;
            }
          }
          return skipped;
        },
        identity() {
          // Cached once resolved; until then asked again (auth may resolve the caller later).
          if (identity) return identity;
          const namespace = text('namespace', namespaceOf, request, true);
          const caller = text('caller', options.caller, request, true);
          if (namespace && caller) identity = { namespace, caller };
          return identity ?? null;
        },
      };
    },
  };
  return meter;
}

/** What an outgoing call made while serving a request knows about that request. */
export interface InboundContext {
  requestId: string;
  client: UsageClient;
  /** Outgoing calls metered so far (numbers their request ids). */
  upstreamCalls: number;
  /** The request is not metered (its `skip` said so): neither are its outgoing calls. */
  skipped(): boolean;
  /** The request's namespace and caller, as the meter's options resolve them now; null if they cannot. */
  identity(): { namespace: string; caller: string } | null;
}

interface Storage {
  run<R>(store: InboundContext, fn: () => R): R;
  getStore(): InboundContext | undefined;
}

const STORAGE = Symbol.for('sui-receipts.request-context');
const IN_USE = Symbol.for('sui-receipts.request-context.in-use');

/**
 * Whether metered requests run inside the request context, shared by every copy of this package
 * in the process through one object kept on globalThis: read on every request, and a symbol
 * lookup on globalThis each time was a measurable part of one.
 */
const attribution: { on: boolean; storage: Storage | null } = (() => {
  const g = globalThis as unknown as Record<PropertyKey, unknown>;
  const kept = g[IN_USE];
  if (kept && typeof kept === 'object' && typeof (kept as { on?: unknown }).on === 'boolean')
    return kept as { on: boolean; storage: Storage | null };
  const fresh = { on: false, storage: null };
  g[IN_USE] = fresh;
  return fresh;
})();

/**
 * One AsyncLocalStorage shared by every copy of this package in the process, found without a
 * static import of node:async_hooks (edge bundles have none): the global one (Vercel/Next edge),
 * else Node's through process.getBuiltinModule. Null where neither exists: attribution is off.
 */
export function requestContext(): Storage | null {
  const g = globalThis as unknown as Record<PropertyKey, unknown> & {
    AsyncLocalStorage?: new () => Storage;
    process?: { getBuiltinModule?: (id: string) => unknown };
  };
  if (g[STORAGE] !== undefined) return g[STORAGE] as Storage | null;
  let Als: (new () => Storage) | undefined = typeof g.AsyncLocalStorage === 'function' ? g.AsyncLocalStorage : undefined;
  if (!Als) {
    try {
      Als = (g.process?.getBuiltinModule?.('node:async_hooks') as { AsyncLocalStorage?: new () => Storage } | undefined)?.AsyncLocalStorage;
    } catch {}
  }
  const storage = Als ? new Als() : null;
  g[STORAGE] = storage;
  return storage;
}

/**
 * The request context, but only once something reads it (a metered fetch was made in this
 * process): running every request inside an AsyncLocalStorage frame costs each request a few
 * µs, for nothing when no outgoing call is metered.
 */
export function attributionContext(): Storage | null {
  return attribution.on ? attribution.storage : null;
}

/** Called by meteredFetch: from now on, metered requests run inside the request context. */
export function useRequestContext(): Storage | null {
  const storage = requestContext();
  if (storage) {
    attribution.storage = storage;
    attribution.on = true;
  }
  return storage;
}

/** Content-Length as a number, 0 when absent or unreadable. */
export function contentLength(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}
