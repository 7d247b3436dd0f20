// bytes_out of a streamed answer over one kept-alive connection, against the bytes on the wire
// (the whole answer, status line and headers included: Node's public API does not give the size
// of the header block, src/middleware/node-http.ts bytesOut),
// after answers of other kinds (the connection counts where each answer starts, see node-http.ts).
import express from 'express';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createMemorySink } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';
import { expressApps } from './express-apps.ts';

const apps = expressApps();

/** Sends requests one after the other on one connection; returns each raw answer (bytes). */
async function sequential(port: number, requests: string[]): Promise<Buffer[]> {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const out: Buffer[] = [];
  for (const r of requests) {
    const parts: Buffer[] = [];
    const on = (d: Buffer) => parts.push(d);
    socket.on('data', on);
    socket.write(r);
    await new Promise((res) => setTimeout(res, 120));
    socket.off('data', on);
    out.push(Buffer.concat(parts));
  }
  socket.destroy();
  return out;
}
/** Bytes after the final (non-1xx) header block. */
function afterHeader(raw: Buffer): number {
  let s = raw.toString('latin1');
  for (;;) {
    const i = s.indexOf('\r\n\r\n');
    const head = s.slice(0, i);
    s = s.slice(i + 4);
    if (!/^HTTP\/1\.1 1\d\d/.test(head)) return Buffer.byteLength(s, 'latin1');
  }
}
const get = (path: string, id: string, method = 'GET') => `${method} ${path} HTTP/1.1\r\nHost: x\r\nx-request-id: ${id}\r\n\r\n`;

describe('express bytes_out of a streamed answer after another on the same connection', () => {
  async function run(first: (req: express.Request, res: express.Response) => void) {
    const sink = createMemorySink();
    const client = apps.client(sink);
    const app = express();
    app.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'a' }));
    app.get('/first', first);
    app.get('/stream', (_req, res) => {
      res.write('a'.repeat(100));
      setTimeout(() => res.end('b'.repeat(50)), 10);
    });
    const port = await apps.listen(app);
    const raw = await sequential(port, [get('/first', 'f'), get('/stream', 's')]);
    await sink.until(2);
    await client.flush();
    const by = Object.fromEntries(sink.events.map((e) => [e.request_id, e]));
    return { wire: raw[1]!.length, header: raw[1]!.length - afterHeader(raw[1]!), recorded: by.s!.metadata!.bytes_out };
  }

  it('control: plain answer first', async () => {
    const { wire, recorded } = await run((_req, res) => void res.send('hello'));
    expect(recorded).toBe(wire);
  });

  it('writeHead + end(buffer) first', async () => {
    const { wire, recorded } = await run((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(Buffer.from('hello'));
    });
    expect(recorded).toBe(wire);
  });

  it('a 304 with a body passed to end() first', async () => {
    const { wire, recorded } = await run((_req, res) => {
      res.statusCode = 304;
      res.end('ignored body');
    });
    expect(recorded).toBe(wire);
  });
});

// An unwatched answer (middleware mounted before the meter) still being written when a
// pipelined, metered request starts on the same connection.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('express: an answer of earlier middleware still being written', () => {
  it('pipelined streamed answer after an unwatched Content-Length answer still being written counts its own bytes', async () => {
    const sink = createMemorySink();
    const client = apps.client(sink);
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
    const port = await apps.listen(app);
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
    const wire = second.length; // latin1: one character per byte
    await sink.until(2);
    await client.flush();
    expect(sink.events.find((e) => e.request_id === 'st')!.metadata!.bytes_out).toBe(wire);
  });
});
