// sui-receipts/fastify: one usage event per completed request, recorded after the answer is
// sent (never on the request's path), including refused, failed, aborted and streamed ones.
//
//   await app.register(meterRequests, { client, namespace: 'acme/prod', caller: (r) => r.user.id, action: (r) => r.routeOptions.config.action });
//
// Wrapped with fastify-plugin: it meters every route of the instance it is registered on, not
// only a child scope. Public fastify API only (hooks, request/reply properties, app.log): per
// request one onRequest hook and one object, watched until the response is over (see
// watchResponse); the event is built then (see bench:middleware for what that costs).
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { attributionContext, contentLength, createMeter, type Meter, type MeterOptions } from './common.ts';
import { bytesOut, completed, elapsed, Exchange, now, reportUnwatched, watchedOnChannel, watchResponse } from './node-http.ts';

export type { RequestOutcome } from './common.ts';
export type FastifyMeterOptions = MeterOptions<FastifyRequest, FastifyReply> & {
  /**
   * Answers given by onRequest hooks that run before this plugin's (a rate limiter registered
   * first that refuses with 429) reach only an onResponse hook, which this plugin then adds.
   * Fastify's public API cannot say whether such hooks exist, so by default it adds it: it costs
   * every request a few µs (see bench:middleware). `registeredFirst: true` says no onRequest hook
   * runs before this plugin's (register it first): the onResponse hook is left out, and an answer
   * seen on the app's server that the plugin never saw start is reported to onError, not recorded.
   */
  registeredFirst?: boolean;
};

/** Per request: one of these, watched until its response is over. */
type State = Exchange<FastifyRequest, FastifyReply>;

// Any fastify instance: HTTP/1, HTTPS or HTTP/2 (its raw server type is not ours to narrow).
// biome-ignore lint/suspicious/noExplicitAny: fastify's instance generics take any server, request and reply types here
type AnyFastify = FastifyInstance<any, any, any, any, any>;

function plugin(instance: AnyFastify, options: FastifyMeterOptions, done?: (err?: Error) => void): void {
  const app = instance as FastifyInstance;
  let meter: Meter<FastifyRequest, FastifyReply>;
  try {
    if (options?.registeredFirst !== undefined && typeof options.registeredFirst !== 'boolean')
      throw new Error('meterRequests: registeredFirst must be true or false');
    // Without an onError, problems are logged through the app's own logger (rate-limited).
    meter = createMeter(options, 'meterRequests', app.log);
  } catch (err) {
    if (done) {
      done(err as Error);
      return;
    }
    throw err;
  }
  // The x-request-id the client sent (the raw headers: fastify's getter copies them when a hook replaced them).
  const idOf = (request: FastifyRequest, headers = request.raw.headers) =>
    meter.requestId(request, headers['x-request-id'] as string | undefined);

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
        // fastify passes its headers to writeHead, where the response's getHeader does not see them: the reply's does.
        bytesOut(req, raw, state.w0, reply.getHeader('content-length')),
      );
    } catch (err) {
      meter.report(err);
    }
  };

  // Only with the onResponse hook: where it finds the state of a request onRequest saw, unless
  // the finished-response channel has it (Node's own HTTP/1 server: nearly every request, for
  // which a map of every request cost more than the rest of the plugin). Not a decorated
  // property: that cost every request more still.
  const states = options.registeredFirst ? null : new WeakMap<FastifyRequest, State>();
  function onRequest(request: FastifyRequest, reply: FastifyReply, next: () => void): void {
    let storage;
    let state: State | undefined;
    try {
      const s: State = new Exchange(request, reply, reply.raw, finish);
      state = s;
      if (!watchResponse(s, request.raw.socket) && states) states.set(request, s);
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
  // The admission gate: after the app's own onRequest hooks (auth) and body parsing, before the
  // handler. A refusal is an ordinary reply, so its event is recorded as every other.
  if (meter.gated)
    app.addHook('preHandler', async (request, reply) => {
      const refused = await meter.admit(request);
      if (!refused) return;
      reply.code(refused.status).headers(refused.headers);
      return reply.send(refused.body);
    });
  if (states) {
    // Answers given by onRequest hooks that ran before this one: seen only here.
    app.addHook('onResponse', (request, reply, next) => {
      let state = states.get(request);
      if (!state && watchedOnChannel(reply.raw, request.raw.socket)) return next(); // seen at onRequest
      if (!state) {
        const ms = reply.elapsedTime;
        state = new Exchange(request, reply, reply.raw, finish, now() - ms, Math.round(Date.now() - ms));
      }
      // Not always a finished answer: on HTTP/2 fastify also gets here when the client reset
      // the stream, before the close listener of watchResponse has run.
      state.over(!completed(reply.raw));
      next();
    });
  } else if (app.server) {
    // Nothing dropped silently: an answer the plugin never saw start is reported.
    reportUnwatched(app.server, (res) =>
      meter.report(
        new Error(
          `meterRequests: a request answered ${res.statusCode} before the plugin's onRequest hook ran was not metered (an onRequest hook registered before meterRequests answered it; register meterRequests first, or leave out registeredFirst: true)`,
        ),
      ),
    );
  }
  if (meter.ownsClient) app.addHook('onClose', async () => meter.client.close());
  done?.();
}

/** The route pattern (`/items/:id`), never the raw path; undefined for a 404. */
function routeOf(request: FastifyRequest): string | undefined {
  const url = request.routeOptions?.url;
  return typeof url === 'string' ? url : undefined;
}

/**
 * A fastify plugin: `await app.register(meterRequests, options)`, or `meterRequests(app, options)`
 * before the app is ready. Register it before other onRequest hooks; see `registeredFirst`.
 */
export const meterRequests = fp(plugin as FastifyPluginCallback<FastifyMeterOptions>, {
  fastify: '5.x',
  name: 'sui-receipts-meter',
}) as unknown as (instance: AnyFastify, options: FastifyMeterOptions, done?: (err?: Error) => void) => void;
