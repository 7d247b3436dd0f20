// The Express middleware through real apps on real ports.
import express from 'express';
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type MemorySink, type UsageClient } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';
import { meteredFetch } from '../../src/middleware/upstream.ts';
import { until } from '../helpers.ts';
import { expressApps } from './express-apps.ts';

const apps = expressApps();
let client: UsageClient | undefined;

async function start(app: express.Express): Promise<string> {
  return `http://127.0.0.1:${await apps.listen(app)}`;
}

function metered(sink: MemorySink = createMemorySink(), extra: Record<string, unknown> = {}) {
  client = apps.client(sink);
  const app = express();
  app.use(
    meterRequests({ client, namespace: 'acme/prod', caller: (req) => String(req.headers['x-user'] ?? ''), action: 'recall', ...extra }),
  );
  return { app, sink };
}

async function settled(sink: MemorySink, n: number) {
  await sink.until(n);
  await new Promise((r) => setTimeout(r, 40));
  await client!.flush();
  return sink.events;
}

describe('express meterRequests', () => {
  it('one event per request, with the route pattern and byte counts, nothing from headers', async () => {
    const { app, sink } = metered();
    const router = express.Router();
    router.post('/items/:id', express.json(), (req, res) => void res.json({ got: req.body }));
    app.use('/v2', router);
    const url = await start(app);
    const res = await fetch(`${url}/v2/items/item-zzq?secret=abc123secret`, {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json', 'x-user': 'u1', 'x-request-id': 'ex-1', authorization: 'Bearer very-secret-token' },
    });
    const text = await res.text();
    const [e, ...rest] = await settled(sink, 1);
    expect(rest).toEqual([]);
    expect(e).toMatchObject({
      request_id: 'ex-1',
      caller: 'u1',
      action: 'recall',
      units: 1,
      metadata: { method: 'POST', route: '/v2/items/:id', status: 200, bytes_in: 7, bytes_out: Buffer.byteLength(text) },
    });
    expect(JSON.stringify(e)).not.toMatch(/very-secret-token|abc123secret|item-zzq/);
  });

  it('the route is a pattern: a mount with parameters is never taken from the URL; literal mounts are kept as written', async () => {
    const { app, sink } = metered();
    const items = express.Router();
    items.get('/items/:id', (_req, res) => void res.send('x'));
    app.use('/users/:uid', items); // the URL's text here is a user's value
    const admin = express();
    admin.get('/orders/:oid', (_req, res) => void res.send('x'));
    app.use('/tenants/:tenant', admin);
    app.use('/API', items); // literal, matched in any case
    const outer = express.Router();
    const inner = express.Router();
    inner.get('/deep/:x', (_req, res) => void res.send('x'));
    outer.use('/v3', inner);
    app.use(outer); // mounted at the root, a literal mount inside
    const url = await start(app);
    const paths = ['/users/alice@example.com/items/8', '/tenants/acme-corp/orders/991', '/api/items/3', '/v3/deep/4'];
    for (const [i, p] of paths.entries())
      await (await fetch(`${url}${p}`, { headers: { 'x-user': 'u', 'x-request-id': `m${i}` } })).arrayBuffer();
    const events = await settled(sink, 4);
    const route = Object.fromEntries(events.map((e) => [e.request_id, e.metadata!.route]));
    expect(route).toEqual({ m0: '/items/:id', m1: '/orders/:oid', m2: '/API/items/:id', m3: '/v3/deep/:x' });
    expect(JSON.stringify(events)).not.toMatch(/alice|acme-corp/);
  });

  it('the route names the router that answered, not another literal mount whose text matches', async () => {
    const { app, sink } = metered();
    const api = express.Router();
    api.get('/x', (_req, res) => void res.send('x')); // nothing for /items here: it passes on
    const tenant = express.Router();
    tenant.get('/items/:id', (_req, res) => void res.send('x'));
    app.use('/api', api);
    app.use('/:tenant', tenant);
    const url = await start(app);
    await (await fetch(`${url}/api/items/7`, { headers: { 'x-user': 'u', 'x-request-id': 't1' } })).arrayBuffer();
    const [e] = await settled(sink, 1);
    expect(e!.metadata!.route).toBe('/items/:id');
  });

  it('a handler that throws, a refusal by later middleware, a streamed reply: one event each', async () => {
    const { app, sink } = metered();
    app.use((req, res, next) => (req.headers['x-limit'] ? void res.status(429).send('slow down') : next()));
    app.get('/boom', () => {
      throw new Error('broken handler');
    });
    app.get('/stream', (_req, res) => {
      res.write('a'.repeat(100));
      setTimeout(() => res.end('b'.repeat(50)), 20);
    });
    app.get('/ok', (_req, res) => void res.send('ok'));
    const url = await start(app);
    const h = (id: string, more: Record<string, string> = {}) => ({ headers: { 'x-user': 'u', 'x-request-id': id, ...more } });
    expect((await fetch(`${url}/boom`, h('boom'))).status).toBe(500);
    expect((await fetch(`${url}/ok`, h('limited', { 'x-limit': '1' }))).status).toBe(429);
    expect((await (await fetch(`${url}/stream`, h('stream'))).text()).length).toBe(150);
    const events = await settled(sink, 3);
    const by = Object.fromEntries(events.map((e) => [e.request_id, e]));
    expect(events).toHaveLength(3);
    expect(by.boom).toMatchObject({ units: 0, metadata: { status: 500 } });
    expect(by.limited).toMatchObject({ units: 0, metadata: { status: 429, admission: 'rate_limited' } });
    expect(by.stream).toMatchObject({ units: 1, metadata: { status: 200 } });
    // Chunked: the whole answer as written, status line, headers and framing included.
    expect(by.stream!.metadata!.bytes_out).toBeGreaterThanOrEqual(150 + 100);
    expect(by.stream!.metadata!.bytes_out).toBeLessThan(180 + 400);
  });

  it('an aborted request is recorded once, marked aborted', async () => {
    const { app, sink } = metered();
    let release!: () => void;
    app.get('/slow', (_req, res) => {
      new Promise<void>((r) => (release = r)).then(() => res.send('late'));
    });
    const url = await start(app);
    const { port } = new URL(url);
    const req = httpRequest({ host: '127.0.0.1', port, path: '/slow', headers: { 'x-user': 'u', 'x-request-id': 'gone' } });
    req.on('error', () => {});
    req.end();
    await until(() => typeof release === 'function'); // the handler is running
    req.destroy();
    await sink.until(1); // recorded when the client left, not when the handler ends
    release();
    const events = await settled(sink, 1);
    await new Promise((r) => setTimeout(r, 40));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ request_id: 'gone', units: 0, metadata: { aborted: true, status: 499 } });
  });

  it('upstream calls are attributed to the inbound request through the middleware context', async () => {
    const { app, sink } = metered();
    const anthropic = meteredFetch({
      provider: 'anthropic',
      fetch: (async () => new Response('x', { status: 502 })) as unknown as typeof fetch,
    });
    app.get('/ask', async (_req, res) => {
      await anthropic('https://api.example.com/v1/messages', { method: 'post' });
      res.send('ok');
    });
    const url = await start(app);
    await fetch(`${url}/ask`, { headers: { 'x-user': 'u5', 'x-request-id': 'in-7' } });
    const events = await settled(sink, 2);
    expect(events[0]).toMatchObject({
      request_id: 'in-7.anthropic.1',
      action: 'upstream.anthropic',
      caller: 'u5',
      units: 0,
      metadata: { method: 'POST', status: 502, inbound_request_id: 'in-7' },
    });
  });

  it('bad options fail at start-up with the field named', () => {
    expect(() =>
      meterRequests({ namespace: 'acme/x', action: 'a', caller: 'u' as never, client: createUsageClient({ sink: 'memory' }) }),
    ).toThrow(/caller must be a function/);
    expect(() => meterRequests({ namespace: 'acme/x', action: 'a', caller: () => 'u' })).toThrow(/url/);
    // A fixed namespace or action that no leaf could hold is refused here, not event by event later.
    const client = createUsageClient({ sink: 'memory' });
    expect(() => meterRequests({ namespace: 'Acme Prod', action: 'a', caller: () => 'u', client })).toThrow(
      /namespace "Acme Prod" breaks the leaf rule/,
    );
    expect(() => meterRequests({ namespace: 'acme/x', action: 'a'.repeat(65), caller: () => 'u', client })).toThrow(
      /action "a+" breaks the leaf rule/,
    );
  });
});
