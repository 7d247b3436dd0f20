// sui-receipts/fastify: one usage event per completed request, recorded after the answer is
// sent (never on the request's path), including refused, failed, aborted and streamed ones.
//
//   await app.register(meterRequests, { client, namespace: 'acme/prod', caller: (r) => r.user.id, action: (r) => r.routeOptions.config.action });
//
// The plugin is not encapsulated: it meters every route of the instance it is registered on.
// Per request it adds one hook call and one object, watched until the response is over (see
// watchResponse); the event is built then (see bench:middleware for what that costs).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { attributionContext, contentLength, createMeter, type Meter, type MeterOptions } from './common.ts';
import { bytesOut, completed, elapsed, Exchange, now, watchResponse } from './node-http.ts';

export type { RequestOutcome } from './common.ts';
export type FastifyMeterOptions = MeterOptions<FastifyRequest, FastifyReply>;

/** Per request: one of these, watched until its response is over. */
type State = Exchange<FastifyRequest, FastifyReply>;

/**
 * A fastify plugin: `app.register(meterRequests, options)`, or `meterRequests(app, options)`
 * before the app is ready. Register it first: then each request costs one onRequest hook and
 * one object watched through Node's finished-response channel. If onRequest hooks were added
 * before it (a rate limiter that refuses), it also adds an onResponse hook, so their refusals
 * are still recorded (without upstream attribution); that hook costs every request a few per
 * cent of a trivial route.
 */
// Any fastify instance: HTTP/1, HTTPS or HTTP/2 (its raw server type is not ours to narrow).
type AnyFastify = FastifyInstance<any, any, any, any, any>;

export function meterRequests(instance: AnyFastify, options: FastifyMeterOptions, done?: (err?: Error) => void): void {
  const app = instance as FastifyInstance;
  let meter: Meter<FastifyRequest, FastifyReply>;
  try {
    meter = createMeter(options, 'meterRequests');
  } catch (err) {
    if (done) return done(err as Error);
    throw err;
  }
  // The x-request-id the client sent (the raw headers: fastify's getter copies them when a hook replaced them).
  const idOf = (request: FastifyRequest, headers = request.raw.headers) => meter.requestId(request, headers['x-request-id'] as string | undefined);

  const finish = (state: State, aborted: boolean) => {
    const { request, reply } = state;
    const raw = reply.raw;
    try {
      const req = request.raw;
      const headers = req.headers;
      meter.record(
        request,
        reply,
        state.ts,
        state.id ?? idOf(request, headers),
        req.method ?? 'GET',
        routeOf(request),
        raw.headersSent || !aborted ? raw.statusCode : 499,
        aborted,
        elapsed(state.t0),
        contentLength(headers['content-length']),
        bytesOut(req, raw, state.w0),
      );
    } catch (err) {
      meter.report(err);
    }
  };

  // Only while onRequest hooks run before this one (see below): where the onResponse fallback
  // finds a request's state. Not a decorated property: that cost every request more than a
  // WeakMap does the few apps that need it.
  let states: WeakMap<FastifyRequest, State> | null = null;
  function onRequest(request: FastifyRequest, reply: FastifyReply, next: () => void): void {
    let storage;
    let state: State | undefined;
    try {
      const s: State = new Exchange(request, reply, reply.raw, finish);
      state = s;
      if (states) states.set(request, s);
      watchResponse(s, request.raw.socket);
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
        state = new Exchange(request, reply, reply.raw, finish, now() - ms, Math.round(Date.now() - ms));
      }
      // Not always a finished answer: on HTTP/2 fastify also gets here when the client reset
      // the stream, before the close listener of watchResponse has run.
      state.over(!completed(reply.raw));
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
