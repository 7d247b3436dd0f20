// sui-receipts/fastify: one usage event per completed request, recorded after the answer is
// sent (never on the request's path), including refused, failed, aborted and streamed ones.
//
//   await app.register(meterRequests, { client, namespace: 'acme/prod', caller: (r) => r.user.id, action: (r) => r.routeOptions.config.action });
//
// The plugin is not encapsulated: it meters every route of the instance it is registered on.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createMeter, requestContext, type InboundContext, type Meter, type MeterOptions } from './common.ts';
import { track, type Tracked } from './node-http.ts';

export type { RequestOutcome } from './common.ts';
export type FastifyMeterOptions = MeterOptions<FastifyRequest, FastifyReply>;

const kState = Symbol('sui-receipts.meter');

interface State {
  id: string;
  tracked: Tracked;
  done: boolean;
}

type Metered = FastifyRequest & { [kState]: State | null };

/**
 * A fastify plugin: `app.register(meterRequests, options)`, or `meterRequests(app, options)`
 * before the app is ready. Register it first, so that its hooks run before any that refuse
 * (a refusal from an earlier hook is still recorded, without upstream attribution).
 */
export function meterRequests(app: FastifyInstance, options: FastifyMeterOptions, done?: (err?: Error) => void): void {
  let meter: Meter<FastifyRequest, FastifyReply>;
  try {
    meter = createMeter(options, 'meterRequests');
  } catch (err) {
    if (done) return done(err as Error);
    throw err;
  }
  const storage = requestContext();

  const finish = (request: FastifyRequest, reply: FastifyReply, state: State, aborted: boolean) => {
    if (state.done) return;
    state.done = true;
    const t = state.tracked;
    meter.record(request, reply, {
      ts: t.ts,
      requestId: state.id,
      method: request.method,
      route: request.routeOptions?.url,
      status: reply.raw.headersSent || !aborted ? reply.statusCode : 499,
      aborted,
      durationMs: performance.now() - t.t0,
      bytesIn: t.bytesIn(),
      bytesOut: t.bytesOut(),
    });
  };

  app.decorateRequest(kState, null);
  app.addHook('onRequest', (request, reply, next) => {
    let context: InboundContext | undefined;
    try {
      const state: State = { id: meter.requestId(request, request.headers['x-request-id'] as string | undefined), tracked: undefined as unknown as Tracked, done: false };
      state.tracked = track(request.raw, reply.raw, (aborted) => finish(request, reply, state, aborted));
      (request as Metered)[kState] = state;
      if (storage) context = meter.context(request, state.id);
    } catch (err) {
      meter.report(err);
    }
    // The rest of the request runs inside the context, so metered fetches can attribute to it.
    if (context) storage!.run(context, next);
    else next();
  });
  // Answers that hooks registered before this plugin gave, and any answer that finished before
  // its connection closed (the close listener then finds the event recorded).
  app.addHook('onResponse', (request, reply, next) => {
    let state = (request as Metered)[kState];
    if (!state) {
      state = { id: meter.requestId(request, request.headers['x-request-id'] as string | undefined), tracked: fallbackTracked(request, reply), done: false };
      (request as Metered)[kState] = state;
    }
    finish(request, reply, state, false);
    next();
  });
  if (meter.ownsClient) app.addHook('onClose', async () => meter.client.close());
  done?.();
}

/** For requests this plugin's onRequest did not see: fastify's own timing, declared sizes. */
function fallbackTracked(request: FastifyRequest, reply: FastifyReply): Tracked {
  const elapsed = reply.elapsedTime;
  const size = (v: unknown) => (Number.isSafeInteger(Number(v)) && Number(v) >= 0 ? Number(v) : 0);
  return {
    t0: performance.now() - elapsed,
    ts: Math.round(Date.now() - elapsed),
    bytesIn: () => size(request.headers['content-length']),
    bytesOut: () => size(reply.getHeader('content-length')),
  };
}

// What fastify-plugin does: hooks apply to the instance it is registered on, not a child scope.
Object.assign(meterRequests, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'sui-receipts-meter' });
