// A complete fastify app that meters every request. From a checkout (Node ≥ 22.18 runs .ts as is):
//   RECEIPTS_URL=http://127.0.0.1:8080 RECEIPTS_API_KEY=… npx node examples/fastify.ts
// In your own app, import from the package instead: import { meterRequests } from 'sui-receipts/fastify';
import Fastify from 'fastify';
import { meterRequests } from '../src/middleware/fastify.ts';

const app = Fastify({ logger: true });
await app.register(meterRequests, {
  url: process.env.RECEIPTS_URL ?? 'http://127.0.0.1:8080',
  apiKey: process.env.RECEIPTS_API_KEY ?? '',
  namespace: 'acme/prod',
  // From your auth, already resolved. A request it gives nothing for is served but not metered,
  // and app.log says so (at most 10 lines a minute, then a count).
  caller: (request) => request.headers['x-user-id'] as string,
  action: (request) => (request.routeOptions.config as { action?: string }).action ?? 'call',
  // Bill what was served: nothing for errors, 404s or a client that left.
  units: (_request, reply, outcome) => (outcome.status < 400 && !outcome.aborted ? Number(reply.getHeader('x-items') ?? 1) : 0),
  skip: (request) => request.url === '/healthz',
  registeredFirst: true, // no onRequest hook before it: the cheapest way (see docs/middleware.md)
});
app.get('/recall', { config: { action: 'recall' } }, async (_request, reply) => {
  reply.header('x-items', '3');
  return { items: [1, 2, 3] };
});
app.get('/healthz', async () => 'ok');

// On SIGTERM or SIGINT: stop taking requests, finish those under way, then send what is still
// queued (the client the plugin built closes with the app; it gives up after 10 s if the
// service is down). Without this, a request answered just before the signal is never sent.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      (err) => {
        app.log.error(err);
        process.exit(1);
      },
    );
  });
}
await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' });
