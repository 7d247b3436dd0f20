// Events are built in batches after their responses end (src/middleware/node-http.ts). What a
// user sees must not change: each event arrives on its own within milliseconds, and flush(),
// close() and stats() right after an answer already include it.
import express from 'express';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type UsageClient, type UsageEventInput } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';
import { meterRequests as meterFastify } from '../../src/middleware/fastify.ts';
import { expressApps } from './express-apps.ts';

const apps = expressApps();
const options = { namespace: 'acme/prod', caller: () => 'u1', action: 'recall' };

async function app(client: UsageClient): Promise<string> {
  const a = express();
  a.use(meterRequests({ client, ...options }));
  a.get('/ok', (_req, res) => void res.send('ok'));
  return `http://127.0.0.1:${await apps.listen(a)}`;
}

describe('events built after the answer', () => {
  it('arrive without a flush, each request once, also more than a batch of them at once', async () => {
    const sink = createMemorySink();
    const url = await app(apps.client(sink)); // sends within 5 ms; nobody calls flush()
    await Promise.all(Array.from({ length: 100 }, (_, i) => fetch(`${url}/ok`, { headers: { 'x-request-id': `r-${i}` } }).then((r) => r.text())));
    await sink.until(100);
    await fetch(`${url}/ok`, { headers: { 'x-request-id': 'single' } }).then((r) => r.text());
    await sink.until(101); // a lone request is not held for a batch to fill
    await new Promise((r) => setTimeout(r, 50));
    const ids = sink.events.map((e) => e.request_id).sort();
    expect(ids).toEqual([...Array.from({ length: 100 }, (_, i) => `r-${i}`), 'single'].sort());
  });

  it('stats(), flush() and close() right after an answer include its event', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 60_000 });
    const url = await app(client);
    await fetch(`${url}/ok`).then((r) => r.text());
    expect(client.stats().queued).toBe(1);
    await client.flush();
    expect(sink.events).toHaveLength(1);
    await fetch(`${url}/ok`).then((r) => r.text());
    await client.close(); // built before the client closes, so not refused as "client closed"
    expect(sink.events).toHaveLength(2);
    expect(client.stats()).toMatchObject({ sent: 2, rejected: 0 });
  });

  it('fastify: app.close() right after an answer sends its event (the plugin built the client)', async () => {
    const sink = createMemorySink();
    const f = Fastify();
    await f.register(meterFastify, { ...options, clientOptions: { sink, flushIntervalMs: 60_000 } });
    f.get('/ok', async () => 'ok');
    await f.listen({ port: 0, host: '127.0.0.1' });
    const { port } = f.server.address() as { port: number };
    await fetch(`http://127.0.0.1:${port}/ok`).then((r) => r.text());
    await f.close();
    expect(sink.events.map((e) => e.action)).toEqual(['recall']);
  });

  it('a client of another kind (no way to build late events before its flush) gets each event as its answer ends', async () => {
    const got: UsageEventInput[] = [];
    const own: UsageClient = {
      record: (e) => void got.push(e),
      flush: async () => {},
      close: async () => {},
      stats: () => ({ queued: got.length, inFlight: 0, sent: 0, retried: 0, dropped: 0, rejected: 0 }),
      receipt: async () => {
        throw new Error('no receipts');
      },
    };
    const url = await app(own);
    // The server has seen its answer end before the client reads it (one process, one event loop).
    await fetch(`${url}/ok`).then((r) => r.text());
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ namespace: 'acme/prod', caller: 'u1', action: 'recall', units: 1 });
  });
});
