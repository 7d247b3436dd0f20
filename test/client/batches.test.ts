// The client takes pre-checked events as a block: with unchecked events, drop-oldest and a spool (the block path) with unchecked events, drop-oldest and a spool.
import { describe, expect, it } from 'vitest';
import { createUsageClient, type QueuedEvent, type Rejection } from '../../src/index.ts';
import { CheckedEvent } from '../../src/client/checked.ts';

const ev = (i: number) => ({ namespace: 'acme/sdk', action: 'recall', caller: `u${i % 3}`, units: i + 1, ts: Date.now() });
const checked = (i: number, bound = 900) => {
  const e = ev(i);
  return new CheckedEvent(`m-${i}`, e.namespace, e.caller, e.action, e.units, e.ts, {}, bound);
};

describe('usage client batches of pre-checked events', () => {
  it('unchecked events after and between blocks are still checked; drop-oldest; order kept', async () => {
    const batches: QueuedEvent[][] = [];
    const rejected: Rejection[] = [];
    let release: () => void = () => {};
    let gate: Promise<void> = new Promise((r) => (release = r));
    const sink = {
      name: 'b',
      send: async (events: QueuedEvent[]) => {
        batches.push([...events]);
        await gate;
        return { kind: 'done' as const };
      },
    };
    const client = createUsageClient({ sink, batchSize: 3, maxQueue: 8, flushIntervalMs: 60_000, onRejected: (r) => rejected.push(r) });
    for (let i = 0; i < 4; i++) client.record(checked(i)); // a full batch: a send starts soon
    await new Promise((r) => setTimeout(r, 10)); // m-0..2 in flight, blocked
    client.record({ ...ev(50), request_id: 'bad1', units: -1 });
    for (let i = 4; i < 8; i++) client.record(checked(i)); // over maxQueue (8 with 3 in flight): oldest dropped
    client.record({ ...ev(51), request_id: 'bad2', units: -2 });
    release();
    gate = Promise.resolve();
    await client.flush();
    const sent = batches.flat().map((e) => e.request_id);
    expect(sent).toEqual([...new Set(sent)]);
    expect(sent.filter((id) => id.startsWith('bad'))).toEqual([]);
    expect(sent.slice(0, 3)).toEqual(['m-0', 'm-1', 'm-2']);
    const stats = client.stats();
    expect(stats.sent + stats.dropped + stats.rejected).toBe(10);
    expect(rejected.map((r) => r.event.request_id).filter((id) => id.startsWith('bad')).length + stats.dropped).toBeGreaterThanOrEqual(1);
    for (const b of batches) expect(b.length).toBeLessThanOrEqual(3);
    await client.close();
  });

  it('events read back from a spool are checked again, then later pre-checked ones go as a block', async () => {
    const batches: QueuedEvent[][] = [];
    const rejected: Rejection[] = [];
    const left: QueuedEvent[] = [
      { ...ev(1), request_id: 's-ok' } as QueuedEvent,
      { ...ev(2), request_id: 's-bad', units: -5 } as QueuedEvent,
    ];
    const spool = { load: () => left, add: () => {}, remove: () => {}, close: () => {} };
    const sink = { name: 'b', send: async (events: QueuedEvent[]) => (batches.push([...events]), { kind: 'done' as const }) };
    const client = createUsageClient({
      sink,
      batchSize: 10,
      flushIntervalMs: 60_000,
      spool: spool as never,
      onRejected: (r) => rejected.push(r),
    });
    for (let i = 0; i < 3; i++) client.record(checked(i));
    await client.flush();
    expect(batches.flat().map((e) => e.request_id)).toEqual(['s-ok', 'm-0', 'm-1', 'm-2']);
    expect(rejected.map((r) => r.event.request_id)).toEqual(['s-bad']);
    await client.close();
  });
});

describe('no key an app can add skips the client’s check', () => {
  it('an event carrying the old global prechecked symbol is still checked and its bad fields refused', async () => {
    const sent: QueuedEvent[] = [];
    const rejected: Rejection[] = [];
    const sink = { name: 'b', send: async (events: QueuedEvent[]) => (sent.push(...events), { kind: 'done' as const }) };
    const client = createUsageClient({ sink, flushIntervalMs: 1, onRejected: (r) => rejected.push(r) });
    // Symbol.for() is the same symbol for every module in the process: any caller could set it.
    client.record({ ...ev(1), request_id: 'forged', units: -5, [Symbol.for('sui-receipts.prechecked')]: 900 } as never);
    await client.flush();
    await client.close();
    expect(sent).toEqual([]);
    expect(rejected.map((r) => [r.event.request_id, r.errors[0]?.path])).toEqual([['forged', 'units']]);
  });
});
