// A complete Express app that meters every request. From a checkout (Node ≥ 22.18 runs .ts as is):
//   RECEIPTS_URL=http://127.0.0.1:8080 RECEIPTS_API_KEY=… npx node examples/express.ts
// In your own app, import from the package instead: 'sui-receipts' and 'sui-receipts/express'.
import express from 'express';
import { createUsageClient } from '../src/client/index.ts';
import { meterRequests } from '../src/middleware/express.ts';

const usage = createUsageClient({
  url: process.env.RECEIPTS_URL ?? 'http://127.0.0.1:8080',
  apiKey: process.env.RECEIPTS_API_KEY ?? '',
  onError: (error) => console.error(`usage client: ${error.message}`),
});
const app = express();
// Mount it first: a request refused by middleware mounted before it is never seen. Problems
// (a request its caller function gives nothing for is not metered) go to console.error unless
// you pass onError.
app.use(
  meterRequests({
    client: usage,
    namespace: 'acme/prod',
    caller: (req) => req.get('x-user-id') ?? 'anonymous',
    action: 'recall',
    skip: (req) => req.path === '/healthz',
  }),
);
app.get('/recall', (_req, res) => void res.json({ items: [1, 2, 3] }));
app.get('/healthz', (_req, res) => void res.send('ok'));
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');

// On SIGTERM or SIGINT: stop taking requests, let those under way finish, then send what is
// still queued (close gives up after closeTimeoutMs, 10 s, if the service is down), then exit.
// Without this, a request answered just before the signal is never sent.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close(() => void usage.close().finally(() => process.exit(0)));
    server.closeIdleConnections(); // kept-alive connections with nothing under way
  });
}
