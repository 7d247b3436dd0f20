// epochs.nodes: a proof's stored nodes in one read, in the order asked, equal to one node() read
// each; a place with no stored node is an error naming it, never a short or empty hash.
// events.getWithBlock (SQLite: the event, its block of leaves and the anchor in one statement)
// reads exactly what get, epochs.nodes and anchors.get read apart, and receipts built from it are
// the receipts built from those.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Ledger } from '../../src/ledger/index.ts';
import { auditPathNodes } from '../../src/merkle/tree.ts';
import { ReceiptReader } from '../../src/receipt/reader.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import type { LedgerFactory } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh: LedgerFactory) => {
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ ledger, cleanup } = await fresh());
    if (ledger.engine === 'postgres') {
      await ledger.leadership.start(() => {});
      for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 25));
    }
  });
  afterEach(async () => {
    await ledger.close();
    await cleanup();
  });

  /** n events of namespace acme/prod, written and sealed as one epoch. */
  async function sealed(n: number, prefix = 'r') {
    await ledger.events.write(
      Array.from({ length: n }, (_, i) => ({
        event: {
          namespace: 'acme/prod',
          request_id: `${prefix}${i}`,
          caller: `c${i % 3}`,
          action: 'a',
          units: i,
          artifact_digest: '',
          ts_ms: 1_700_000_000_000 + i,
          ts_explicit: true,
          received_at: 1_700_000_000_000,
          source: null,
          metadata: null,
          redacted: [],
        },
        owner: 'acme',
        keyId: 'k',
      })),
    );
    return (await sealNext(ledger, { maxEvents: n }))!;
  }

  const hex = (hs: readonly Uint8Array[]) => hs.map((h) => Buffer.from(h).toString('hex'));

  describe('events.getWithBlock', () => {
    it('reads the event, its block and the anchor as get, epochs.nodes and anchors.get do, unanchored and anchored', async () => {
      const read = ledger.events.getWithBlock;
      if (!read) {
        expect(ledger.engine).toBe('postgres'); // its event read cannot know the seq first: receipts read the block after
        return;
      }
      const epoch = await sealed(203); // blocks of 8 and a last one of 3, four chunks of 64 leaves
      for (const anchored of [false, true]) {
        if (anchored)
          await ledger.anchors.record([epoch.epoch], {
            network: 'localnet',
            package_id: '0xp',
            registry_id: '0xr',
            tx_digest: null,
            checkpoint: '17',
            anchored_at_ms: 5,
          });
        for (const index of [0, 7, 8, 63, 64, 100, 199, 200, 202]) {
          const id = epoch.first_seq + index; // seq is the id on this engine
          const first = index - (index % 8);
          const at = { epoch: epoch.epoch, first, count: Math.min(8, epoch.size - first) };
          const got = (await read.call(ledger.events, id, () => at))!;
          expect(got.event).toEqual(await ledger.events.get(id));
          expect(got.block?.at).toEqual(at);
          const places = Array.from({ length: at.count }, (_, i) => [0, first + i] as [number, number]);
          const hashes = got.block!.hashes;
          expect(hashes.length).toBe(at.count * 32);
          expect(hex(Array.from({ length: at.count }, (_, i) => hashes.subarray(32 * i, 32 * i + 32)))).toEqual(
            hex(await ledger.epochs.nodes(epoch.epoch, places)),
          );
          expect(got.block!.anchor).toEqual(await ledger.anchors.get(epoch.epoch));
          expect(got.block!.anchor === null).toBe(!anchored);
        }
      }
      // Not placed, or a block not stored whole: the event alone, and receipts read the block apart.
      const plain = (await read.call(ledger.events, epoch.first_seq, () => undefined))!;
      expect(plain).toEqual({ event: await ledger.events.get(epoch.first_seq) });
      const beyond = (await read.call(ledger.events, epoch.first_seq + 200, () => ({ epoch: epoch.epoch, first: 200, count: 8 })))!;
      expect(beyond.block).toBeUndefined();
      expect(await read.call(ledger.events, epoch.last_seq + 1, () => undefined)).toBeUndefined();
    });

    it('gives the receipts the slow path gives, for every event of two epochs, cold and warm, anchored or not, levels cached or not', async () => {
      const one = await sealed(77, 'one-');
      await ledger.anchors.record([one.epoch], {
        network: 'localnet',
        package_id: '0xp',
        registry_id: '0xr',
        tx_digest: 'tx',
        checkpoint: '3',
        anchored_at_ms: 5,
      });
      const two = await sealed(130, 'two-');
      expect([one.size, two.size]).toEqual([77, 130]);
      // The id of each seq (on SQLite the seq itself; on PostgreSQL given at ingest).
      const rows = await ledger.events.page({ namespace: 'acme/prod', from: 0, to: 2 ** 52, asOf: 2 ** 52, after: [0, 0], limit: 1000 });
      const idOf = new Map(rows.map((r) => [r.seq, r.id]));
      const reader = new ReceiptReader(ledger); // reads events with their block once an epoch's header is in memory
      const uncached = new ReceiptReader(ledger, { cacheBytes: 0 }); // the same, with every upper node read apart
      const slow = new ReceiptReader(ledger, { cacheBytes: 0 }); // every node read apart, from get's row
      const nodeReads = vi.spyOn(ledger.epochs, 'nodes');
      const anchorReads = vi.spyOn(ledger.anchors, 'get');
      try {
        for (const e of [one, two]) {
          for (let seq = e.first_seq; seq <= e.last_seq; seq++) {
            const id = idOf.get(seq)!;
            const want = await slow.receipt((await ledger.events.get(id))!);
            nodeReads.mockClear();
            anchorReads.mockClear();
            const fast = await reader.receipt((await reader.event(id))!);
            expect(fast).toEqual(want);
            expect(fast.status).toBe(e === one ? 'anchored' : 'sealed');
            // Warm (the epoch's header and levels in memory), SQLite reads nothing more than the one
            // statement; PostgreSQL reads the block and the anchor after the event.
            const warm = ledger.engine === 'sqlite' && seq > e.first_seq;
            expect(nodeReads.mock.calls.length === 0, `seq ${seq}: block read apart`).toBe(warm);
            expect(anchorReads.mock.calls.length === 0, `seq ${seq}: anchor read apart`).toBe(warm);
            expect(await uncached.receipt((await uncached.event(id))!)).toEqual(want);
          }
        }
      } finally {
        nodeReads.mockRestore();
        anchorReads.mockRestore();
      }
      expect(await reader.event(0)).toBeUndefined();
      expect(await reader.event(1.5)).toBeUndefined();
      expect(await reader.event(Number.NaN)).toBeUndefined();
      expect(await reader.event(two.last_seq + 10)).toBeUndefined();
    });
  });

  describe('epochs.nodes', () => {
    it('reads every place asked, in order, as node() does, for many leaves of an odd-sized epoch', async () => {
      const size = 1000; // levels of 1000, 500, 250, 125, 63 …: promoted nodes and several 64-hash chunks
      const epoch = await sealed(size);
      expect(epoch.size).toBe(size);
      for (const index of [0, 1, 63, 64, 500, 998, 999]) {
        const places = auditPathNodes(index, size);
        const one = await ledger.epochs.nodes(epoch.epoch, places);
        const each = await Promise.all(places.map(([l, i]) => ledger.epochs.node(epoch.epoch, l, i)));
        expect(hex(one)).toEqual(hex(each));
        expect(one.every((h) => h.length === 32)).toBe(true);
      }
      // Any order, any repeats: the answer follows the question.
      const mixed: Array<[number, number]> = [
        [3, 100],
        [0, 999],
        [3, 100],
        [1, 0],
      ];
      const got = await ledger.epochs.nodes(epoch.epoch, mixed);
      const want = await Promise.all(mixed.map(([l, i]) => ledger.epochs.node(epoch.epoch, l, i)));
      expect(hex(got)).toEqual(hex(want));
      expect(await ledger.epochs.nodes(epoch.epoch, [])).toEqual([]);
    });

    it('names a place with no stored node instead of answering a short hash', async () => {
      await sealed(1);
      await expect(ledger.epochs.nodes(0, [[0, 0]])).resolves.toHaveLength(1);
      await expect(ledger.epochs.nodes(0, [[0, 1]])).rejects.toThrow('no stored node at epoch 0, level 0, index 1');
      await expect(ledger.epochs.nodes(0, [[0, 64]])).rejects.toThrow('no stored node at epoch 0, level 0, index 64');
      await expect(ledger.epochs.nodes(7, [[0, 0]])).rejects.toThrow('no stored node at epoch 7, level 0, index 0');
    });
  });
});
