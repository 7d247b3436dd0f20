// The receipt's fast paths (epoch headers and upper tree levels from memory, the path's other
// nodes in one ledger read, cold levels loaded once for concurrent requests) must answer exactly
// what the slow path does: the tree rebuilt from the epoch's leaf hashes. A property over random
// epoch sizes and leaf indexes, on both engines, through HTTP and through the reader with a
// cache so small that levels are dropped and read again.
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../../src/encoding/hex.ts';
import type { EventRecord } from '../../src/ledger/index.ts';
import { auditPathNodes } from '../../src/merkle/tree.ts';
import { ReceiptReader } from '../../src/receipt/reader.ts';
import { buildEpochTree, sealNext } from '../../src/seal/sealer.ts';
import { event, serverEachTest, until } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';
import { mulberry32 as random } from '../support/random.ts';

const SEED = Number(process.env.RECEIPTS_SEED ?? Date.now() % 1_000_000);

forEachEngine((fresh) => {
  const s = serverEachTest(fresh);

  /** One seal; on PostgreSQL a loaded machine can cost the test instance its short lease: win it back and seal again. */
  async function seal(maxEvents: number) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await sealNext(s.ledger, { maxEvents });
      } catch (err) {
        if ((err as Error).name !== 'FencedError' || attempt === 5) throw err;
        await until(() => s.ledger.leadership.role() === 'leader');
      }
    }
  }

  /** Epochs of these sizes (sealed in order); every event's id, by epoch. */
  async function sealEpochs(sizes: number[]): Promise<number[][]> {
    const byEpoch: number[][] = [];
    for (const size of sizes) {
      const ids: number[] = [];
      for (let from = 0; from < size; from += 1000) {
        const n = Math.min(1000, size - from);
        const res = await s.post({ events: Array.from({ length: n }, (_, i) => event({ units: from + i, caller: `c${i % 7}` })) });
        expect(res.statusCode).toBe(200);
        ids.push(...res.json().results.map((r: { id: number }) => r.id));
      }
      const sealed = await seal(size);
      expect(sealed?.size).toBe(size);
      byEpoch.push(ids);
    }
    return byEpoch;
  }

  /** The slow path: the receipt from the epoch's tree rebuilt in memory from its leaf hashes. */
  async function slowReceipt(row: EventRecord): Promise<string> {
    const epoch = (await s.ledger.epochs.containing(row.seq!))!;
    const leaves = await s.sql<{ leaf_hash: Uint8Array }>(
      'SELECT leaf_hash FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq',
      epoch.first_seq,
      epoch.last_seq,
    );
    const all = new Uint8Array(leaves.length * 32);
    leaves.forEach((l, i) => all.set(l.leaf_hash, i * 32));
    const tree = buildEpochTree(all);
    expect(bytesToHex(tree.root)).toBe(epoch.root);
    const leafIndex = row.seq! - epoch.first_seq;
    const proof = auditPathNodes(leafIndex, epoch.size).map(([level, i]) => bytesToHex(tree.levels[level]!.subarray(i * 32, i * 32 + 32)));
    return JSON.stringify({
      version: 1,
      id: row.id,
      status: 'sealed',
      event: {
        namespace: row.namespace,
        request_id: row.request_id,
        caller: row.caller,
        action: row.action,
        units: row.units,
        artifact_digest: row.artifact_digest,
        ts_ms: row.ts_ms,
      },
      leaf_hash: row.leaf_hash,
      epoch: epoch.epoch,
      leaf_index: leafIndex,
      tree_size: epoch.size,
      proof,
      root: epoch.root,
      anchor: null,
    });
  }

  describe('receipt fast paths', () => {
    it(`serve byte-identical receipts to the slow path for random sizes and indexes (seed ${SEED})`, async () => {
      const rand = random(SEED);
      // Edges of a level, of a 64-hash storage chunk and of the cached levels (≥ 3), then random sizes.
      const sizes = [1, 2, 3, 8, 9, 64, 65, 513, 1 + Math.floor(rand() * 2500), 1 + Math.floor(rand() * 700)];
      const byEpoch = await sealEpochs(sizes);
      // Cold: many receipts of each epoch at once (levels loaded once for all of them), then warm.
      for (const round of ['cold', 'warm']) {
        for (const ids of byEpoch) {
          const picked = [ids[0]!, ids.at(-1)!, ...Array.from({ length: 6 }, () => ids[Math.floor(rand() * ids.length)]!)];
          const served = await Promise.all(picked.map((id) => s.get(`/v1/events/${id}/receipt`)));
          for (const [k, res] of served.entries()) {
            expect(res.statusCode).toBe(200);
            const row = (await s.ledger.events.get(picked[k]!))!;
            expect(res.body, `${round} receipt of event ${picked[k]} (seed ${SEED})`).toBe(await slowReceipt(row));
          }
        }
      }
    }, 120_000);

    it(`give the same receipts when the level cache is too small to keep a level, or just one (seed ${SEED})`, async () => {
      const rand = random(SEED + 1);
      const byEpoch = await sealEpochs([1500, 2 + Math.floor(rand() * 1200), 700]);
      // 0: nothing cached (every node read from the ledger); 2 KiB: levels come and go.
      for (const cacheBytes of [0, 2048]) {
        const reader = new ReceiptReader(s.ledger, { cacheBytes });
        for (let n = 0; n < 40; n++) {
          const ids = byEpoch[Math.floor(rand() * byEpoch.length)]!;
          const row = (await s.ledger.events.get(ids[Math.floor(rand() * ids.length)]!))!;
          expect(JSON.stringify(await reader.receipt(row)), `cacheBytes ${cacheBytes}, event ${row.id} (seed ${SEED})`).toBe(
            await slowReceipt(row),
          );
        }
      }
    }, 120_000);

    it('keeps every access check and the pending receipt on the fast path', async () => {
      const [ids] = await sealEpochs([20]);
      expect((await s.get(`/v1/events/${ids![3]}/receipt`)).statusCode).toBe(200); // epoch and levels now in memory
      const other = await s.ledger.keys.create('other', ['other/*']);
      const refused = await s.get(`/v1/events/${ids![3]}/receipt`, { authorization: `Bearer ${other.key}` });
      expect(refused.statusCode).toBe(404);
      expect(refused.json().error.code).toBe('not_found');
      const [pending] = (await s.post(event())).json().results;
      expect((await s.get(`/v1/events/${pending.id}/receipt`)).json()).toMatchObject({ status: 'pending', proof: null, epoch: null });
      await seal(10);
      expect((await s.get(`/v1/events/${pending.id}/receipt`)).json()).toMatchObject({ status: 'sealed', epoch: 1, leaf_index: 0 });
    });
  });
});
