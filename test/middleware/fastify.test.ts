// The fastify plugin through a real app: what lands in the sink, once per request, whatever
// the request did; and that the app's answers never wait for or fail because of metering.
import Fastify, { type FastifyInstance } from 'fastify';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type MemorySink, type QueuedEvent, type UsageClient } from '../../src/index.ts';
import { meterRequests, type FastifyMeterOptions } from '../../src/middleware/fastify.ts';
import { meteredFetch } from '../../src/middleware/upstream.ts';
import { testServer, until, type TestServer } from '../helpers.ts';

let app: FastifyInstance | undefined;
let client: UsageClient | undefined;
let server: TestServer | undefined;
afterEach(async () => {
  await app?.close();
  await client?.close();
  await server?.close();
  app = client = server = undefined;
});

const fast = { flushIntervalMs: 5, retry: { baseMs: 5, maxMs: 20 } };

function setup(extra: Partial<FastifyMeterOptions> = {}, sink: MemorySink = createMemorySink()) {
  client = createUsageClient({ sink, ...fast });
  app = Fastify();
  const errors: Error[] = [];
  meterRequests(app, {
    client,
    namespace: 'acme/prod',
    caller: (r) => {
      const user = r.headers['x-user'];
      if (typeof user !== 'string') throw new Error('no user');
      return user;
    },
    action: (r) => (r.routeOptions.config as { action?: string }).action ?? 'call',
    onError: (e) => errors.push(e),
    ...extra,
  });
  return { sink, errors, app };
}

/** Waits until the sink holds n events and nothing more arrives for a little while. */
async function settled(sink: MemorySink, n: number): Promise<QueuedEvent[]> {
  await client!.flush();
  await sink.until(n);
  await new Promise((r) => setTimeout(r, 30));
  await client!.flush();
  return sink.events;
}

describe('fastify meterRequests', () => {
  it('records one event from the option functions and an allow-list of primitives, never headers', async () => {
    const { sink } = setup({ units: (_req, reply) => Number(reply.getHeader('x-items') ?? 0) });
    app!.post('/recall/:id', { config: { action: 'recall' } }, async (_req, reply) => {
      reply.header('x-items', '3');
      return { items: [1, 2, 3] };
    });
    const before = Date.now();
    const res = await app!.inject({
      method: 'POST',
      url: '/recall/raw-path-id-77?token=sk-live-123',
      payload: { q: 'x' },
      headers: { 'x-user': 'user-7', 'x-request-id': 'req-abc', authorization: 'Bearer top-secret-value', cookie: 'session=hunter2' },
    });
    expect(res.statusCode).toBe(200);
    const [e, ...rest] = await settled(sink, 1);
    expect(rest).toEqual([]);
    expect(e).toMatchObject({ request_id: 'req-abc', namespace: 'acme/prod', caller: 'user-7', action: 'recall', units: 3 });
    // When the request started, as wall-clock ms.
    expect(e!.ts).toBeGreaterThanOrEqual(before - 1);
    expect(e!.ts).toBeLessThanOrEqual(before + Number(e!.metadata!.duration_ms) + 50);
    expect(Object.keys(e!.metadata!).sort()).toEqual(['bytes_in', 'bytes_out', 'duration_ms', 'method', 'route', 'status']);
    expect(e!.metadata).toMatchObject({ method: 'POST', route: '/recall/:id', status: 200, bytes_in: 9, bytes_out: res.rawPayload.length });
    for (const v of Object.values(e!.metadata!)) expect(['string', 'number', 'boolean']).toContain(typeof v);
    const text = JSON.stringify(e);
    // The raw path (its id) and the query never reach the event: only the route pattern does.
    for (const secret of ['top-secret-value', 'hunter2', 'sk-live-123', 'raw-path-id']) expect(text).not.toContain(secret);
  });

  it('app.register(meterRequests) meters routes outside its own scope, and bad options fail registration', async () => {
    const sink = createMemorySink();
    client = createUsageClient({ sink, ...fast });
    app = Fastify();
    await app.register(meterRequests, { client, namespace: 'acme/prod', caller: () => 'u', action: 'recall' });
    await app.register(async (child) => void child.get('/inner', async () => 'in'));
    app.get('/outer', async () => 'out');
    await app.inject({ url: '/inner', headers: { 'x-request-id': 'i' } });
    await app.inject({ url: '/outer', headers: { 'x-request-id': 'o' } });
    expect((await settled(sink, 2)).map((e) => e.request_id).sort()).toEqual(['i', 'o']);
    const bad = Fastify();
    await expect(bad.register(meterRequests, { client, namespace: 'acme/prod', action: 'a' } as never).ready()).rejects.toThrow(
      /caller must be a function/,
    );
  });

  it('adds no own property to the raw request or response (their V8 shape is the hot path of every request)', async () => {
    const shapes: string[][] = [];
    for (const metered of [false, true]) {
      const a = Fastify();
      if (metered)
        meterRequests(a, { client: createUsageClient({ sink: 'memory' }), namespace: 'acme/prod', caller: () => 'u', action: 'a' });
      a.get('/', async (request, reply) => {
        shapes.push([...Object.getOwnPropertyNames(request.raw), '|', ...Object.getOwnPropertyNames(reply.raw)]);
        return 'ok';
      });
      await a.listen({ port: 0, host: '127.0.0.1' });
      await (await fetch(`http://127.0.0.1:${(a.server.address() as { port: number }).port}/`)).text();
      await a.close();
    }
    expect(shapes[1]).toEqual(shapes[0]);
  });

  it('generates unique request ids without x-request-id, and refuses unusable incoming ids', async () => {
    const { sink } = setup();
    app!.get('/a', async () => 'ok');
    await app!.inject({ url: '/a', headers: { 'x-user': 'u' } });
    await app!.inject({ url: '/a', headers: { 'x-user': 'u', 'x-request-id': 'has space' } });
    await app!.inject({ url: '/a', headers: { 'x-user': 'u', 'x-request-id': 'x'.repeat(129) } });
    const events = await settled(sink, 3);
    expect(new Set(events.map((e) => e.request_id)).size).toBe(3);
    for (const e of events) expect(e.request_id).toMatch(/^[0-9a-f-]{36}-[0-9a-z]+$/);
  });

  it('records refused requests with units 0 and the reason, also when an earlier hook refused', async () => {
    const sink = createMemorySink();
    client = createUsageClient({ sink, ...fast });
    app = Fastify();
    // A rate limiter registered before the plugin: its refusal still reaches onResponse.
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers['x-limit']) return reply.code(429).send({ error: 'slow down' });
    });
    meterRequests(app, {
      client,
      namespace: 'acme/prod',
      caller: (r) => String(r.headers['x-user'] ?? ''),
      action: 'recall',
      units: () => 99,
    });
    app.get('/r', async (req, reply) => {
      if (!req.headers['x-user']) return reply.code(401).send({ error: 'who?' });
      if (req.headers['x-suspended']) return reply.code(403).send({ error: 'suspended' });
      return 'ok';
    });
    await app.inject({ url: '/r', headers: { 'x-user': 'u1', 'x-limit': '1', 'x-request-id': 'lim' } });
    await app.inject({ url: '/r', headers: { 'x-request-id': 'anon' } });
    await app.inject({ url: '/r', headers: { 'x-user': 'u2', 'x-suspended': '1', 'x-request-id': 'sus' } });
    await app.inject({ url: '/r', headers: { 'x-user': 'u3', 'x-request-id': 'ok' } });
    const events = await settled(sink, 4);
    const by = Object.fromEntries(events.map((e) => [e.request_id, e]));
    expect(by.lim).toMatchObject({ caller: 'u1', action: 'recall', units: 0, metadata: { status: 429, admission: 'rate_limited' } });
    expect(by.anon).toMatchObject({ caller: 'anonymous', units: 0, metadata: { status: 401, admission: 'unauthorized' } });
    expect(by.sus).toMatchObject({ caller: 'u2', units: 0, metadata: { status: 403, admission: 'forbidden' } });
    expect(by.ok).toMatchObject({ caller: 'u3', units: 99 });
    expect(by.ok!.metadata).not.toHaveProperty('admission');
    expect(events).toHaveLength(4);
  });

  it('a hook inherited from a parent scope that refuses first, and routes that do not exist: each recorded once', async () => {
    const sink = createMemorySink();
    client = createUsageClient({ sink, ...fast });
    app = Fastify();
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers['x-limit']) return reply.code(429).send({ error: 'slow down' });
    });
    await app.register(async (child) => {
      await child.register(meterRequests, { client: client!, namespace: 'acme/prod', caller: () => 'u', action: 'recall' });
      child.get('/in', async () => 'ok');
    });
    await app.inject({ url: '/in', headers: { 'x-request-id': 'limited', 'x-limit': '1' } });
    await app.inject({ url: '/in', headers: { 'x-request-id': 'fine' } });
    const by = Object.fromEntries((await settled(sink, 2)).map((e) => [e.request_id, e]));
    expect(by.limited).toMatchObject({ units: 0, metadata: { status: 429, admission: 'rate_limited' } });
    expect(by.fine).toMatchObject({ units: 1, metadata: { status: 200, route: '/in' } });
    expect(Object.keys(by)).toHaveLength(2);

    // Registered first on the root: a request for no route is recorded, without a route.
    await app.close();
    await client.close();
    const sink2 = createMemorySink();
    client = createUsageClient({ sink: sink2, ...fast });
    app = Fastify();
    meterRequests(app, { client, namespace: 'acme/prod', caller: () => 'u', action: 'recall' });
    app.get('/known', async () => 'ok');
    expect((await app.inject({ url: '/nowhere', headers: { 'x-request-id': 'lost' } })).statusCode).toBe(404);
    const [lost, ...more] = await settled(sink2, 1);
    expect(more).toEqual([]);
    expect(lost).toMatchObject({ request_id: 'lost', units: 0, metadata: { status: 404 } });
    expect(lost!.metadata).not.toHaveProperty('aborted');
  });

  it('an earlier hook streaming its refusal on a reused connection: no bytes of earlier answers are counted', async () => {
    const sink = createMemorySink();
    client = createUsageClient({ sink, ...fast });
    app = Fastify();
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers['x-limit'])
        return reply
          .code(429)
          .type('text/plain')
          .send(Readable.from([Buffer.from('slow down')]));
    });
    meterRequests(app, { client, namespace: 'acme/prod', caller: () => 'u', action: 'recall' });
    app.get('/r', async () => ({ big: 'x'.repeat(5000) }));
    const url = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const get = (headers: Record<string, string>) =>
      new Promise<void>((resolve, reject) => {
        httpRequest({ host: url.hostname, port: url.port, path: '/r', agent, headers }, (res) => res.resume().on('end', resolve))
          .on('error', reject)
          .end();
      });
    try {
      await get({ 'x-request-id': 'first' });
      await get({ 'x-request-id': 'refused', 'x-limit': '1' }); // same socket, chunked answer
    } finally {
      agent.destroy();
    }
    const by = Object.fromEntries((await settled(sink, 2)).map((e) => [e.request_id, e]));
    expect(by.first!.metadata!.bytes_out).toBeGreaterThan(5000);
    // The plugin never saw this answer start (an earlier hook gave it): its size is unknown, not
    // the socket's total so far.
    expect(by.refused).toMatchObject({ units: 0, metadata: { status: 429, admission: 'rate_limited', bytes_out: 0 } });
  });

  it('refusal reasons are configurable: own statuses, own classifier, own action', async () => {
    const { sink } = setup({
      refusedStatuses: { 429: 'rate_limited', 402: 'over_quota' },
      refusal: (req) => (req.headers['x-suspended'] ? 'suspended' : undefined),
      refusedAction: (action, reason) => `${action}.refused.${reason}`,
    });
    app!.get('/x', { config: { action: 'recall' } }, async (req, reply) =>
      reply.code(req.headers['x-code'] ? Number(req.headers['x-code']) : 200).send('x'),
    );
    await app!.inject({ url: '/x', headers: { 'x-user': 'u', 'x-code': '402', 'x-request-id': 'quota' } });
    await app!.inject({ url: '/x', headers: { 'x-user': 'u', 'x-suspended': '1', 'x-request-id': 'susp' } });
    await app!.inject({ url: '/x', headers: { 'x-user': 'u', 'x-code': '401', 'x-request-id': 'not-refused-here' } });
    const by = Object.fromEntries((await settled(sink, 3)).map((e) => [e.request_id, e]));
    expect(by.quota).toMatchObject({ action: 'recall.refused.over_quota', units: 0, metadata: { admission: 'over_quota' } });
    expect(by.susp).toMatchObject({ action: 'recall.refused.suspended', units: 0, metadata: { status: 200, admission: 'suspended' } });
    expect(by['not-refused-here']).toMatchObject({ action: 'recall', units: 0, metadata: { status: 401 } });
    expect(by['not-refused-here']!.metadata).not.toHaveProperty('admission');
  });

  it('a refusedAction that gives no usable action: the refusal is still recorded, under the action, and reported by name', async () => {
    const { sink, errors } = setup({
      refusedAction: (action, reason) => (reason === 'rate_limited' ? (undefined as unknown as string) : `${action} refused!`),
    });
    app!.get('/x', { config: { action: 'recall' } }, async (req, reply) => reply.code(Number(req.headers['x-code'])).send('x'));
    await app!.inject({ url: '/x', headers: { 'x-user': 'u', 'x-code': '429', 'x-request-id': 'r1' } });
    await app!.inject({ url: '/x', headers: { 'x-user': 'u', 'x-code': '403', 'x-request-id': 'r2' } });
    const events = await settled(sink, 2);
    expect(events.map((e) => [e.request_id, e.action, e.units])).toEqual([
      ['r1', 'recall', 0],
      ['r2', 'recall', 0],
    ]);
    expect(errors.map((e) => e.message)).toEqual([
      'meterRequests: refusedAction("recall", "rate_limited") gave undefined, not an action (the leaf rule for actions, src/event/validate.ts); recorded under "recall"',
      'meterRequests: refusedAction("recall", "forbidden") gave "recall refused!", not an action (the leaf rule for actions, src/event/validate.ts); recorded under "recall"',
    ]);
  });

  it('a fixed action that breaks the leaf rule is refused when the plugin is built, also with a refusedAction', () => {
    const bad = {
      client: createUsageClient({ sink: createMemorySink() }),
      namespace: 'acme/prod',
      caller: () => 'u',
      action: 'Bad Action!',
    };
    expect(() => meterRequests(Fastify(), bad)).toThrow(/action "Bad Action!" breaks the leaf rule for actions/);
    expect(() => meterRequests(Fastify(), { ...bad, refusedAction: (a: string) => a })).toThrow(
      /action "Bad Action!" breaks the leaf rule for actions/,
    );
  });

  it('one event for a handler that throws, none for skipped requests', async () => {
    const { sink } = setup({ skip: (r) => r.url === '/healthz' });
    app!.get('/boom', async () => {
      throw new Error('handler failed');
    });
    app!.get('/healthz', async () => 'ok');
    expect((await app!.inject({ url: '/boom', headers: { 'x-user': 'u', 'x-request-id': 'boom' } })).statusCode).toBe(500);
    await app!.inject({ url: '/healthz', headers: { 'x-user': 'u' } });
    const events = await settled(sink, 1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ request_id: 'boom', units: 0, metadata: { status: 500 } });
  });

  it('a streamed reply is recorded once, after its last byte, with the bytes sent', async () => {
    const { sink } = setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    app!.get('/stream', async (_req, reply) => {
      async function* chunks() {
        yield Buffer.alloc(1000, 'a');
        await gate;
        yield Buffer.alloc(500, 'b');
      }
      return reply.type('text/plain').send(Readable.from(chunks()));
    });
    const url = await app!.listen({ port: 0, host: '127.0.0.1' });
    const pending = fetch(`${url}/stream`, { headers: { 'x-user': 'u', 'x-request-id': 'st' } }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 50));
    await client!.flush();
    expect(sink.events).toHaveLength(0); // still streaming
    release();
    expect((await pending).length).toBe(1500);
    const events = await settled(sink, 1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ request_id: 'st', units: 1, metadata: { status: 200 } });
    // Streamed without Content-Length: the answer as written to the connection, status line,
    // headers and chunk framing included (Node's public API does not give the header block's size).
    expect(events[0]!.metadata!.bytes_out).toBeGreaterThanOrEqual(1500 + 100);
    expect(events[0]!.metadata!.bytes_out).toBeLessThan(1550 + 400);
    expect(events[0]!.metadata).not.toHaveProperty('aborted');
  });

  it('an aborted request is recorded once, marked aborted, with units 0 by default', async () => {
    const { sink } = setup();
    let finishHandler!: () => void;
    app!.get('/slow', async () => {
      await new Promise<void>((r) => (finishHandler = r));
      return 'late';
    });
    app!.get('/drip', async (_req, reply) => {
      async function* chunks() {
        yield 'first';
        await new Promise(() => {}); // never ends: only the client going away ends it
      }
      return reply.send(Readable.from(chunks()));
    });
    await app!.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app!.server.address() as { port: number };
    const abortAfter = (path: string, id: string) =>
      new Promise<void>((resolve) => {
        const req = httpRequest({ port, host: '127.0.0.1', path, headers: { 'x-user': 'u', 'x-request-id': id } }, (res) => {
          res.once('data', () => (req.destroy(), resolve()));
        });
        req.on('error', () => {});
        req.end();
      });
    const slow = httpRequest({ port, host: '127.0.0.1', path: '/slow', headers: { 'x-user': 'u', 'x-request-id': 'gone-early' } });
    slow.on('error', () => {});
    slow.end();
    await until(() => typeof finishHandler === 'function'); // the handler is running
    slow.destroy();
    await abortAfter('/drip', 'gone-mid-body');
    await sink.until(2);
    finishHandler(); // the handler ends after its client left: still one event
    const events = await settled(sink, 2);
    await new Promise((r) => setTimeout(r, 50));
    await client!.flush();
    const by = Object.fromEntries(events.map((e) => [e.request_id, e]));
    expect(events).toHaveLength(2);
    expect(by['gone-early']).toMatchObject({ units: 0, metadata: { aborted: true, status: 499 } });
    expect(by['gone-mid-body']).toMatchObject({ units: 0, metadata: { aborted: true, status: 200 } });
    expect(by['gone-mid-body']!.metadata!.bytes_out).toBeGreaterThan(0);
  });

  it("on Node's own server: keep-alive, pipelined and closing requests are each recorded once, with their own status and size", async () => {
    const { sink } = setup();
    app!.get('/a/:n', async (req) => ({ n: (req.params as { n: string }).n }));
    app!.get('/s', async (_req, reply) => reply.type('text/plain').send(Readable.from([Buffer.alloc(700, 'a'), Buffer.alloc(300, 'b')])));
    app!.post('/in', async () => ({ ok: true }));
    app!.get('/none', async (_req, reply) => reply.code(204).send());
    await app!.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app!.server.address() as { port: number };
    const get = (path: string, id: string, close = false) =>
      `GET ${path} HTTP/1.1\r\nHost: x\r\nx-user: u\r\nx-request-id: ${id}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    /** Writes requests on one connection (all in one packet: pipelined) and reads until the server closes it. */
    const exchange = (...requests: string[]) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(requests.join('')));
        let text = '';
        socket
          .setEncoding('latin1')
          .on('data', (d) => (text += d))
          .on('end', () => resolve(text))
          .on('error', reject);
      });
    // Sequential requests on one kept-alive connection, then pipelined ones: the last one closes it.
    const first = await exchange(get('/a/1', 'k1', true));
    const answers = await exchange(get('/a/2', 'p1'), get('/nowhere', 'p2'), get('/s', 'p3'), get('/a/3', 'p4', true));
    expect(answers.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 404', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    const events = await settled(sink, 5);
    expect(events.map((e) => e.request_id).sort()).toEqual(['k1', 'p1', 'p2', 'p3', 'p4']);
    const by = Object.fromEntries(events.map((e) => [e.request_id, e]));
    const bodyOf = (text: string, n: number) => text.split(/HTTP\/1\.1 /)[n + 1]!.split('\r\n\r\n')[1]!;
    expect(by.k1!.metadata).toMatchObject({ route: '/a/:n', status: 200, bytes_out: bodyOf(first, 0).length });
    expect(by.p1!.metadata).toMatchObject({ route: '/a/:n', status: 200, bytes_out: '{"n":"2"}'.length });
    expect(by.p2).toMatchObject({ units: 0, metadata: { status: 404 } });
    // Streamed: the whole answer as written (status line and headers, then 1,000 bytes of body in
    // chunk framing: two chunks and the last, empty one).
    const p3 = `HTTP/1.1 ${answers.split(/HTTP\/1\.1 /)[3]!}`;
    expect(p3.endsWith(`2bc\r\n${'a'.repeat(700)}\r\n12c\r\n${'b'.repeat(300)}\r\n0\r\n\r\n`)).toBe(true);
    expect(by.p3!.metadata).toMatchObject({ status: 200, bytes_out: p3.length });
    expect(by.p4!.metadata).toMatchObject({ status: 200, bytes_out: '{"n":"3"}'.length });
    for (const e of events) expect(e.metadata).not.toHaveProperty('aborted');

    // A streamed answer after a 100 Continue, a HEAD and a 204 on the same connection counts its own bytes only.
    const post =
      'POST /in HTTP/1.1\r\nHost: x\r\nx-user: u\r\nx-request-id: c1\r\nExpect: 100-continue\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}';
    const more = await exchange(get('/none', 'c3'), post, get('/a/4', 'c2').replace('GET', 'HEAD'), get('/s', 'c4', true));
    expect(more.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 204', 'HTTP/1.1 100', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    const later = Object.fromEntries((await settled(sink, 9)).map((e) => [e.request_id, e]));
    expect(later.c1!.metadata).toMatchObject({ status: 200, bytes_in: 2, bytes_out: '{"ok":true}'.length });
    expect(later.c3!.metadata).toMatchObject({ status: 204, bytes_out: 0 });
    // Its own answer only (this one says Connection: close, so its headers differ from p3's).
    expect(later.c4!.metadata).toMatchObject({ status: 200, bytes_out: `HTTP/1.1 ${more.split(/HTTP\/1\.1 /)[5]!}`.length });
  });

  it('answers never wait for the sink: a sink that hangs or throws changes nothing', async () => {
    const sink = createMemorySink();
    sink.answer = () => new Promise(() => {}); // a service that never answers
    setup({}, sink);
    app!.get('/a', async () => 'ok');
    const t = performance.now();
    for (let i = 0; i < 50; i++) expect((await app!.inject({ url: '/a', headers: { 'x-user': 'u' } })).statusCode).toBe(200);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(client!.stats().queued + client!.stats().inFlight).toBe(50);
    (client as unknown as { head: number; queue: unknown[]; inFlight: number }).head = 50; // nothing left to close on
    (client as unknown as { inFlight: number }).inFlight = 0;
    client = undefined;
  });

  it('answers never fail because of metering: throwing option functions and a throwing record', async () => {
    const errors: Error[] = [];
    const broken = {
      record: () => {
        throw new Error('client broke');
      },
      flush: async () => {},
      close: async () => {},
      stats: () => ({}),
    } as unknown as UsageClient;
    app = Fastify();
    meterRequests(app, {
      client: broken,
      namespace: () => {
        throw new Error('ns broke');
      },
      caller: () => 'u',
      action: 'a',
      onError: (e) => errors.push(e),
    });
    app.get('/a', async () => 'ok');
    expect((await app.inject({ url: '/a' })).statusCode).toBe(200);
    expect(errors[0]!.message).toMatch(/namespace\(request\) threw \(ns broke\); the request was not metered/);
  });

  it('service answering 500 first, then OK: every event lands once, with the request ids it was recorded with', async () => {
    server = await testServer();
    let failures = 3;
    server.app.addHook('onRequest', async (req, reply) => {
      if (req.url === '/v1/events' && failures-- > 0) return reply.code(500).send({ error: { code: 'boom', message: 'down' } });
    });
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = server.app.server.address() as { port: number };
    app = Fastify();
    meterRequests(app, {
      url: `http://127.0.0.1:${port}`,
      apiKey: server.key,
      clientOptions: fast,
      namespace: 'acme/mw',
      caller: () => 'u',
      action: 'recall',
    });
    app.get('/a', async () => 'ok');
    const ids = Array.from({ length: 20 }, (_, i) => `stable-${i}`);
    for (const id of ids) expect((await app.inject({ url: '/a', headers: { 'x-request-id': id } })).statusCode).toBe(200);
    const rows = () =>
      server!.db().prepare("SELECT request_id, units FROM events WHERE namespace = 'acme/mw' ORDER BY request_id").all() as Array<{
        request_id: string;
      }>;
    await until(() => rows().length === 20);
    await app.close(); // closes the client it built: flushes
    app = undefined;
    expect(
      rows()
        .map((r) => r.request_id)
        .sort(),
    ).toEqual([...ids].sort());
    expect(failures).toBeLessThan(0);
  });

  it('upstream calls made while serving are attributed to the request, without changing the handler', async () => {
    const { sink } = setup();
    const calls: string[] = [];
    const fakeFetch = (async (input: string | URL | Request) => {
      calls.push(String(input));
      return new Response('{}', { status: 200, headers: { 'x-tokens': '120' } });
    }) as typeof fetch;
    const openai = meteredFetch({ provider: 'openai', fetch: fakeFetch, units: (r) => Number(r.headers.get('x-tokens')) });
    app!.get('/ask', { config: { action: 'ask' } }, async () => {
      await new Promise((r) => setTimeout(r, 1));
      await openai('https://api.openai.example/v1/chat?key=sk-should-not-appear');
      await openai('https://api.openai.example/v1/chat');
      return 'ok';
    });
    await app!.inject({ url: '/ask', headers: { 'x-user': 'user-9', 'x-request-id': 'in-1' } });
    await openai('https://api.openai.example/outside'); // outside a request: passes through, not metered
    const events = await settled(sink, 3);
    expect(calls).toHaveLength(3);
    expect(events.map((e) => [e.request_id, e.action, e.caller, e.units])).toEqual([
      ['in-1.openai.1', 'upstream.openai', 'user-9', 120],
      ['in-1.openai.2', 'upstream.openai', 'user-9', 120],
      ['in-1', 'ask', 'user-9', 1],
    ]);
    expect(events[0]!.metadata).toMatchObject({
      upstream: 'openai',
      inbound_request_id: 'in-1',
      host: 'api.openai.example',
      method: 'GET',
      status: 200,
    });
    expect(JSON.stringify(events)).not.toContain('sk-should-not-appear');
  });

  it('a skipped request is not metered, and neither are its upstream calls', async () => {
    // Truthy, not only true: skip(request) as record() takes it.
    const { sink, errors } = setup({ skip: (r) => r.url.match(/^\/healthz/) as unknown as boolean });
    const probe = meteredFetch({ provider: 'db', fetch: (async () => new Response('{}')) as typeof fetch });
    app!.get('/healthz', async () => (await probe('https://db.example/ping'), 'ok'));
    app!.get('/work', async () => (await probe('https://db.example/q'), 'ok'));
    await app!.inject({ url: '/healthz', headers: { 'x-user': 'u' } });
    await app!.inject({ url: '/work', headers: { 'x-user': 'u', 'x-request-id': 'w1' } });
    const events = await settled(sink, 2);
    expect(events.map((e) => e.request_id).sort()).toEqual(['w1', 'w1.db.1']);
    expect(errors).toEqual([]);
  });

  it('an upstream call of a request with a long id still gets the same id when the request is repeated', async () => {
    const { sink } = setup();
    const openai = meteredFetch({ provider: 'openai', fetch: (async () => new Response('{}')) as typeof fetch });
    app!.get('/ask', async () => (await openai('https://api.openai.example/v1'), 'ok'));
    const long = `in-${'x'.repeat(120)}`; // a usable inbound id; with ".openai.1" past 128 characters
    for (let i = 0; i < 2; i++) await app!.inject({ url: '/ask', headers: { 'x-user': 'u', 'x-request-id': long } });
    const other = `in-${'y'.repeat(120)}`;
    await app!.inject({ url: '/ask', headers: { 'x-user': 'u', 'x-request-id': other } });
    // The memory sink keeps one event per request id, as the service does: the repeated request
    // and its call come again under the same ids (at another time: conflicts, refused), so two
    // requests and two calls.
    const events = await settled(sink, 4);
    expect(events).toHaveLength(4);
    expect(client!.stats()).toMatchObject({ sent: 4, rejected: 2 });
    const upstream = events.filter((e) => e.action === 'upstream.openai').map((e) => e.request_id);
    expect(upstream).toHaveLength(2);
    for (const id of upstream) expect(id).toMatch(/^upstream-[0-9a-f]{48}$/);
    expect(upstream[1]).not.toBe(upstream[0]);
  });
});
