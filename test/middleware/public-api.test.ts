// The fastify plugin as fastify's own plugins are built (fastify-plugin, public hooks and
// properties only), and that nothing it cannot record is dropped without a word: problems go
// to the app's own logger by default, rate-limited.
import Fastify from 'fastify';
import { readdirSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import express from 'express';
import { describe, expect, it, vi } from 'vitest';
import { createMemorySink, createUsageClient } from '../../src/index.ts';
import { LOG_BURST } from '../../src/middleware/common.ts';
import { meterRequests as meterExpress } from '../../src/middleware/express.ts';
import { meterRequests } from '../../src/middleware/fastify.ts';
import { meteredFetch } from '../../src/middleware/upstream.ts';

/** A pino destination that keeps each log line's message. */
function logLines() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: { level: 'warn', stream } };
}

describe('fastify plugin on public API', () => {
  it('is a fastify-plugin plugin: app.hasPlugin() knows it, and it meters routes of its parent scope', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 5 });
    const app = Fastify();
    await app.register(meterRequests, { client, namespace: 'acme/prod', caller: () => 'u', action: 'a' });
    app.get('/x', async () => 'x');
    await app.ready();
    expect(app.hasPlugin('sui-receipts-meter')).toBe(true);
    await app.inject({ url: '/x', headers: { 'x-request-id': 'x1' } });
    await client.flush();
    await sink.until(1);
    expect(sink.events.map((e) => e.request_id)).toEqual(['x1']);
    await app.close();
    await client.close();
  });

  it('reads no private field of fastify, Node or Express', () => {
    const dir = new URL('../../src/middleware/', import.meta.url);
    const privates =
      /'fastify\.(hooks|context)'|getOwnPropertySymbols|\._router\b|_bytesDispatched|_pendingData|_httpMessage|\._header\b|_contentLength|chunkedEncoding|_hasBody|_sent100/;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const code = readFileSync(new URL(f, dir), 'utf8')
        .split('\n')
        .filter((l) => !/^\s*(\/\/|\*|\/\*\*)/.test(l))
        .join('\n');
      expect(code.match(privates)?.[0], f).toBeUndefined();
    }
  });
});

describe('nothing dropped silently', () => {
  it('a request whose caller(request) gives undefined is served, not metered, and logged through the app logger (rate-limited)', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 5 });
    const { lines, logger } = logLines();
    const app = Fastify({ logger });
    // The README's caller: the header, as a new user writes it.
    await app.register(meterRequests, {
      client,
      namespace: 'acme/prod',
      caller: (request) => request.headers['x-user-id'] as string,
      action: 'recall',
    });
    app.get('/recall', async () => ({ items: [1] }));
    for (let i = 0; i < LOG_BURST + 20; i++)
      expect((await app.inject({ url: '/recall', headers: { 'x-request-id': `n${i}` } })).statusCode).toBe(200);
    await app.inject({ url: '/recall', headers: { 'x-user-id': 'user-7', 'x-request-id': 'ok' } });
    await client.flush();
    await sink.until(1);
    expect(sink.events.map((e) => e.request_id)).toEqual(['ok']);
    const told = lines.filter((l) => /caller\(request\) gave undefined/.test(l.msg));
    expect(told.length).toBe(LOG_BURST); // one line a request up to the burst, then counted
    expect(told[0]!.level).toBeGreaterThanOrEqual(50); // error
    expect(told[0]!.msg).toMatch(/the request was not metered/);
    await app.close();
    await client.close();
  });

  it('registeredFirst: an answer given by an earlier hook is reported, not silently missing', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 5 });
    const errors: Error[] = [];
    const app = Fastify();
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers['x-limit']) return reply.code(429).send({ error: 'slow down' });
    });
    await app.register(meterRequests, {
      client,
      namespace: 'acme/prod',
      caller: () => 'u',
      action: 'a',
      registeredFirst: true,
      onError: (e) => errors.push(e),
    });
    app.get('/r', async () => 'ok');
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    expect((await fetch(`${url}/r`, { headers: { 'x-limit': '1' } })).status).toBe(429);
    expect((await fetch(`${url}/r`, { headers: { 'x-request-id': 'fine' } })).status).toBe(200);
    await client.flush();
    await sink.until(1);
    expect(sink.events.map((e) => e.request_id)).toEqual(['fine']);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/answered 429 before the plugin's onRequest hook ran was not metered/),
    ]);
    await app.close();
    await client.close();
  });
});

describe('nothing dropped silently, without a logger of the app', () => {
  it('Express: a caller function that throws is logged with console.error by default; the request is served', async () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const sink = createMemorySink();
      const client = createUsageClient({ sink, flushIntervalMs: 5 });
      const app = express();
      app.use(
        meterExpress({
          client,
          namespace: 'acme/prod',
          caller: () => {
            throw new Error('no session');
          },
          action: 'a',
        }),
      );
      app.get('/x', (_req, res) => void res.send('ok'));
      const server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const { port } = server.address() as { port: number };
      expect((await fetch(`http://127.0.0.1:${port}/x`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      server.close();
      await client.close();
      expect(sink.events).toEqual([]);
      expect(spy.mock.calls.map((c) => String(c[0]))).toEqual([
        expect.stringMatching(/caller\(request\) threw \(no session\); the request was not metered/),
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  it('meteredFetch: a call outside any identity is logged by default', async () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const sink = createMemorySink();
      const client = createUsageClient({ sink, flushIntervalMs: 5 });
      const fetchStub = (async () => new Response('up')) as unknown as typeof fetch;
      const upstream = meteredFetch({ provider: 'p', fetch: fetchStub });
      const app = Fastify();
      meterRequests(app, { client, namespace: 'acme/prod', caller: (r) => r.headers['x-user'] as string, action: 'a', onError: () => {} });
      app.get('/x', async () => (await upstream('https://up.example/')).text());
      await app.inject({ url: '/x' }); // no x-user: neither the request nor its call can be metered
      await app.close();
      await client.close();
      expect(spy.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringMatching(/meteredFetch\(p\).*the call was not metered/)]);
    } finally {
      spy.mockRestore();
    }
  });
});
