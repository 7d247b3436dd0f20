// The usage client against a real server on a random port.
import { afterEach, describe, expect, it } from 'vitest';
import { createUsageClient, type QueuedEvent, type Rejection, type UsageClient } from '../../src/index.ts';
import { CheckedEvent } from '../../src/client/checked.ts';
import { retryAfterMs } from '../../src/client/index.ts';
import { freePort } from '../../scripts/lib/servers.ts';
import { testServer, type TestServer, until } from '../helpers.ts';

let s: TestServer | undefined;
let client: UsageClient | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await s?.close();
  s = undefined;
});

async function listening(server: TestServer, port = 0): Promise<string> {
  await server.app.listen({ host: '127.0.0.1', port });
  const { port: p } = server.app.server.address() as { port: number };
  return `http://127.0.0.1:${p}`;
}

const stored = () =>
  s!.db().prepare("SELECT request_id, units FROM events WHERE namespace = 'acme/sdk' ORDER BY seq").all() as Array<{
    request_id: string;
    units: number;
  }>;
const ev = (i: number, extra: Record<string, unknown> = {}) => ({
  namespace: 'acme/sdk',
  action: 'recall',
  caller: `u${i % 3}`,
  units: i + 1,
  ...extra,
});
const fast = { retry: { baseMs: 5, maxMs: 50 }, flushIntervalMs: 20 };

describe('usage client', () => {
  it('record returns at once and never throws, whatever it is given', () => {
    client = createUsageClient({ url: 'http://127.0.0.1:1', apiKey: 'x', ...fast });
    const weird: unknown[] = [
      undefined,
      null,
      42,
      'event',
      [],
      {
        get namespace() {
          throw new Error('boom');
        },
      },
    ];
    for (const w of weird) expect(() => client!.record(w as never)).not.toThrow();
  });

  it('sends events created exactly once, with request ids assigned at record time', async () => {
    s = await testServer();
    const url = await listening(s);
    client = createUsageClient({ url, apiKey: s.key, ...fast });
    for (let i = 0; i < 250; i++) client.record(ev(i));
    await client.flush();
    expect(stored()).toHaveLength(250);
    expect(new Set(stored().map((r) => r.request_id)).size).toBe(250);
    expect(stored()[0]!.request_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-z]+$/); // the process's UUIDv7, then a sequence (src/client/request-id.ts)
    expect(client.stats()).toMatchObject({ queued: 0, inFlight: 0, sent: 250, rejected: 0, dropped: 0 });
  });

  it('flushes at batchSize without waiting for the interval', async () => {
    s = await testServer();
    const url = await listening(s);
    client = createUsageClient({ url, apiKey: s.key, batchSize: 10, flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) client.record(ev(i));
    await until(() => stored().length === 10);
  });

  it('flushes after flushIntervalMs when fewer than batchSize wait', async () => {
    s = await testServer();
    const url = await listening(s);
    client = createUsageClient({ url, apiKey: s.key, batchSize: 100, flushIntervalMs: 50 });
    client.record(ev(1));
    await until(() => stored().length === 1);
  });

  it('keeps events while the server is down and delivers each exactly once when it comes up', async () => {
    const port = await freePort();
    const errors: Error[] = [];
    s = await testServer();
    client = createUsageClient({ url: `http://127.0.0.1:${port}`, apiKey: s.key, ...fast, onError: (e) => errors.push(e) });
    for (let i = 0; i < 40; i++) client.record(ev(i));
    await until(() => errors.length >= 3); // it tried, failed, and backed off
    await listening(s, port);
    await client.flush();
    expect(stored()).toHaveLength(40);
    expect(client.stats().retried).toBeGreaterThanOrEqual(3);
    expect(errors[0]!.message).toMatch(/cannot reach/);
  });

  it('retries 429 honouring Retry-After, and 503, and creates every event once', async () => {
    s = await testServer();
    const faults = [{ status: 429, retryAfter: '1' }, { status: 503 }, { status: 503 }];
    const seen: number[] = [];
    s.app.addHook('onRequest', async (req, reply) => {
      if (req.url !== '/v1/events') return;
      seen.push(Date.now());
      const f = faults.shift();
      if (f)
        return reply
          .code(f.status)
          .header('retry-after', f.retryAfter ?? '')
          .send({ error: { code: 'busy', message: 'try later', details: [] } });
    });
    const url = await listening(s);
    client = createUsageClient({ url, apiKey: s.key, ...fast });
    for (let i = 0; i < 30; i++) client.record(ev(i));
    await client.flush();
    expect(stored()).toHaveLength(30);
    expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(950); // waited the second Retry-After asked for
    expect(client.stats()).toMatchObject({ sent: 30, retried: 3 });
  });

  it('reports invalid events to onRejected (locally and from the server) and delivers the rest', async () => {
    s = await testServer();
    const url = await listening(s);
    const rejected: Rejection[] = [];
    client = createUsageClient({ url, apiKey: s.key, ...fast, onRejected: (r) => rejected.push(r) });
    client.record(ev(0));
    client.record(ev(1, { units: -3 })); // caught by the client
    client.record(ev(2, { unit: 5 })); // an unknown field: caught by the client, so it cannot fail the batch
    client.record(ev(3, { namespace: 'globex/x' })); // only the server knows the key's namespaces
    client.record(ev(4, { ts: Date.now() + 3_600_000 })); // only the server checks the time window
    client.record(ev(5));
    await client.flush();
    expect(stored().map((r) => r.units)).toEqual([1, 6]);
    const rules = rejected.map((r) => r.errors.map((e) => e.rule).join(','));
    expect(rules).toEqual(['min:0', 'unknown_field', 'namespace_forbidden', 'max_future_ms:300000']);
    expect(client.stats()).toMatchObject({ sent: 2, rejected: 4 });
  });

  it('reports a conflict, never retries it, and counts a duplicate as delivered', async () => {
    s = await testServer();
    const url = await listening(s);
    const rejected: Rejection[] = [];
    client = createUsageClient({ url, apiKey: s.key, ...fast, onRejected: (r) => rejected.push(r) });
    client.record(ev(0, { request_id: 'fixed' }));
    await client.flush();
    client.record(ev(0, { request_id: 'fixed' })); // a retry of the same event
    client.record(ev(0, { request_id: 'fixed', units: 99 })); // a different event reusing the id
    await client.flush();
    expect(stored()).toEqual([{ request_id: 'fixed', units: 1 }]);
    expect(rejected.map((r) => r.status)).toEqual(['conflict']);
    expect(client.stats()).toMatchObject({ sent: 2, rejected: 1, retried: 0 });
  });

  it('drop-oldest: bounded queue, oldest dropped and reported', async () => {
    const dropped: QueuedEvent[] = [];
    client = createUsageClient({
      url: 'http://127.0.0.1:1',
      apiKey: 'x',
      maxQueue: 5,
      flushIntervalMs: 60_000,
      batchSize: 1000,
      onDropped: (d) => dropped.push(...d),
    });
    for (let i = 0; i < 8; i++) client.record(ev(i));
    expect(client.stats()).toMatchObject({ queued: 5, dropped: 3 });
    expect(dropped.map((d) => d.units)).toEqual([1, 2, 3]);
    (client as unknown as { queue: { drain(): unknown[] } }).queue.drain(); // nothing to send at close
  });

  it('drop-oldest holds memory bounded while the server stays down', () => {
    client = createUsageClient({ url: 'http://127.0.0.1:1', apiKey: 'x', maxQueue: 100, flushIntervalMs: 60_000, batchSize: 1000 });
    for (let i = 0; i < 50_000; i++) client.record(ev(i));
    const internals = (client as unknown as { queue: { items: unknown[]; drain(): unknown[] } }).queue; // src/client/queue.ts
    expect(client.stats()).toMatchObject({ queued: 100, dropped: 49_900 });
    expect(internals.items.length).toBeLessThan(2 * 1024 + 200); // dropped events are let go
    internals.drain(); // nothing to send at close
  });

  it('block: record waits for room instead of dropping', async () => {
    s = await testServer();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    s.app.addHook('onRequest', async () => gate);
    const url = await listening(s);
    client = createUsageClient({ url, apiKey: s.key, maxQueue: 3, overflow: 'block', batchSize: 3, flushIntervalMs: 5 });
    for (let i = 0; i < 3; i++) expect(client.record(ev(i))).toBeUndefined();
    await until(() => client!.stats().inFlight === 3);
    const waiting = client.record(ev(3));
    expect(waiting).toBeInstanceOf(Promise);
    let done = false;
    void (waiting as Promise<void>).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    release();
    await waiting;
    await client.flush();
    expect(stored()).toHaveLength(4);
    expect(client.stats().dropped).toBe(0);
  });

  it('hands each scheduled flush to waitUntil, as an edge handler needs', async () => {
    s = await testServer();
    const url = await listening(s);
    const handed: Promise<unknown>[] = [];
    client = createUsageClient({ url, apiKey: s.key, flushIntervalMs: 10, waitUntil: (p) => handed.push(p) });
    client.record(ev(1));
    expect(handed).toHaveLength(1);
    await handed[0];
    expect(stored()).toHaveLength(1);
  });

  it('fetches a receipt', async () => {
    s = await testServer();
    const url = await listening(s);
    client = createUsageClient({ url, apiKey: s.key, ...fast });
    client.record(ev(1, { request_id: 'r-1' }));
    await client.flush();
    const id = (s.db().prepare("SELECT seq FROM events WHERE request_id = 'r-1'").get() as { seq: number }).seq;
    expect(await client.receipt(id)).toMatchObject({ status: 'pending', event: { request_id: 'r-1' } });
  });

  it('middleware events (pre-checked, with a size bound) go out in order, in batches that fit a request, beside events it checks', async () => {
    const batches: QueuedEvent[][] = [];
    const rejected: Rejection[] = [];
    const sink = { name: 'batches', send: async (events: QueuedEvent[]) => (batches.push([...events]), { kind: 'done' as const }) };
    client = createUsageClient({ sink, batchSize: 100, flushIntervalMs: 60_000, onRejected: (r) => rejected.push(r) });
    const checked = (i: number, bound = 900) => {
      const e = ev(i);
      return new CheckedEvent(`m-${i}`, e.namespace, e.caller, e.action, e.units ?? 1, Date.now(), {}, bound);
    };
    for (let i = 0; i < 130; i++) client.record(checked(i));
    client.record({ ...ev(130), request_id: 'bad', units: -1 }); // checked by the client: rejected
    for (let i = 131; i < 250; i++) client.record(checked(i));
    await client.flush();
    expect(batches.map((b) => b.length)).toEqual([100, 100, 49]);
    expect(batches.flat().map((e) => e.request_id)).toEqual(Array.from({ length: 250 }, (_, i) => `m-${i}`).filter((id) => id !== 'm-130'));
    expect(rejected.map((r) => r.event.request_id)).toEqual(['bad']);
    // Bounds that do not fit 100 to a request (the API takes 1 MiB): as many as fit.
    batches.length = 0;
    for (let i = 0; i < 5; i++) client.record(checked(i, 400_000));
    await client.flush();
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(retryAfterMs('soon')).toBeNull();
    expect(retryAfterMs(null)).toBeNull();
  });
});
