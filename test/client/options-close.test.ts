// The client's options as configuration code passes them (unset values included), and close()
// while the sink is down: it must end, and say what became of what was not delivered.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type QueuedEvent, type Sink } from '../../src/index.ts';
import { createSqliteSpool } from '../../src/client/spool.ts';
import { tempDir } from '../helpers.ts';

const dirs: Array<() => void> = [];
afterEach(() => {
  for (const c of dirs.splice(0)) c();
});
const ev = (i: number) => ({ namespace: 'acme/sdk', action: 'recall', caller: `u${i}`, units: 1, request_id: `c${i}` });
const down: Sink = { name: 'down', send: async () => ({ kind: 'retry', error: new Error('unreachable') }) };
/** Resolves after `ms` on a timer: it only fires if the event loop is free. */
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('client options', () => {
  it('an option given as undefined takes its default (it used to make the batch size NaN and spin the event loop)', async () => {
    const sink = createMemorySink();
    const unset: {
      batchSize?: number;
      timeoutMs?: number;
      flushIntervalMs?: number;
      maxQueue?: number;
      retry?: { baseMs: number; maxMs: number };
    } = {};
    const client = createUsageClient({
      sink,
      batchSize: unset.batchSize,
      timeoutMs: unset.timeoutMs,
      flushIntervalMs: 5,
      maxQueue: unset.maxQueue,
      retry: unset.retry,
    });
    for (let i = 0; i < 3; i++) client.record(ev(i));
    await tick(50); // a timer fires: the loop is not starved
    await client.flush();
    expect(sink.events.map((e) => e.request_id)).toEqual(['c0', 'c1', 'c2']);
    expect(client.stats()).toMatchObject({ sent: 3, retried: 0, queued: 0 });
    await client.close();
  });

  it('a bad value is refused at construction, naming the option and the rule', () => {
    const sink = createMemorySink();
    expect(() => createUsageClient({ sink, batchSize: Number.NaN })).toThrow(/batchSize must be a number of events, at least 1/);
    expect(() => createUsageClient({ sink, batchSize: 0 })).toThrow(/batchSize must be/);
    expect(() => createUsageClient({ sink, timeoutMs: '5000' as unknown as number })).toThrow(
      /timeoutMs must be a number of ms from 1 to 2147483647 \(got string\)/,
    );
    expect(() => createUsageClient({ sink, maxQueue: -1 })).toThrow(/maxQueue must be/);
    expect(() => createUsageClient({ sink, overflow: 'wait' as 'block' })).toThrow(/overflow must be 'drop-oldest' or 'block'/);
    expect(() => createUsageClient({ sink, retry: { baseMs: Number.NaN, maxMs: 10 } })).toThrow(/retry\.baseMs must be/);
    // setTimeout makes anything above 2^31 - 1 ms a 1 ms timer.
    expect(() => createUsageClient({ sink, closeTimeoutMs: Number.POSITIVE_INFINITY })).toThrow(
      /closeTimeoutMs must be a number of ms from 0 to 2147483647 \(got Infinity\)/,
    );
    expect(() => createUsageClient({ sink, timeoutMs: 2 ** 31 })).toThrow(/timeoutMs must be a number of ms from 1 to 2147483647/);
    // A batch size above the API's limit is still capped, not refused.
    expect(() => createUsageClient({ sink, batchSize: 5000 })).not.toThrow();
  });
});

describe('events that cannot be serialized', () => {
  it('are refused one by one (metadata with a BigInt, a throwing getter or toJSON); the rest goes out and the loop stays free', async () => {
    const sink = createMemorySink();
    const rejected: Array<{ id: string; message: string }> = [];
    const client = createUsageClient({
      sink,
      flushIntervalMs: 1,
      onRejected: (r) => rejected.push({ id: r.event.request_id, message: r.errors[0]!.message }),
    });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    client.record({ ...ev(0), metadata: { n: 1n } as never });
    client.record(ev(1));
    client.record({
      ...ev(2),
      metadata: {
        get x() {
          throw new Error('getter broke');
        },
      },
    });
    client.record({
      ...ev(3),
      metadata: {
        toJSON() {
          throw new Error('toJSON broke');
        },
      } as never,
    });
    client.record(ev(4));
    await tick(100);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(3); // it used to spin on the first of them, and no timer ever fired again
    await client.flush();
    expect(sink.events.map((e) => e.request_id)).toEqual(['c1', 'c4']);
    expect(rejected.map((r) => r.id)).toEqual(['c0', 'c2', 'c3']);
    expect(rejected[1]!.message).toMatch(/cannot be serialized as JSON: getter broke/);
    await client.close();
  });
});

describe('a fault while sending', () => {
  it('puts the batch back and tries again later: nothing is lost, and a thrown non-Error is described', async () => {
    const delivered: string[] = [];
    let call = 0;
    const sink: Sink = {
      name: 'faulty',
      send: async (events) => {
        call++;
        if (call === 1)
          return {
            kind: 'done',
            get results(): never {
              throw new Error('unreadable answer');
            },
          };
        if (call === 2) throw Object.create(null); // not even a toString
        delivered.push(...events.map((e) => e.request_id));
        return { kind: 'done' };
      },
    };
    const errors: string[] = [];
    const client = createUsageClient({ sink, flushIntervalMs: 1, retry: { baseMs: 5, maxMs: 10 }, onError: (e) => errors.push(e.message) });
    for (let i = 0; i < 3; i++) client.record(ev(i));
    await tick(100);
    await client.flush();
    expect(delivered).toEqual(['c0', 'c1', 'c2']);
    expect(client.stats()).toMatchObject({ sent: 3, dropped: 0, queued: 0 });
    expect(errors[0]).toMatch(/could not send \(unreadable answer\); trying again in 5 ms/);
    expect(errors[1]).toBe('sink faulty: [object Object]'); // a sink's throw, whatever it is, is retried
    await client.close();
  });
});

describe('a spool that fails to remove answered events', () => {
  it('does not make the client send them again: the answer stands, the failure is reported', async () => {
    const sends: string[][] = [];
    const sink: Sink = { name: 'ok', send: async (events) => (sends.push(events.map((e) => e.request_id)), { kind: 'done' }) };
    const spool = {
      load: () => [],
      add: () => {},
      remove: () => {
        throw new Error('disk full');
      },
      close: () => {},
    };
    const errors: string[] = [];
    const rejected: string[] = [];
    const client = createUsageClient({
      sink,
      spool,
      flushIntervalMs: 1,
      retry: { baseMs: 5, maxMs: 10 },
      onError: (e) => errors.push(e.message),
      onRejected: (r) => rejected.push(r.event.request_id),
    });
    for (let i = 0; i < 3; i++) client.record(ev(i));
    // An event whose toJSON throws a value without even a toString: refused alone, described.
    client.record({
      ...ev(3),
      metadata: {
        x: {
          toJSON() {
            throw Object.create(null);
          },
        },
      },
    });
    await client.flush();
    await tick(30);
    expect(sends).toEqual([['c0', 'c1', 'c2']]);
    expect(client.stats()).toMatchObject({ sent: 3, rejected: 1, queued: 0 });
    expect(rejected).toEqual(['c3']);
    // Once, not per batch (the rejected c3 is the first to leave the spool).
    expect(errors).toEqual([
      expect.stringMatching(
        /^the spool could not remove \d+ answered events \(disk full\); the next client on it sends them again, as duplicates$/,
      ),
    ]);
    await client.close();
  });
});

describe('close() while the sink is down', () => {
  it('ends after closeTimeoutMs; without a spool the undelivered events are reported dropped', async () => {
    const dropped: QueuedEvent[] = [];
    const errors: string[] = [];
    const client = createUsageClient({
      sink: down,
      flushIntervalMs: 1,
      retry: { baseMs: 5, maxMs: 20 },
      closeTimeoutMs: 200,
      onDropped: (d) => dropped.push(...d),
      onError: (e) => errors.push(e.message),
    });
    for (let i = 0; i < 3; i++) client.record(ev(i));
    await tick(30); // a send is under way and retrying
    const t0 = Date.now();
    await client.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(dropped.map((e) => e.request_id).sort()).toEqual(['c0', 'c1', 'c2']);
    expect(client.stats()).toMatchObject({ dropped: 3, queued: 0, inFlight: 0 });
    expect(errors.at(-1)).toMatch(/close: 3 events not delivered within 200 ms and dropped \(no spool/);
    client.record(ev(9)); // closed: rejected, never thrown
  });

  it('with a spool the undelivered events stay in it, and the next client on it sends them', async () => {
    const t = tempDir('receipts-close-');
    dirs.push(t.cleanup);
    const file = join(t.dir, 'spool.db');
    const dropped: QueuedEvent[] = [];
    const errors: string[] = [];
    const first = createUsageClient({
      sink: down,
      spool: createSqliteSpool(file),
      flushIntervalMs: 1,
      retry: { baseMs: 5, maxMs: 20 },
      onDropped: (d) => dropped.push(...d),
      onError: (e) => errors.push(e.message),
    });
    for (let i = 0; i < 3; i++) first.record(ev(i));
    await first.close({ timeoutMs: 100 });
    expect(dropped).toEqual([]);
    expect(errors.at(-1)).toMatch(/3 events not delivered within 100 ms; they stay in the spool/);

    const sink = createMemorySink();
    const second = createUsageClient({ sink, spool: createSqliteSpool(file), flushIntervalMs: 1 });
    await second.close();
    expect(sink.events.map((e) => e.request_id)).toEqual(['c0', 'c1', 'c2']);
  });

  it('a second close() waits for the first and reports nothing again, also when the sink ignores the abort', async () => {
    const dropped: QueuedEvent[] = [];
    const sink = createMemorySink();
    sink.answer = () => new Promise((r) => setTimeout(() => r(undefined), 600)); // slow, deaf to the signal
    const client = createUsageClient({ sink, flushIntervalMs: 1, onDropped: (d) => dropped.push(...d) });
    for (let i = 0; i < 3; i++) client.record(ev(i));
    await tick(20);
    await Promise.all([client.close({ timeoutMs: 100 }), client.close({ timeoutMs: 100 })]);
    await client.close();
    await client.flush(); // resolves: nothing more will be sent
    expect(dropped.map((e) => e.request_id)).toEqual(['c0', 'c1', 'c2']);
    expect(client.stats().dropped).toBe(3);
  });

  it('only what was not answered is given up: the delivered half of a batch split in two is not dropped', async () => {
    const dropped: QueuedEvent[] = [];
    let calls = 0;
    const sink: Sink = {
      name: 'halves',
      send: async (events) => {
        calls++;
        if (events.length > 2) return { kind: 'too_large' };
        return events[0]!.request_id === 'c0' ? { kind: 'done' } : { kind: 'retry', error: new Error('down') };
      },
    };
    const client = createUsageClient({ sink, flushIntervalMs: 1, retry: { baseMs: 5, maxMs: 10 }, onDropped: (d) => dropped.push(...d) });
    for (let i = 0; i < 4; i++) client.record(ev(i));
    await tick(30);
    await client.close({ timeoutMs: 50 });
    expect(calls).toBeGreaterThan(2);
    expect(dropped.map((e) => e.request_id)).toEqual(['c2', 'c3']);
    expect(client.stats()).toMatchObject({ sent: 2, dropped: 2 });
  });

  it('never rejects: a close({ timeoutMs }) out of range uses closeTimeoutMs, and a throwing onError is contained', async () => {
    const errors: string[] = [];
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 60_000, onError: (e) => errors.push(e.message) });
    client.record(ev(1));
    await client.close({ timeoutMs: Number.NaN });
    expect(sink.events).toHaveLength(1); // not given up after 1 ms
    expect(errors[0]).toMatch(/close: timeoutMs must be a number of ms from 0 to 2147483647 \(got NaN\); using closeTimeoutMs, 10000/);

    const broken: Sink = {
      name: 'broken',
      send: async () => ({ kind: 'done' }),
      close: async () => {
        throw new Error('close failed');
      },
    };
    const other = createUsageClient({
      sink: broken,
      onError: () => {
        throw new Error('the logger broke');
      },
    });
    await expect(other.close()).resolves.toBeUndefined();
  });

  it('a sink that answers in time is not cut short', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 60_000, closeTimeoutMs: 5_000 });
    for (let i = 0; i < 3; i++) client.record(ev(i));
    await client.close();
    expect(sink.events).toHaveLength(3);
    expect(client.stats()).toMatchObject({ sent: 3, dropped: 0 });
  });
});
