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
const spellings = (path: string) => [
  path,
  path.replace('/v1/', '/%761/'),
  path.replace('/v1/', '/%76%31/'),
  path.replace('/v1/', '/v%31/'),
  path.replace('/v1/', '/%2576%31/'),
];

describe('authentication by route', () => {
  it('answers 401 or 404 (never a handler) for every protected route, however its path is spelled', async () => {
    for (const [method, path] of PROTECTED) {
      for (const url of spellings(path)) {
        const res = await s.app.inject({
          method,
          url,
          headers: { 'content-type': 'application/json' },
          ...(method === 'POST' && { payload: JSON.stringify(event()) }),
        });
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
    expect(await say('Bearer sr_nope_nope')).toMatch(/not an API key: a key is sr_/);
    expect(await say(`Bearer sr_${'a'.repeat(12)}_${'b'.repeat(43)}`)).toMatch(/not valid or was revoked/);
    expect(await say(`Bearer ${s.key} extra`)).toMatch(/one API key and nothing after it, but a space U\+0020 follows the key/);
    expect(await say('Bearer')).toMatch(/scheme Bearer but no key/);
    // The key itself is never echoed back, whatever is wrong around it.
    for (const h of [`Basic ${s.key}`, `${s.key} x`, `Bearer ${s.key}\u00a0`, `Bearer\t${s.key}`, `Bearer ${s.key.slice(0, -1)}`]) {
      expect(await say(h), h).not.toContain(s.key.slice(10, 20));
    }
  });

  // RFC 9110 §11.1: the auth-scheme is case-insensitive. RFC 6750 §2.1: "Bearer" 1*SP b64token,
  // here the key exactly as issued. Through a real socket, so each byte is what a client sends.
  it('takes exactly Bearer (any case), spaces, the key: nothing else, not even a trailing no-break space', async () => {
    const raw = async (value: Buffer) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let data = '';
        socket.setEncoding('latin1');
        socket.on('data', (d) => (data += d));
        socket.on('end', () => resolve({ status: Number(data.slice(9, 12)), body: data.slice(data.indexOf('\r\n\r\n') + 4) }));
        socket.on('error', reject);
        socket.write(
          Buffer.concat([
            Buffer.from('GET /v1/epochs HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: '),
            value,
            Buffer.from('\r\n\r\n'),
          ]),
        );
      });
    const latin1 = (v: string) => Buffer.from(v, 'latin1');
    for (const ok of [`Bearer ${s.key}`, `bearer ${s.key}`, `BEARER ${s.key}`, `Bearer   ${s.key}`]) {
      expect((await raw(latin1(ok))).status, ok).toBe(200);
    }
    const refused: Array<[string, RegExp]> = [
      [`Bearer ${s.key}\u00a0`, /nothing after it, but a no-break space U\+00A0 follows the key/],
      [`Bearer\u00a0${s.key}`, /separated by a space \(U\+0020\), not a no-break space U\+00A0/],
      [`Bearer\t${s.key}`, /separated by a space \(U\+0020\), not a tab U\+0009/],
      [`Bearer ${s.key}\u0085`, /U\+0085 follows the key/],
      [`Bearer ${s.key}x`, /the character U\+0078 follows the key/],
      [`Bearer ${s.key} ${s.key}`, /one API key and nothing after it/],
      [`Bearer ${s.key.toUpperCase()}`, /not an API key/],
      [`Bearer "${s.key}"`, /not an API key/],
    ];
    for (const [value, message] of refused) {
      const res = await raw(latin1(value));
      expect(res.status, JSON.stringify(value)).toBe(401);
      expect(JSON.parse(res.body).error).toMatchObject({ code: 'unauthorized', message: expect.stringMatching(message) });
    }
    // Spaces and tabs around the whole value are not part of it (RFC 9110 §5.5): the HTTP parser
    // drops them before the service sees the value, so these are the exact form.
    expect((await raw(latin1(`Bearer ${s.key} \t`))).status).toBe(200);
    // A value that still carries them (fastify inject hands it over untouched) is refused.
    expect((await s.get('/v1/epochs', { authorization: `Bearer ${s.key} ` })).statusCode).toBe(401);
    expect((await s.get('/v1/epochs', { authorization: ` Bearer ${s.key}` })).json().error.message).toMatch(
      /must start with the scheme Bearer, not a space/,
    );
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
