// fastify with http2: true (h2c): the per-response fallback, including streams the client resets.
import Fastify from 'fastify';
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from 'node:http2';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type UsageClient } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/fastify.ts';

let app: { close(): Promise<unknown> } | undefined;
let client: UsageClient | undefined;
afterEach(async () => {
  await app?.close();
  await client?.close();
  app = client = undefined;
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A request whose answer the client reads and ignores; close() it to reset the stream. */
function open(session: ClientHttp2Session, path: string, id: string): ClientHttp2Stream {
  const st = session.request({ ':path': path, 'x-request-id': id });
  st.on('data', () => {});
  st.on('error', () => {});
  st.end();
  return st;
}

describe('fastify meterRequests over HTTP/2 (per-response close listeners)', () => {
  it('ok, streamed, thrown and aborted requests on one session: one event each, right status and aborted flag', async () => {
    const sink = createMemorySink();
    client = createUsageClient({ sink, flushIntervalMs: 5 });
    const h2 = Fastify({ http2: true });
    app = h2;
    const errors: Error[] = [];
    meterRequests(h2, { client, namespace: 'acme/prod', caller: () => 'u', action: 'a', onError: (e) => errors.push(e) });
    h2.get('/ok', async () => ({ ok: true }));
    h2.get('/s', async (_req, reply) => reply.type('text/plain').send(Readable.from([Buffer.alloc(700, 'a'), Buffer.alloc(300, 'b')])));
    h2.get('/boom', async () => {
      throw new Error('x');
    });
    h2.get('/hang', (_req, reply) => void reply.raw.write('partial'));
    await h2.listen({ port: 0, host: '127.0.0.1' });
    const { port } = h2.server.address() as { port: number };
    const session = connect(`http://127.0.0.1:${port}`);
    const go = (path: string, id: string) =>
      new Promise<number>((resolve) => {
        const st = session.request({ ':path': path, 'x-request-id': id });
        let status = 0;
        st.on('response', (h) => (status = Number(h[':status'])));
        st.on('data', () => {});
        st.on('end', () => resolve(status));
        st.on('error', () => resolve(-1));
        st.end();
      });
    expect(await go('/ok', 'ok')).toBe(200);
    expect(await go('/s', 's')).toBe(200);
    expect(await go('/boom', 'boom')).toBe(500);
    const hang = open(session, '/hang', 'hang');
    await sleep(100);
    hang.close(); // RST_STREAM: the client gives up on this one, the session stays
    await sleep(100);
    open(session, '/hang', 'hang2');
    await sleep(100);
    session.destroy(); // the whole connection goes
    await sink.until(5);
    await sleep(50);
    await client.flush();
    const by = Object.fromEntries(sink.events.map((e) => [e.request_id, e]));
    expect(sink.events).toHaveLength(5);
    expect(by.ok!.metadata).toMatchObject({ status: 200, bytes_out: 11 });
    expect(by.ok!.metadata).not.toHaveProperty('aborted');
    expect(by.s!.metadata).toMatchObject({ status: 200 });
    expect(by.s!.metadata).not.toHaveProperty('aborted');
    expect(by.boom!.metadata).toMatchObject({ status: 500 });
    expect(by.hang!.metadata).toMatchObject({ status: 200, aborted: true });
    expect(by.hang2!.metadata).toMatchObject({ status: 200, aborted: true });
    expect(errors).toEqual([]);
  });
  it('with an onRequest hook before the plugin (its onResponse fallback), a stream the client resets is still aborted, units 0', async () => {
    const sink = createMemorySink();
    client = createUsageClient({ sink, flushIntervalMs: 5 });
    const h2 = Fastify({ http2: true });
    app = h2;
    h2.addHook('onRequest', async () => {}); // a rate limiter, say: registered first
    meterRequests(h2, { client, namespace: 'acme/prod', caller: () => 'u', action: 'a' });
    h2.get('/slow', async () => (await sleep(300), 'late'));
    await h2.listen({ port: 0, host: '127.0.0.1' });
    const { port } = h2.server.address() as { port: number };
    const session = connect(`http://127.0.0.1:${port}`);
    const st = open(session, '/slow', 'reset');
    await sleep(50);
    st.close(); // RST_STREAM before the answer
    await sink.until(1);
    await sleep(400); // past the handler's late answer
    await client.flush();
    session.destroy();
    expect(sink.events).toHaveLength(1);
    expect(sink.events[0]).toMatchObject({ request_id: 'reset', units: 0, metadata: { status: 499, aborted: true } });
  });
});
