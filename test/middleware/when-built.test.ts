// When an event is built: as its response ends, in its request's async context, from the
// request, response and socket as they are then. Building events later (in batches, which
// keeps their code in the CPU cache, README "Overhead") broke the first six: a review found them.
import express from 'express';
import Fastify from 'fastify';
import { AsyncLocalStorage } from 'node:async_hooks';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type UsageClient, type UsageEventInput } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';
import { meterRequests as meterFastify } from '../../src/middleware/fastify.ts';
import { expressApps } from './express-apps.ts';

const apps = expressApps();
const options = { namespace: 'acme/prod', caller: () => 'u1', action: 'recall' };

/** A client that never sends on its own (so a test sees what flush, close and stats do). */
function idleClient() {
  const sink = createMemorySink();
  return { sink, client: createUsageClient({ sink, flushIntervalMs: 60_000 }) };
}

async function listenFastify(app: ReturnType<typeof Fastify>): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

/** A promise the handler resolves when the request reaches it. */
function arrival(): { arrived: () => void; seen: Promise<void> } {
  let arrived!: () => void;
  const seen = new Promise<void>((r) => (arrived = r));
  return { arrived, seen };
}

/** A request the client abandons as soon as the handler has it. */
async function abandon(port: number, arrived: Promise<void>): Promise<void> {
  const req = httpRequest({ host: '127.0.0.1', port, path: '/slow', headers: { 'x-request-id': 'gone' } });
  req.on('error', () => {});
  req.end();
  await arrived;
  req.destroy();
}

describe('events are built as their responses end', () => {
  const als = new AsyncLocalStorage<{ user: string }>();
  const fromContext = { ...options, caller: () => als.getStore()?.user ?? 'nobody' };
  const users = Array.from({ length: 5 }, (_, i) => `user-${i}`);
  const fetchAll = (port: number) =>
    Promise.all(
      users.map((u, i) =>
        fetch(`http://127.0.0.1:${port}/ok`, { headers: { 'x-user': u, 'x-request-id': `r-${i}` } }).then((r) => r.text()),
      ),
    );
  const callers = (events: UsageEventInput[]) => Object.fromEntries(events.map((e) => [e.request_id, e.caller]));
  const expected = Object.fromEntries(users.map((u, i) => [`r-${i}`, u]));

  it('express: a caller read from AsyncLocalStorage names each request’s own user', async () => {
    const { sink, client } = idleClient();
    const app = express();
    app.use(meterRequests({ client, ...fromContext }));
    app.use((req, _res, next) => als.run({ user: String(req.headers['x-user']) }, next));
    app.get('/ok', (_req, res) => void setTimeout(() => res.send('ok'), 5));
    await fetchAll(await apps.listen(app));
    await client.close();
    expect(callers(sink.events)).toEqual(expected);
  });

  it('fastify: a caller read from AsyncLocalStorage names each request’s own user', async () => {
    const { sink, client } = idleClient();
    const app = Fastify();
    await app.register(meterFastify, { client, ...fromContext });
    app.addHook('onRequest', (req, _reply, done) => als.run({ user: String(req.headers['x-user']) }, done));
    app.get('/ok', async () => {
      await new Promise((r) => setTimeout(r, 5));
      return 'ok';
    });
    try {
      await fetchAll(await listenFastify(app));
    } finally {
      await app.close();
    }
    await client.close();
    expect(callers(sink.events)).toEqual(expected);
  });

  it('express: the client left, the handler answers 2 ms later: status 499, no bytes', async () => {
    const { sink, client } = idleClient();
    const app = express();
    app.use(meterRequests({ client, ...options }));
    const { arrived, seen } = arrival();
    app.get('/slow', (_req, res) => {
      arrived();
      res.on('close', () => setTimeout(() => res.writeHead(201, { 'content-length': '4' }).end('late'), 2));
    });
    await abandon(await apps.listen(app), seen);
    await new Promise((r) => setTimeout(r, 50));
    await client.close();
    expect(sink.events).toHaveLength(1);
    expect(sink.events[0]).toMatchObject({ request_id: 'gone', units: 0, metadata: { aborted: true, status: 499, bytes_out: 0 } });
  });

  it('fastify: the client left, the handler returns 2 ms later: status 499, no bytes', async () => {
    const { sink, client } = idleClient();
    const app = Fastify();
    await app.register(meterFastify, { client, ...options });
    const { arrived, seen } = arrival();
    app.get('/slow', async (_req, reply) => {
      arrived();
      await new Promise<void>((r) => reply.raw.on('close', () => setTimeout(r, 2)));
      reply.code(201);
      return 'late';
    });
    try {
      await abandon(await listenFastify(app), seen);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      await app.close();
    }
    await client.close();
    expect(sink.events).toHaveLength(1);
    expect(sink.events[0]).toMatchObject({ request_id: 'gone', units: 0, metadata: { aborted: true, status: 499, bytes_out: 0 } });
  });

  it('express: answered in a mounted router that then calls next(): the route keeps its mount path', async () => {
    const { sink, client } = idleClient();
    const app = express();
    app.use(meterRequests({ client, ...options }));
    const router = express.Router();
    router.get('/items/:id', (_req, res, next) => {
      res.send('ok');
      next(); // on to middleware that runs after the answer (Express then restores req.baseUrl)
    });
    app.use('/api', router);
    app.use((_req, _res, next) => void setTimeout(next, 1));
    const port = await apps.listen(app);
    expect(await (await fetch(`http://127.0.0.1:${port}/api/items/7`)).text()).toBe('ok');
    await new Promise((r) => setTimeout(r, 30));
    await client.close();
    expect(sink.events.map((e) => e.metadata?.route)).toEqual(['/api/items/:id']);
  });

  it('express: units may read the response’s socket (Node detaches it right after the end)', async () => {
    const { sink, client } = idleClient();
    const errors: Error[] = [];
    const app = express();
    app.use(
      meterRequests({
        client,
        ...options,
        onError: (e) => void errors.push(e),
        units: (_req, res) => ((res.socket?.remotePort ?? 0) > 0 ? 2 : 0),
      }),
    );
    app.get('/ok', (_req, res) => void res.send('ok'));
    const port = await apps.listen(app);
    await Promise.all([1, 2, 3].map(() => fetch(`http://127.0.0.1:${port}/ok`).then((r) => r.text())));
    await client.close();
    expect(errors).toEqual([]);
    expect(sink.events.map((e) => e.units)).toEqual([2, 2, 2]);
  });

  it('stats() and flush() right after an answer already see its event', async () => {
    const { sink, client } = idleClient();
    const app = express();
    app.use(meterRequests({ client, ...options }));
    app.get('/ok', (_req, res) => void res.send('ok'));
    const port = await apps.listen(app);
    await fetch(`http://127.0.0.1:${port}/ok`).then((r) => r.text());
    expect(client.stats().queued).toBe(1);
    await client.flush();
    expect(sink.events).toHaveLength(1);
    await client.close();
  });

  it('a client of another kind gets the event as the answer ends', async () => {
    const got: UsageEventInput[] = [];
    const own: UsageClient = {
      record: (e) => void got.push(e),
      flush: async () => {},
      close: async () => {},
      stats: () => ({ queued: got.length, inFlight: 0, sent: 0, retried: 0, dropped: 0, rejected: 0, quarantined: 0 }),
      receipt: async () => {
        throw new Error('no receipts');
      },
    };
    const app = express();
    app.use(meterRequests({ client: own, ...options }));
    app.get('/ok', (_req, res) => void res.send('ok'));
    const port = await apps.listen(app);
    // The server has seen its answer end before the client reads it (one process, one event loop).
    await fetch(`http://127.0.0.1:${port}/ok`).then((r) => r.text());
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ namespace: 'acme/prod', caller: 'u1', action: 'recall', units: 1 });
  });
});
