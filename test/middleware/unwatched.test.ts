// An unwatched answer (middleware mounted before the meter) still being written when a
// pipelined, metered request starts on the same connection.
import express from 'express';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type UsageClient } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';

let server: Server | undefined;
let client: UsageClient | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await client?.close();
  server = client = undefined;
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('express: an answer of earlier middleware still being written', () => {
  it('pipelined streamed answer after an unwatched Content-Length answer still being written counts its own bytes', async () => {
    const sink = createMemorySink();
    client = createUsageClient({ sink, flushIntervalMs: 5 });
    const app = express();
    app.use('/public', (_req, res) => {
      res.setHeader('content-length', '2000');
      res.write('p'.repeat(1000));
      setTimeout(() => res.end('q'.repeat(1000)), 50);
    });
    app.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'a' }));
    app.get('/warm', (_req, res) => void res.send('ok'));
    app.get('/stream', (_req, res) => {
      res.write('a'.repeat(100));
      setTimeout(() => res.end('b'.repeat(50)), 10);
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server!.once('listening', r));
    const port = (server.address() as { port: number }).port;
    // Another connection first, so that the channel is in use.
    const w = connect(port, '127.0.0.1');
    w.on('data', () => {});
    await new Promise((r) => w.once('connect', r));
    w.write('GET /warm HTTP/1.1\r\nHost: x\r\nx-request-id: warm\r\n\r\n');
    await sleep(80);
    w.destroy();
    const s = connect(port, '127.0.0.1');
    let text = '';
    s.setEncoding('latin1').on('data', (d) => (text += d));
    await new Promise((r) => s.once('connect', r));
    s.write('GET /public/x HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(20); // the first answer is partly written
    s.write('GET /stream HTTP/1.1\r\nHost: x\r\nx-request-id: st\r\n\r\n');
    await sleep(200);
    const second = text.slice(text.lastIndexOf('HTTP/1.1 '));
    const wire = second.length - second.indexOf('\r\n\r\n') - 4;
    await sink.until(2);
    await client.flush();
    expect(sink.events.find((e) => e.request_id === 'st')!.metadata!.bytes_out).toBe(wire);
  });
});
