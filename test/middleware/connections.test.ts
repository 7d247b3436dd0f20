// The fastify plugin on real sockets: connections closed by the server, responses destroyed by the
// app, clients that leave while earlier hooks run, and inject beside real requests.
import Fastify, { type FastifyInstance } from 'fastify';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type MemorySink, type UsageClient } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/fastify.ts';

let app: FastifyInstance | undefined;
let client: UsageClient | undefined;
let sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets = [];
  await app?.close();
  await client?.close();
  app = client = undefined;
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const get = (path: string, id: string, more = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\nx-request-id: ${id}\r\n${more}\r\n`;

async function setup(sink: MemorySink, before?: (app: FastifyInstance) => void) {
  client = createUsageClient({ sink, flushIntervalMs: 5 });
  app = Fastify({ forceCloseConnections: false });
  before?.(app);
  meterRequests(app, { client, namespace: 'acme/prod', caller: () => 'u', action: 'a' });
  app.get('/ok', async () => 'ok');
  app.get('/hang', (_req, reply) => void reply.raw.write('partial'));
  app.get('/destroy', (_req, reply) => void setTimeout(() => reply.raw.destroy(), 20));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as { port: number }).port;
}
async function open(port: number) {
  const s = connect(port, '127.0.0.1');
  sockets.push(s);
  s.on('data', () => {});
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
}

describe('fastify meterRequests on real connections', () => {
  it('closeAllConnections with answers in flight: each recorded once, aborted', async () => {
    const sink = createMemorySink();
    const port = await setup(sink);
    const s = await open(port);
    s.write(get('/ok', 'w1'));
    await sleep(50);
    s.write(get('/hang', 'h1'));
    const s2 = await open(port);
    s2.write(get('/hang', 'h2'));
    await sleep(50);
    app!.server.closeAllConnections();
    await sink.until(3);
    await sleep(50);
    await client!.flush();
    const by = Object.fromEntries(sink.events.map((e) => [e.request_id, e]));
    expect(sink.events).toHaveLength(3);
    expect(by.h1!.metadata).toMatchObject({ aborted: true, status: 200 });
    expect(by.h2!.metadata).toMatchObject({ aborted: true, status: 200 });
  });

  it('reply.raw.destroy() after a kept-alive request: recorded at once, aborted', async () => {
    const sink = createMemorySink();
    const s = await open(await setup(sink));
    s.write(get('/ok', 'w1'));
    await sleep(50);
    s.write(get('/destroy', 'd'));
    await sink.until(2);
    expect(sink.events.map((e) => e.request_id).sort()).toEqual(['d', 'w1']);
    expect(sink.events.find((e) => e.request_id === 'd')!.metadata).toMatchObject({ aborted: true, status: 499 });
  });

  it('an async onRequest hook before the meter; the client leaves while it runs: recorded, aborted', async () => {
    const sink = createMemorySink();
    const port = await setup(sink, (a) => a.addHook('onRequest', async () => void (await sleep(60))));
    const s = await open(port);
    s.write(get('/ok', 'w1'));
    await sleep(150);
    s.write(get('/ok', 'gone'));
    await sleep(20);
    s.destroy();
    await sink.until(2);
    expect(sink.events.map((e) => e.request_id).sort()).toEqual(['gone', 'w1']);
  });

  it('inject after real requests (channel in use): recorded at once', async () => {
    const sink = createMemorySink();
    const s = await open(await setup(sink));
    s.write(get('/ok', 'w1'));
    await sleep(50);
    const r = await app!.inject({ url: '/ok', headers: { 'x-request-id': 'inj' } });
    expect(r.statusCode).toBe(200);
    await sink.until(2);
    expect(sink.events.map((e) => e.request_id).sort()).toEqual(['inj', 'w1']);
  });
});
