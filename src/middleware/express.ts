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
type Req = IncomingMessage & { route?: { path?: unknown }; baseUrl?: string; app?: ExpressApp };
/** What this file reads of an Express app: its public `parent`, `mountpath` and (Express 5) `router`. */
type ExpressApp = { parent?: ExpressApp; mountpath?: unknown; router?: { stack?: unknown } };
type Layer = { rawPath?: unknown; route?: unknown; handle?: { stack?: unknown } };
export type ExpressMeterOptions<R extends IncomingMessage = Req, S extends ServerResponse = ServerResponse> = MeterOptions<R, S>;

export interface MeterMiddleware<R, S> {
  (req: R, res: S, next: (err?: unknown) => void): void;
  /** The usage client events go through. */
  readonly client: import('../client/index.ts').UsageClient;
  /** Sends what is queued; closes the client if the middleware built it. */
  close(): Promise<void>;
}

export function meterRequests<R extends IncomingMessage = Req, S extends ServerResponse = ServerResponse>(
  options: ExpressMeterOptions<R, S>,
): MeterMiddleware<R, S> {
  const meter = createMeter(options, 'meterRequests');
  const finish = (w: Exchange<R, S>, aborted: boolean) => {
    const { request: req, reply: res } = w;
    try {
      const r = req as unknown as Req;
      const route = r.route?.path !== undefined ? `${mountOf(r)}${String(r.route.path)}` : undefined;
      meter.record(
        req,
        res,
        w.ts,
        w.id!,
        req.method ?? 'GET',
        route,
        res.headersSent || !aborted ? res.statusCode : 499,
        aborted,
        elapsed(w.t0),
        bytesIn(req),
        bytesOut(req, res, w.w0),
      );
    } catch (err) {
      meter.report(err);
    }
  };
  const middleware = (req: R, res: S, next: (err?: unknown) => void) => {
    let storage: ReturnType<typeof attributionContext> = null;
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
    const run = () => {
      if (storage && requestId) storage.run(meter.context(req, requestId), next);
      else next();
    };
    if (!meter.gated) return run();
    // The admission gate: before the rest of the app; a refusal is answered here, the handler never runs.
    meter.admit(req).then(
      (refused) => {
        if (!refused) return run();
        res.statusCode = refused.status;
        for (const [k, v] of Object.entries(refused.headers)) res.setHeader(k, v);
        res.end(refused.body);
      },
      (err) => {
        meter.report(err);
        run();
      },
    );
  };
  return Object.assign(middleware, {
    client: meter.client,
    close: () => (meter.ownsClient ? meter.client.close() : meter.client.flush()),
  });
}

/**
 * The mount path of the routers a request went through, as written in the app, for the route
 * pattern. `req.baseUrl` is the text of the URL that matched, so under a mount with parameters
 * (`app.use('/users/:uid', router)`) it holds a user's values. It is used only when every mount
 * it went through is a literal path, found in the app's router stack; otherwise the route is the
 * pattern within its router alone (always so on Express 4, whose layers do not keep the path).
 */
function mountOf(req: Req): string {
  const base = req.baseUrl;
  if (!base) return '';
  try {
    return literalPrefix(req, base);
  } catch {
    return ''; // never lose the event over its route (Express 4's app.router getter throws)
  }
}

function literalPrefix(req: Req, base: string): string {
  // A sub-app that answered is req.app; its mount paths, up to the top app, come first.
  let prefix = '';
  const app = req.app;
  for (let a = app, i = 0; a?.parent && i < 32; a = a.parent, i++) {
    const mount = typeof a.mountpath === 'string' ? a.mountpath.replace(/\/+$/, '') : undefined;
    if (mount === undefined || (mount !== '' && !LITERAL.test(mount))) return '';
    prefix = mount + prefix;
  }
  if (!startsWithPath(base, prefix)) return '';
  const rest = base.slice(prefix.length);
  // The route is on the (sub-)app that answered, mounted at literal paths only: the prefix.
  if (rest === '' || rest === '/') return prefix;
  // Express 4's app.router getter throws, and its private _router is not read: mounts inside it are not followed.
  const found = literalMount(stackOf(app?.router), rest, req.route, 0);
  return found === undefined ? '' : prefix + found;
}

const LITERAL = /^\/[A-Za-z0-9._~!$&'+,;=@%/-]*$/; // no :param, *, ?, (, {, or [

function stackOf(router: { stack?: unknown } | undefined): Layer[] {
  return Array.isArray(router?.stack) ? (router.stack as Layer[]) : [];
}

/** Whether `text` begins with the mount path `path` (a whole segment), as Express matches: case-blind. */
function startsWithPath(text: string, path: string): boolean {
  return (
    text.slice(0, path.length).toLowerCase() === path.toLowerCase() &&
    (text.length === path.length || path === '' || text[path.length] === '/')
  );
}

/**
 * The literal mounts that make up `rest` down to the router holding `route` (the one that
 * answered), or undefined. Only router 2 (Express 5) layers keep the path as written (`rawPath`);
 * Express 4's are not followed. Never calls a layer's match().
 */
function literalMount(stack: Layer[], rest: string, route: unknown, depth: number): string | undefined {
  if (depth > 8) return undefined;
  const end = rest === '' || rest === '/';
  if (end && stack.some((l) => l.route === route)) return '';
  for (const layer of stack) {
    const nested = layer.handle?.stack; // a router: a route or a middleware function has none
    if (!Array.isArray(nested) || typeof layer.rawPath !== 'string' || !LITERAL.test(layer.rawPath)) continue;
    const path = layer.rawPath.replace(/\/+$/, '');
    let tail: string | undefined;
    if (path === '')
      tail = literalMount(nested as Layer[], rest, route, depth + 1); // router.use(inner): nothing consumed
    else if (!end && startsWithPath(rest, path)) {
      const below = literalMount(nested as Layer[], rest.slice(path.length), route, depth + 1);
      if (below !== undefined) tail = path + below;
    }
    if (tail !== undefined) return tail;
  }
  return undefined;
}
