// sui-receipts/fastify: one usage event per completed request, recorded after the answer is
// sent (never on the request's path), including refused, failed, aborted and streamed ones.
//
//   await app.register(meterRequests, { client, namespace: 'acme/prod', caller: (r) => r.user.id, action: (r) => r.routeOptions.config.action });
//
// The plugin is not encapsulated: it meters every route of the instance it is registered on.
// Per request it adds one hook call, one object and one close listener; the event is built
// when the response is over (see bench:middleware for what that costs).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { attributionContext, createMeter, type Meter, type MeterOptions } from './common.ts';
import { bytesIn, bytesOut, completed, elapsed, now, socketBytes, wallClock } from './node-http.ts';

export type { RequestOutcome } from './common.ts';
export type FastifyMeterOptions = MeterOptions<FastifyRequest, FastifyReply>;

/** Per request: one of these and one close listener. */
interface State {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly t0: number;
  readonly ts: number;
  /** The socket's bytesWritten when the request started (-1: not seen from its start). */
  readonly w0: number;
  /** Taken when the request starts only if upstream attribution needs it, else when it ends. */
  id: string | undefined;
  done: boolean;
}

/**
 * A fastify plugin: `app.register(meterRequests, options)`, or `meterRequests(app, options)`
 * before the app is ready. Register it first: then each request costs one onRequest hook and
 * one close listener. If onRequest hooks were added before it (a rate limiter that refuses),
 * it also adds an onResponse hook, so their refusals are still recorded (without upstream
 * attribution); that hook costs every request a few per cent of a trivial route.
 */
export function meterRequests(app: FastifyInstance, options: FastifyMeterOptions, done?: (err?: Error) => void): void {
  let meter: Meter<FastifyRequest, FastifyReply>;
  try {
    meter = createMeter(options, 'meterRequests');
  } catch (err) {
    if (done) return done(err as Error);
    throw err;
  }
  const idOf = (request: FastifyRequest) => meter.requestId(request, request.headers['x-request-id'] as string | undefined);

  const finish = (state: State, aborted: boolean) => {
    if (state.done) return;
    state.done = true;
    const { request, reply } = state;
    const raw = reply.raw;
    meter.record(request, reply, {
      ts: state.ts,
      requestId: state.id ?? idOf(request),
      method: request.method,
      route: routeOf(request),
      status: raw.headersSent || !aborted ? raw.statusCode : 499,
      aborted,
      durationMs: elapsed(state),
      bytesIn: bytesIn(request.raw),
      bytesOut: bytesOut(request.raw, raw, state),
    });
  };

  // Only while onRequest hooks run before this one (see below): where the onResponse fallback
  // finds a request's state. Not a decorated property: that cost every request more than a
  // WeakMap does the few apps that need it.
  let states: WeakMap<FastifyRequest, State> | null = null;
  function onRequest(request: FastifyRequest, reply: FastifyReply, next: () => void): void {
    let storage;
    let state: State | undefined;
    try {
      const raw = reply.raw;
      const t0 = now();
      const s: State = { request, reply, t0, ts: wallClock(t0), w0: socketBytes(request.raw.socket), id: undefined, done: false };
      state = s;
      if (states) states.set(request, s);
      raw.on('close', () => finish(s, !completed(raw)));
      storage = attributionContext();
      if (storage) s.id = idOf(request);
    } catch (err) {
      meter.report(err);
    }
    // With a metered fetch in the process, the rest of the request runs inside the context
    // that attributes its outgoing calls to it.
    if (storage && state?.id) storage.run(meter.context(request, state.id), next);
    else next();
  }
  app.addHook('onRequest', onRequest);
  // Answers given by onRequest hooks that run before this one: seen only at onResponse.
  app.after((err) => {
    if (err || runsFirst(app, onRequest)) return;
    const seen = new WeakMap<FastifyRequest, State>();
    states = seen;
    app.addHook('onResponse', (request, reply, next) => {
      let state = seen.get(request);
      if (!state) {
        const ms = reply.elapsedTime;
        state = { request, reply, t0: now() - ms, ts: Math.round(Date.now() - ms), w0: -1, id: undefined, done: false };
      }
      finish(state, false);
      next();
    });
  });
  if (meter.ownsClient) app.addHook('onClose', async () => meter.client.close());
  done?.();
}

/**
 * Whether `hook` is the instance's first onRequest hook (fastify keeps them in its internal
 * 'fastify.hooks' object; routes take that list when the app gets ready). Unknown counts as no.
 */
function runsFirst(app: FastifyInstance, hook: unknown): boolean {
  const key = Object.getOwnPropertySymbols(app).find((s) => s.description === 'fastify.hooks');
  const list = key ? (app as unknown as Record<symbol, { onRequest?: unknown } | undefined>)[key]?.onRequest : undefined;
  return Array.isArray(list) && list[0] === hook;
}

/**
 * The route pattern (`/items/:id`), never the raw path. `request.routeOptions` builds a new
 * object on every read (a quarter of a µs); the pattern it copies is the route config's `url`,
 * so read that once per route context.
 */
let contextKey: symbol | null | undefined;
function routeOf(request: FastifyRequest): string | undefined {
  if (contextKey === undefined) contextKey = Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') ?? null;
  const config = contextKey ? (request as unknown as Record<symbol, { config?: { url?: unknown } } | undefined>)[contextKey]?.config : undefined;
  const url = config ? config.url : request.routeOptions?.url;
  return typeof url === 'string' ? url : undefined;
}

// What fastify-plugin does: hooks apply to the instance it is registered on, not a child scope.
Object.assign(meterRequests, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'sui-receipts-meter' });
