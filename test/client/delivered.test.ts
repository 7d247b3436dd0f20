// The client reports each stored event's id and leaf hash (onDelivered), against a real server:
// enough to build the receipt link of one call without a second lookup (issue 24).
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, type DeliveredEvent, type UsageClient, verifyReceipt } from '../../src/client/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { testServer, type TestServer } from '../helpers.ts';

let s: TestServer | undefined;
let client: UsageClient | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await s?.close();
  s = undefined;
});

async function listening(server: TestServer): Promise<string> {
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.app.server.address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

const ev = (i: number, extra: Record<string, unknown> = {}) => ({
  namespace: 'acme/sdk',
  action: 'recall',
  caller: `u${i}`,
  units: i + 1,
  ...extra,
});

describe('onDelivered', () => {
  it("gives each stored event the ledger's id and leaf hash, once per batch, in the order recorded", async () => {
    s = await testServer();
    const url = await listening(s);
    const batches: DeliveredEvent[][] = [];
    const rejected: unknown[] = [];
    client = createUsageClient({
      url,
      apiKey: s.key,
      batchSize: 3,
      flushIntervalMs: 10,
      onDelivered: (d) => batches.push(d),
      onRejected: (r) => rejected.push(r),
    });
    for (let i = 0; i < 5; i++) client.record(ev(i, { request_id: `call-${i}` }));
    client.record(ev(9, { units: -1, request_id: 'bad' })); // refused: never reported as delivered
    await client.flush();
    const delivered = batches.flat();
    expect(delivered.map((d) => d.event.request_id)).toEqual(['call-0', 'call-1', 'call-2', 'call-3', 'call-4']);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(rejected).toHaveLength(1);
    await sealAll(s.ledger, { maxEvents: 100 });
    for (const d of delivered) {
      expect(d.status).toBe('created');
      expect(d.id).toEqual(expect.any(Number));
      // The receipt link built from what the client said is this event's receipt, and it verifies.
      const receipt = (await s.get(`/v1/events/${d.id}/receipt`)).json();
      expect(receipt.event.request_id).toBe(d.event.request_id);
      expect(receipt.leaf_hash).toBe(d.leaf_hash);
      expect(verifyReceipt(receipt).ok).toBe(true);
    }

    // A retry of a stored request id is a duplicate, with the first one's id and leaf hash.
    batches.length = 0;
    client.record(ev(0, { request_id: 'call-0' }));
    await client.flush();
    expect(batches.flat()).toEqual([
      {
        event: expect.objectContaining({ request_id: 'call-0' }),
        status: 'duplicate',
        id: delivered[0]!.id,
        leaf_hash: delivered[0]!.leaf_hash,
      },
    ]);
  });

  it('a sink that knows no ids reports the events without them; a throwing callback harms nothing', async () => {
    const sink = createMemorySink();
    const seen: DeliveredEvent[] = [];
    client = createUsageClient({
      sink,
      flushIntervalMs: 10,
      onDelivered: (d) => {
        seen.push(...d);
        throw new Error('the callback failed');
      },
    });
    client.record(ev(1, { request_id: 'm-1' }));
    client.record(ev(2, { request_id: 'm-2' }));
    await client.flush();
    expect(seen).toEqual([
      { event: expect.objectContaining({ request_id: 'm-1' }), status: 'created' },
      { event: expect.objectContaining({ request_id: 'm-2' }), status: 'created' },
    ]);
    expect(client.stats().sent).toBe(2);
  });
});
