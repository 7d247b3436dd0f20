// A bounded, seeded fuzz of POST /v1/events on a real port: malformed, oversized, deeply nested
// and ill-encoded input mixed with valid events. Asserts no 5xx, every valid event stored exactly
// once, nothing stored from rejected input, and /healthz answering within 100 ms throughout.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { event, testServer, type TestServer } from '../helpers.ts';
import { mulberry32 as prng } from '../support/random.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 3000);

const rand = prng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const int = (n: number) => Math.floor(rand() * n);

/** Deep nesting is spliced into the body text: the test's own JSON.stringify would overflow its stack. */
const DEEP = '__deep__:';
const json = (v: unknown) =>
  JSON.stringify(v).replace(/"__deep__:(\d+)"/g, (_m, n: string) => `${'['.repeat(Number(n))}1${']'.repeat(Number(n))}`);

let serial = 0;
const id = (kind: string) => `fz-${kind}-${SEED}-${++serial}`;

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = rand() < 0.5 ? [v] : { k: v };
  return v;
}

/** A valid event: stored (or a duplicate of one stored). */
function validEvent(): Record<string, unknown> {
  const e: Record<string, unknown> = event({
    request_id: id('ok'),
    namespace: pick(['acme/fuzz', 'acme/fuzz-2']),
    units: int(1000),
    caller: `user-${int(50)}`,
  });
  if (rand() < 0.3) e.metadata = { route: '/x', depth: nested(int(10)), prompt_tokens: int(100), note: 'é☃😀'.repeat(int(5)) };
  if (rand() < 0.2) e.source = `svc-${int(10)}`;
  return e;
}

/** An event that breaks one rule: rejected, never stored. */
function invalidEvent(): Record<string, unknown> {
  const e: Record<string, unknown> = event({ request_id: id('bad'), namespace: 'acme/fuzz' });
  const breakers: Array<() => void> = [
    () => (e.units = -1),
    () => (e.units = 1.5),
    () => (e.units = '3'),
    () => (e.units = 2 ** 53),
    () => (e.namespace = 'acme/*'),
    () => (e.namespace = 'Acme'),
    () => (e.action = 'Recall'),
    () => (e.caller = `x%20sr_abcdefgh_${'A'.repeat(30)}`),
    () => (e.caller = 'Bearer abcdefghijklmnop'),
    () => (e.caller = ''),
    () => (e.source = 'bad\ud800'),
    () => (e.caller = 'lone\udc00'),
    () => (e.artifact_digest = 'zz'),
    () => (e.ts = Date.now() + 86_400_000),
    () => (e.ts = 'yesterday'),
    () => (e.metadata = { deep: `${DEEP}${50 + int(5000)}` }),
    () => (e.metadata = { bait: 'eyJa-'.repeat(2_000 + int(40_000)) }),
    () => (e.metadata = { big: 'x'.repeat(5_000) }),
    () => (e.metadata = [1, 2]),
    () => delete e.action,
  ];
  pick(breakers)();
  return e;
}

type Case = { body: string | Buffer; type: string; valid: string[]; invalid: string[]; wholeRefused: boolean };

function makeCase(): Case {
  const roll = rand();
  if (roll < 0.55) {
    // A batch mixing valid and invalid events (and retries of valid ones).
    const events = Array.from({ length: 1 + int(20) }, () => (rand() < 0.6 ? validEvent() : invalidEvent()));
    const valid = events.filter((e) => String(e.request_id).startsWith('fz-ok')).map((e) => String(e.request_id));
    const invalid = events.filter((e) => String(e.request_id).startsWith('fz-bad')).map((e) => String(e.request_id));
    const body = events.length === 1 && rand() < 0.5 ? json(events[0]) : json({ events });
    return { body, type: 'application/json', valid, invalid, wholeRefused: false };
  }
  // Whole requests that must be refused: nothing in them is stored.
  const bad = invalidEvent();
  const good = validEvent();
  const ids = [String(good.request_id), String(bad.request_id)];
  const whole: Array<() => Case> = [
    () => ({
      body: json({ events: [good, bad] }).slice(0, -3 - int(20)),
      type: 'application/json',
      valid: [],
      invalid: ids,
      wholeRefused: true,
    }),
    () => ({ body: json({ events: [good, { ...bad, unit: 3 }] }), type: 'application/json', valid: [], invalid: ids, wholeRefused: true }),
    () => ({ body: json([good]), type: 'application/json', valid: [], invalid: ids, wholeRefused: true }),
    () => ({ body: json(good), type: 'text/plain', valid: [], invalid: ids, wholeRefused: true }),
    () => ({
      body: Buffer.concat([Buffer.from(json({ events: [good] }).slice(0, -4)), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('"}]}')]),
      type: 'application/json',
      valid: [],
      invalid: ids,
      wholeRefused: true,
    }),
    () => ({
      body: Buffer.from(json({ ...good, caller: 'ab\u00e9' })).subarray(0, -3),
      type: 'application/json',
      valid: [],
      invalid: ids,
      wholeRefused: true,
    }),
    () => ({
      body: json({ events: Array.from({ length: 1001 }, () => good) }),
      type: 'application/json',
      valid: [],
      invalid: ids,
      wholeRefused: true,
    }),
    () => ({
      body: json({ events: [good], pad: 'x'.repeat(1024 * 1024) }),
      type: 'application/json',
      valid: [],
      invalid: ids,
      wholeRefused: true,
    }),
    () => ({ body: '', type: 'application/json', valid: [], invalid: ids, wholeRefused: true }),
    () => ({ body: '['.repeat(100_000), type: 'application/json', valid: [], invalid: ids, wholeRefused: true }),
  ];
  return pick(whole)();
}

/** One request on its own connection (no pooled socket another answer may have closed). */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

let s: TestServer;
let base: string;
beforeAll(async () => {
  s = await testServer();
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await s.close();
});

it(`survives ${REQUESTS} hostile requests (seed ${SEED}): no 5xx, valid events stored once, nothing else`, async () => {
  const cases = Array.from({ length: REQUESTS }, makeCase);
  const retries: Case[] = [];
  // /healthz is polled throughout on its own connection.
  const health: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t = performance.now();
      const res = await send('GET', '/healthz', {});
      expect(res.status).toBe(200);
      health.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();

  const stored = new Set<string>();
  const statuses = new Map<number, number>();
  const run = async (c: Case) => {
    let res: { status: number; text: string };
    try {
      res = await send('POST', '/v1/events', { ...s.auth, 'content-type': c.type }, c.body);
    } catch (err) {
      // The server may close the socket of a body it refused (over 1 MiB) before it was all sent.
      expect(c.wholeRefused, String(err)).toBe(true);
      statuses.set(0, (statuses.get(0) ?? 0) + 1);
      return;
    }
    const text = res.text;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    expect(res.status, text.slice(0, 300)).toBeLessThan(500);
    if (c.wholeRefused) {
      expect(res.status, text.slice(0, 300)).toBeGreaterThanOrEqual(400);
      return;
    }
    expect(res.status, text.slice(0, 300)).toBe(200);
    const results = JSON.parse(text).results as Array<{ status: string; request_id?: string }>;
    for (const r of results) {
      if (r.request_id?.startsWith('fz-ok')) {
        expect(['created', 'duplicate'], JSON.stringify(r)).toContain(r.status);
        stored.add(r.request_id);
      } else expect(r.status, JSON.stringify(r)).toBe('rejected');
    }
    if (c.valid.length > 0 && rand() < 0.1) retries.push(c);
  };
  // Four clients at once, as a busy service would see them.
  for (let i = 0; i < cases.length; i += 4) await Promise.all(cases.slice(i, i + 4).map(run));
  for (const c of retries) await run(c); // byte-identical retries: duplicates, stored once
  polling = false;
  await poller;

  const rows = await s.sql<{ request_id: string; n: number }>(
    "SELECT request_id, count(*) AS n FROM events WHERE request_id LIKE 'fz-%' GROUP BY request_id",
  );
  expect(rows.every((r) => r.n === 1)).toBe(true);
  expect(new Set(rows.map((r) => r.request_id))).toEqual(stored);
  expect(rows.some((r) => r.request_id.startsWith('fz-bad'))).toBe(false);
  // /healthz within 100 ms throughout: every answer at p99; the very slowest is allowed up to a
  // second, as a test runner on a shared 2-core machine deschedules this process now and then (it
  // measured 304 ms once under load). What this guards against costs far more: one hostile request
  // doing unbounded work (a pattern that backtracks, an unbounded depth) blocks for seconds.
  health.sort((a, b) => a - b);
  const p99 = health[Math.floor(health.length * 0.99)]!;
  const slowest = health.at(-1)!;
  console.log(
    `fuzz seed ${SEED}: ${REQUESTS} requests + ${retries.length} retries, ${stored.size} events stored, statuses ${JSON.stringify(Object.fromEntries(statuses))}, /healthz ${health.length} polls: p50 ${health[health.length >> 1]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, slowest ${slowest.toFixed(1)} ms`,
  );
  expect(p99).toBeLessThan(100);
  expect(slowest).toBeLessThan(1_000);
});
