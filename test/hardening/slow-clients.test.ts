// Slow and stalled uploads are cut off and their memory comes back, while a well-behaved client
// keeps being served. Real sockets on a real port, with the deadlines shortened for the test.
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { event, testServer, type TestServer } from '../helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const memory = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const LIMITS = {
  headersTimeoutMs: 1_000,
  requestTimeoutMs: 2_500,
  idleTimeoutMs: 2_000,
  checkIntervalMs: 100,
  maxBodyBytesInFlight: 40 * 2 ** 20,
  maxBodyBytesInFlightPerKey: 10 * 2 ** 20,
};
let s: TestServer;
let port: number;
let goodKey: string;

beforeAll(async () => {
  s = await testServer({ limits: LIMITS });
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  port = (s.app.server.address() as { port: number }).port;
  goodKey = (await await s.ledger.keys.create('good-inc', ['acme/*'])).key;
});
afterAll(async () => {
  await s.close();
});

/** Opens a socket, writes `head`, and reports what came back and when the server closed it. */
function attacker(head: string): { socket: Socket; closed: Promise<{ answer: string; at: number }> } {
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => (answer += d));
  socket.on('error', () => {});
  socket.write(head);
  const closed = new Promise<{ answer: string; at: number }>((resolve) => socket.on('close', () => resolve({ answer, at: Date.now() })));
  return { socket, closed };
}

describe('slow clients', () => {
  it('closes stalled headers, stalled bodies and anonymous uploads, refuses bodies over the cap, and keeps serving others', async () => {
    const before = memory();
    const start = Date.now();
    const chunk = `{"events":[${JSON.stringify(event())},${`"${'x'.repeat(900_000)}`}`;
    // One tenant's key: 30 uploads that send 900 KB of a 1 MB body, then stall.
    const stalledBodies = Array.from({ length: 30 }, () =>
      attacker(
        `POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${s.key}\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n${chunk}`,
      ),
    );
    // Slowloris: headers that never end.
    const stalledHeaders = Array.from({ length: 50 }, () => attacker('GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: '));
    // Anonymous uploads: refused from their headers, never read.
    const anonymous = Array.from({ length: 200 }, () =>
      attacker(
        `POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n${chunk.slice(0, 1000)}`,
      ),
    );

    // Meanwhile, a well-behaved client with its own key posts and reads, and is answered quickly.
    const slowest: number[] = [];
    let served = 0;
    while (Date.now() - start < 3_000 || served < 10) {
      const t = Date.now();
      const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${goodKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(event()),
      });
      expect(res.status).toBe(200);
      expect((await res.json()).results[0].status).toBe('created');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      slowest.push(Date.now() - t);
      served++;
      await new Promise((r) => setTimeout(r, 20));
    }
    // The first answers wait while the attack's megabytes are read in; after that, the usual pace.
    slowest.sort((a, b) => a - b);
    expect(slowest[Math.floor(slowest.length / 2)], JSON.stringify(slowest)).toBeLessThan(250);

    const bodies = await Promise.all(stalledBodies.map((a) => a.closed));
    const headers = await Promise.all(stalledHeaders.map((a) => a.closed));
    const anon = await Promise.all(anonymous.map((a) => a.closed));
    // Every attacker was closed by the server, within the deadlines (plus the check interval and slack).
    const deadline = start + LIMITS.requestTimeoutMs + 2_000;
    for (const c of [...bodies, ...headers, ...anon]) expect(c.at).toBeLessThan(deadline);
    // Only the tenant's budget of uploads (10 of 1 MB in 10 MiB) was taken in; the rest were refused with 503.
    const refused = bodies.filter((b) => b.answer.startsWith('HTTP/1.1 503'));
    expect(refused.length).toBe(20);
    expect(refused[0]!.answer.toLowerCase()).toContain('retry-after: 1');
    expect(anon.every((a) => a.answer.startsWith('HTTP/1.1 401'))).toBe(true);
    // Nothing of the stalled uploads was stored, and the slots came back.
    expect(s.db().prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: served });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/receipts_http_body_bytes_in_flight 0\b/);
    // The memory the uploads took is returned.
    expect(memory() - before).toBeLessThan(16 * 1024 * 1024);
    // And the tenant whose uploads stalled is served again once they are gone.
    expect((await s.post(event())).statusCode).toBe(200);
  });
});
