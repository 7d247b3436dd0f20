// Authentication belongs to the routes it protects: no spelling of a /v1 path reaches a handler
// without a key, and an anonymous body is refused before it is read.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { event, testServer, type TestServer } from '../helpers.ts';

let s: TestServer;
let port: number;
beforeAll(async () => {
  s = await testServer();
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  port = (s.app.server.address() as { port: number }).port;
  expect((await s.post(event())).statusCode).toBe(200);
});
afterAll(async () => {
  await s.close();
});

// Every route under /v1, as the router knows it, with the ways a client can spell its path.
const PROTECTED: Array<[method: 'GET' | 'POST', path: string]> = [
  ['POST', '/v1/events'],
  ['GET', '/v1/usage?namespace=acme/prod'],
  ['GET', '/v1/events/1/receipt'],
  ['GET', '/v1/epochs'],
  ['GET', '/v1/epochs/0'],
  ['GET', '/v1/epochs/0/chain'],
];
const spellings = (path: string) => [path, path.replace('/v1/', '/%761/'), path.replace('/v1/', '/%76%31/'), path.replace('/v1/', '/v%31/'), path.replace('/v1/', '/%2576%31/')];

describe('authentication by route', () => {
  it('answers 401 or 404 (never a handler) for every protected route, however its path is spelled', async () => {
    for (const [method, path] of PROTECTED) {
      for (const url of spellings(path)) {
        const res = await s.app.inject({ method, url, headers: { 'content-type': 'application/json' }, ...(method === 'POST' && { payload: JSON.stringify(event()) }) });
        expect([401, 404], `${method} ${url}: ${res.body}`).toContain(res.statusCode);
        if (res.statusCode === 404) expect(res.json().error.code).toBe('not_found');
      }
    }
    // The same spellings with a key do reach the handler: the router really decodes them.
    expect((await s.get('/%761/epochs')).statusCode).toBe(200);
    expect((await s.get('/%761/epochs', {})).statusCode).toBe(401);
  });

  it('leaves the routes outside /v1 open, and nothing else', async () => {
    expect((await s.get('/healthz', {})).statusCode).toBe(200);
    expect((await s.get('/metrics', {})).statusCode).toBe(200);
  });

  it('says what is wrong with the Authorization header', async () => {
    const say = async (authorization: string) => (await s.get('/v1/epochs', { authorization })).json().error.message as string;
    expect(await say(s.key)).toMatch(/no scheme.*Bearer/);
    expect(await say(`Basic ${s.key}`)).toMatch(/scheme must be Bearer, not Basic/);
    expect(await say('Bearer sr_nope_nope')).toMatch(/not valid or was revoked/);
    expect(await say(`Bearer ${s.key} extra`)).toMatch(/one API key/);
    expect((await s.get('/v1/epochs', { authorization: `bearer\t${s.key}` })).statusCode).toBe(200);
    // The key itself is never echoed back.
    expect(await say(`Basic ${s.key}`)).not.toContain(s.key.slice(10));
  });

  it('refuses an anonymous upload from its headers alone, without reading the body, and closes the connection', async () => {
    for (const path of ['/v1/events', '/%761/events', '/nowhere']) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let data = '';
        socket.setEncoding('utf8');
        socket.on('data', (d) => (data += d));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
        // Headers announce a megabyte; only 10 bytes ever come. An answer proves nobody waited for the rest.
        socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{"events":`);
        setTimeout(() => socket.destroy(), 5_000);
      });
      expect(answer, path).toMatch(/^HTTP\/1\.1 (401|404) /);
      expect(answer.toLowerCase(), path).toContain('connection: close');
    }
  });
});
