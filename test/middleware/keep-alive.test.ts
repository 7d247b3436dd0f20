// Express on kept-alive connections: two meters on one request, and a pipelined response the app
// destroys while it waits behind a slow one: each recorded when it ends, not when the connection closes.
import express from 'express';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';
import { expressApps } from './express-apps.ts';

const apps = expressApps();
let sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets = [];
});

async function open(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  sockets.push(s);
  s.on('data', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
}
const get = (path: string, id: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nx-request-id: ${id}\r\n\r\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('express meterRequests on kept-alive connections', () => {
  it('two meters on one app (app-wide and per router): both events of the 2nd request are recorded while the connection stays open', async () => {
    const sink = createMemorySink();
    const client = apps.client(sink);
    const app = express();
    app.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'all' }));
    const router = express.Router();
    router.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'api' }));
    router.get('/x', (_req, res) => void res.send('ok'));
    app.use('/api', router);
    const s = await open(await apps.listen(app));
    const noId = 'GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n'; // each meter makes its own request id
    s.write(noId);
    await sleep(100);
    s.write(noId);
    await sink.until(4);
    // The connection is still open here.
    expect(sink.events.map((e) => e.action).sort()).toEqual(['all', 'all', 'api', 'api']);
  });

  it('pipelined: the app destroys a response still queued behind a slow one; it is recorded when destroyed, not when the connection closes', async () => {
    const sink = createMemorySink();
    const client = apps.client(sink);
    const app = express();
    app.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'a' }));
    app.get('/warm', (_req, res) => void res.send('ok'));
    app.get('/slow', (_req, res) => void setTimeout(() => res.send('slow'), 150));
    app.get('/destroy', (_req, res) => void res.destroy());
    const s = await open(await apps.listen(app));
    s.write(get('/warm', 'w')); // Node has published one finished response: the channel is in use
    await sleep(100);
    s.write(get('/slow', 'slow') + get('/destroy', 'destroyed'));
    await sink.until(3);
    expect(sink.events.map((e) => e.request_id).sort()).toEqual(['destroyed', 'slow', 'w']);
  });
  it("two meters: the second meter's watches pile up on a kept-alive connection until it closes", async () => {
    const sink = createMemorySink();
    const client = apps.client(sink);
    const app = express();
    app.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'all' }));
    app.use(meterRequests({ client, namespace: 'acme/prod', caller: () => 'u', action: 'api' }));
    app.get('/x', (_req, res) => void res.send('ok'));
    const s = await open(await apps.listen(app));
    for (let i = 0; i < 20; i++) {
      s.write('GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(15);
    }
    await sink.until(40);
    const whileOpen = sink.events.filter((e) => e.action === 'api').length;
    s.destroy();
    await sleep(100);
    await client.flush();
    const afterClose = sink.events.filter((e) => e.action === 'api').length;
    expect({ whileOpen, afterClose }).toEqual({ whileOpen: 20, afterClose: 20 });
  });
});
