// The client's check() and the middleware's admission gate (issue 25, docs/middleware.md
// "Limits"): against a real service, a request over a hard limit is answered 429 without running
// the handler and still recorded, units 0, metadata.admission "over_limit"; when the service
// cannot answer, fail_open runs the handler and fail_closed refuses, each saying so in its event.
// fastify, Express and the edge handler.
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type MemorySink, type UsageClient } from '../../src/index.ts';
import { meterHandler } from '../../src/middleware/edge.ts';
import { meterRequests as meterExpress } from '../../src/middleware/express.ts';
import { meterRequests, type FastifyMeterOptions } from '../../src/middleware/fastify.ts';
import { testServer, type TestServer } from '../helpers.ts';

let service: TestServer | undefined;
let app: FastifyInstance | undefined;
let client: UsageClient | undefined;
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await app?.close();
  await client?.close();
  await service?.close();
  for (const c of closers.splice(0)) await c();
  app = client = service = undefined;
});

const fast = { flushIntervalMs: 5, retry: { baseMs: 5, maxMs: 20 } };

/** A listening service with a limit of 2 `call` events a day on acme/prod, and a key that may record and read. */
async function limitedService(): Promise<{ url: string; key: string }> {
  service = await testServer();
  const admin = await service.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['admin']);
  const res = await service.app.inject({
    method: 'PUT',
    url: '/v1/limits/calls',
    headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ namespace: 'acme/prod', actions: ['call'], measure: 'events', period: 'day', hard: 2 }),
  });
  expect(res.statusCode).toBe(201);
  await service.app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`, key: service.key };
}

function fastifyApp(options: Partial<FastifyMeterOptions>) {
  const ran: string[] = [];
  const errors: Error[] = [];
  app = Fastify();
  meterRequests(app, {
    client: client!,
    namespace: 'acme/prod',
    caller: () => 'user-7',
    action: 'call',
    onError: (e) => errors.push(e),
    ...options,
  });
  app.get('/work', async () => {
    ran.push('work');
    return { ok: true };
  });
  return { ran, errors };
}

describe('client check()', () => {
  it('answers one item or a batch from the service, exact as of a ledger position', async () => {
    const { url, key } = await limitedService();
    client = createUsageClient({ url, apiKey: key, ...fast });
    client.record({ namespace: 'acme/prod', action: 'call', caller: 'u', units: 1 });
    await client.flush();
    const one = await client.check!({ namespace: 'acme/prod', action: 'call' });
    expect(one).toMatchObject({ allowed: true, limit_id: 'calls', used: 1, remaining: 1, as_of: 1 });
    const many = await client.check!([
      { namespace: 'acme/prod', action: 'call' },
      { namespace: 'acme/prod', action: 'other', units: 5 },
    ]);
    expect(many.map((a) => a.limit_id)).toEqual(['calls', null]);
    // Not reachable: a UsageClientError with its code.
    const down = createUsageClient({ url: 'http://127.0.0.1:1', apiKey: key, ...fast });
    closers.push(() => down.close({ timeoutMs: 10 }));
    await expect(down.check!({ namespace: 'acme/prod', action: 'call' })).rejects.toMatchObject({ code: 'check_failed' });
  });
});

describe('admission gate', () => {
  it('fastify: over the hard limit answers 429 without running the handler, and records the refusal with units 0', async () => {
    const { url, key } = await limitedService();
    client = createUsageClient({ url, apiKey: key, ...fast });
    const { ran } = fastifyApp({ limits: {} });
    for (let i = 0; i < 2; i++) {
      expect((await app!.inject({ method: 'GET', url: '/work' })).statusCode).toBe(200);
      await client.flush(); // acknowledged: the next check counts it
    }
    const refused = await app!.inject({ method: 'GET', url: '/work' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toMatchObject({ code: 'over_limit', limit_id: 'calls', used: 2, remaining: 0 });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(ran).toEqual(['work', 'work']);
    await client.flush();
    const rows = await service!.sql<{ units: number; metadata: string }>('SELECT units, metadata FROM events ORDER BY id');
    expect(rows).toHaveLength(3);
    expect(rows[2]!.units).toBe(0);
    expect(JSON.parse(rows[2]!.metadata)).toMatchObject({
      status: 429,
      admission: 'over_limit',
      limit_check: 'over_limit',
      limit_id: 'calls',
    });
    expect(JSON.parse(rows[0]!.metadata).admission).toBeUndefined();
    // A configured status.
    await app!.close();
    fastifyApp({ limits: { status: 402 } });
    expect((await app!.inject({ method: 'GET', url: '/work' })).statusCode).toBe(402);
  });

  const unreachable = (sink: MemorySink) => createUsageClient({ sink, url: 'http://127.0.0.1:1', apiKey: 'sr_x_y', ...fast });

  it('fastify: the service unreachable, fail_open runs the handler and fail_closed refuses; each event says which', async () => {
    const sink = createMemorySink();
    client = unreachable(sink);
    const open = fastifyApp({ limits: { timeoutMs: 500 } });
    expect((await app!.inject({ method: 'GET', url: '/work' })).statusCode).toBe(200);
    expect(open.ran).toEqual(['work']);
    expect(open.errors.map((e) => e.message).join()).toMatch(/limit check failed .*fail_open/);
    await app!.close();
    const closed = fastifyApp({ limits: { policy: 'fail_closed', timeoutMs: 500 } });
    const res = await app!.inject({ method: 'GET', url: '/work' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('limit_unavailable');
    expect(closed.ran).toEqual([]);
    await client.flush();
    await sink.until(2);
    expect(sink.events.map((e) => [e.units, e.metadata?.admission, e.metadata?.limit_check])).toEqual([
      [1, undefined, 'fail_open'],
      [0, 'limit_unavailable', 'fail_closed'],
    ]);
  });

  /** A client whose checks are answered by `answer` (the events go to a memory sink). */
  const answering = (sink: MemorySink, answer: Record<string, unknown>) =>
    createUsageClient({
      sink,
      url: 'http://limits.test',
      apiKey: 'sr_x_y',
      ...fast,
      fetch: async () => new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } }),
    });
  const over = { allowed: false, limit_id: 'calls', used: 2, remaining: 0, resets_at: null, as_of: 9 };

  it('Express and the edge handler gate the same way', async () => {
    const sink = createMemorySink();
    client = answering(sink, over);
    const ran: string[] = [];
    const x = express();
    const mw = meterExpress({ client, namespace: 'acme/prod', caller: () => 'u', action: 'call', limits: {} });
    x.use(mw);
    x.get('/work', (_req, res) => {
      ran.push('express');
      res.json({ ok: true });
    });
    const server = x.listen(0, '127.0.0.1');
    closers.push(() => new Promise((r) => server.close(r)));
    await new Promise((r) => server.once('listening', r));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/work`);
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('over_limit');

    const edge = meterHandler(
      async () => {
        ran.push('edge');
        return new Response('ok');
      },
      { client, namespace: 'acme/prod', caller: () => 'u', action: 'call', limits: { status: 402 } },
    );
    expect((await edge(new Request('http://app.test/work'))).status).toBe(402);
    expect(ran).toEqual([]);
    await client.flush();
    await sink.until(2);
    expect(sink.events.map((e) => [e.units, e.metadata?.status, e.metadata?.admission])).toEqual([
      [0, 429, 'over_limit'],
      [0, 402, 'over_limit'],
    ]);
  });

  it('refuses a gate it cannot run, at start: a client without check(), a bad policy', () => {
    const base = { namespace: 'acme/prod', caller: () => 'u', action: 'call' };
    // A UsageClient of before check() (the method is optional in the type).
    const old = {
      record() {},
      flush: async () => {},
      close: async () => {},
      stats: () => ({}),
      receipt: async () => ({}),
    } as unknown as UsageClient;
    expect(() => meterExpress({ ...base, client: old, limits: {} })).toThrow(/limits needs a client with check\(\)/);
    const c = createUsageClient({ sink: createMemorySink() });
    closers.push(() => c.close());
    expect(() => meterExpress({ ...base, client: c, limits: { policy: 'maybe' as 'fail_open' } })).toThrow(/limits.policy must be/);
    expect(() => meterExpress({ ...base, client: c, limits: { status: 200 } })).toThrow(/limits.status must be an HTTP error status/);
  });
});
