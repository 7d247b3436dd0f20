// sui-receipts/express: one usage event per completed request for Express and Connect apps,
// recorded when the response is over (finished, or its connection gone), never on its path.
//
//   app.use(meterRequests({ client, namespace: 'acme/prod', caller: (req) => req.user.id, action: 'recall' }));
//
// Mount it first: a request refused by middleware mounted before it is never seen.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMeter, requestContext, type MeterOptions } from './common.ts';
import { track } from './node-http.ts';

export type { RequestOutcome } from './common.ts';

/** Express's request, or any IncomingMessage (Connect); `route`/`baseUrl` give the route pattern. */
type Req = IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
export type ExpressMeterOptions<R extends IncomingMessage = Req, S extends ServerResponse = ServerResponse> = MeterOptions<R, S>;

export interface MeterMiddleware<R, S> {
  (req: R, res: S, next: (err?: unknown) => void): void;
  /** The usage client events go through. */
  readonly client: import('../client/index.ts').UsageClient;
  /** Sends what is queued; closes the client if the middleware built it. */
  close(): Promise<void>;
}

export function meterRequests<R extends IncomingMessage = Req, S extends ServerResponse = ServerResponse>(options: ExpressMeterOptions<R, S>): MeterMiddleware<R, S> {
  const meter = createMeter(options, 'meterRequests');
  const storage = requestContext();
  const middleware = (req: R, res: S, next: (err?: unknown) => void) => {
    let context;
    try {
      const requestId = meter.requestId(req, req.headers['x-request-id'] as string | undefined);
      const t = track(req, res, (aborted) => {
        const r = req as unknown as Req;
        const route = r.route?.path !== undefined ? `${r.baseUrl ?? ''}${String(r.route.path)}` : undefined;
        meter.record(req, res, {
          ts: t.ts,
          requestId,
          method: req.method ?? 'GET',
          route,
          status: res.headersSent || !aborted ? res.statusCode : 499,
          aborted,
          durationMs: performance.now() - t.t0,
          bytesIn: t.bytesIn(),
          bytesOut: t.bytesOut(),
        });
      });
      if (storage) context = meter.context(req, requestId);
    } catch (err) {
      meter.report(err);
    }
    if (context) storage!.run(context, next);
    else next();
  };
  return Object.assign(middleware, {
    client: meter.client,
    close: () => (meter.ownsClient ? meter.client.close() : meter.client.flush()),
  });
}
