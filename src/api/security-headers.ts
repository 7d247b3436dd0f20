// The usual security headers of a service that also serves a page (helmet's, with the page's
// Content-Security-Policy). They are the same for every response, so helmet runs once at start
// and each response gets the stored list. (@fastify/helmet built a new helmet middleware,
// parsing every option and directive, on every request: ~7 % of serving a receipt.)
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What helmet does to a response with these options: the headers it sets and those it removes. */
export function helmetHeaders(options: HelmetOptions): { set: Record<string, string>; remove: string[] } {
  const set = new Map<string, string>();
  const remove = new Set<string>();
  const res = {
    setHeader(name: string, value: unknown) {
      if (typeof value !== 'string' && typeof value !== 'number')
        throw new Error(`helmet set ${name} to a ${typeof value}: not a fixed header`);
      set.set(name.toLowerCase(), String(value));
      remove.delete(name.toLowerCase());
    },
    removeHeader(name: string) {
      set.delete(name.toLowerCase());
      remove.add(name.toLowerCase());
    },
  };
  // A directive given as a function (a per-request nonce) would read the request: there is none here.
  const req = new Proxy(
    {},
    {
      get: () => {
        throw new Error('these helmet options depend on the request: the headers cannot be computed once');
      },
    },
  );
  helmet(options)(req as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
  });
  return { set: Object.fromEntries(set), remove: [...remove] };
}

/** Sends helmet's headers (for these options) on every response of the app, answers and errors alike. */
export function securityHeaders(app: FastifyInstance, options: HelmetOptions): void {
  const { set, remove } = helmetHeaders(options);
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(set);
    for (const name of remove) reply.raw.removeHeader(name);
    done();
  });
}
