// sui-receipts/express: one usage event per completed request for Express and Connect apps,
// recorded when the response is over (finished, or its connection gone), never on its path.
//
//   app.use(meterRequests({ client, namespace: 'acme/prod', caller: (req) => req.user.id, action: 'recall' }));
//
// Mount it first: a request refused by middleware mounted before it is never seen.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { attributionContext, createMeter, type MeterOptions } from './common.ts';
import { bytesIn, bytesOut, elapsed, Exchange, watchResponse } from './node-http.ts';

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
  const finish = (w: Exchange<R, S>, aborted: boolean) => {
    const { request: req, reply: res } = w;
    try {
      const r = req as unknown as Req;
      const route = r.route?.path !== undefined ? `${r.baseUrl ?? ''}${String(r.route.path)}` : undefined;
      meter.record(req, res, w.ts, w.id!, req.method ?? 'GET', route, res.headersSent || !aborted ? res.statusCode : 499, aborted, elapsed(w.t0), bytesIn(req), bytesOut(req, res, w.w0));
    } catch (err) {
      meter.report(err);
    }
  };
  const middleware = (req: R, res: S, next: (err?: unknown) => void) => {
    let storage;
    let requestId: string | undefined;
    try {
      requestId = meter.requestId(req, req.headers['x-request-id'] as string | undefined);
      const w = new Exchange(req, res, res, finish);
      w.id = requestId;
      watchResponse(w, req.socket);
      storage = attributionContext();
    } catch (err) {
      meter.report(err);
    }
    // With a metered fetch in the process, the rest runs inside the request's context.
    if (storage && requestId) storage.run(meter.context(req, requestId), next);
    else next();
  };
  return Object.assign(middleware, {
    client: meter.client,
    close: () => (meter.ownsClient ? meter.client.close() : meter.client.flush()),
  });
}

