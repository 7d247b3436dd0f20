// A runtime whose node:http never publishes http.server.response.finish (the fallback).
import express from 'express';
import { connect } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { createMemorySink } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';
import { expressApps } from './express-apps.ts';

vi.mock('node:diagnostics_channel', async (importOriginal) => ({ ...(await importOriginal<object>()), subscribe: () => {} }));

const apps = expressApps();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a runtime that never publishes http.server.response.finish', () => {
  it('a streamed answer aborted by the client as the 3rd request of a kept-alive connection counts only its own bytes', async () => {
    const sink = createMemorySink();
    const client = apps.client(sink);
    const app = express();
    app.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'a' }));
    app.get('/big', (_req, res) => void res.send('x'.repeat(5000)));
    app.get('/stream', (_req, res) => void res.write('a'.repeat(100))); // never ends
    const s = connect(await apps.listen(app), '127.0.0.1');
    let got = Buffer.alloc(0);
    s.on('data', (d) => (got = Buffer.concat([got, d])));
    await new Promise((r) => s.once('connect', r));
    for (const id of ['b1', 'b2']) {
      s.write(`GET /big HTTP/1.1\r\nHost: x\r\nx-request-id: ${id}\r\n\r\n`);
      await sleep(80);
    }
    const before = got.length;
    s.write('GET /stream HTTP/1.1\r\nHost: x\r\nx-request-id: st\r\n\r\n');
    await sleep(80);
    const streamed = got.subarray(before).toString('latin1');
    const wire = streamed.length; // the whole answer as written: headers, then '64\r\n' + 100 bytes + '\r\n'
    s.destroy();
    await sink.until(3);
    await client.flush();
    const st = sink.events.find((e) => e.request_id === 'st')!;
    expect(st.metadata).toMatchObject({ aborted: true, status: 200 });
    expect(st.metadata!.bytes_out).toBe(wire);
  });
});
