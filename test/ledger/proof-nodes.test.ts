// epochs.nodes: a proof's stored nodes in one read, in the order asked, equal to one node() read
// each; a place with no stored node is an error naming it, never a short or empty hash.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/index.ts';
import { auditPathNodes } from '../../src/merkle/tree.ts';
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

  describe('epochs.nodes', () => {
    it('reads every place asked, in order, as node() does, for many leaves of an odd-sized epoch', async () => {
      const size = 1000; // levels of 1000, 500, 250, 125, 63 …: promoted nodes and several 64-hash chunks
      const writes = Array.from({ length: size }, (_, i) => ({
        event: {
          namespace: 'acme/prod',
          request_id: `r${i}`,
          caller: 'c',
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
      }));
      await ledger.events.write(writes);
      const epoch = (await sealNext(ledger, { maxEvents: size }))!;
      expect(epoch.size).toBe(size);
      for (const index of [0, 1, 63, 64, 500, 998, 999]) {
        const places = auditPathNodes(index, size);
        const one = await ledger.epochs.nodes(epoch.epoch, places);
        const each = await Promise.all(places.map(([l, i]) => ledger.epochs.node(epoch.epoch, l, i)));
        expect(one.map((h) => Buffer.from(h).toString('hex'))).toEqual(each.map((h) => Buffer.from(h).toString('hex')));
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
      expect(got.map((h) => Buffer.from(h).toString('hex'))).toEqual(want.map((h) => Buffer.from(h).toString('hex')));
      expect(await ledger.epochs.nodes(epoch.epoch, [])).toEqual([]);
    });

    it('names a place with no stored node instead of answering a short hash', async () => {
      await ledger.events.write([
        {
          event: {
            namespace: 'acme/prod',
            request_id: 'only',
            caller: 'c',
            action: 'a',
            units: 1,
            artifact_digest: '',
            ts_ms: 1_700_000_000_000,
            ts_explicit: true,
            received_at: 1_700_000_000_000,
            source: null,
            metadata: null,
            redacted: [],
          },
          owner: 'acme',
          keyId: 'k',
        },
      ]);
      await sealNext(ledger, { maxEvents: 10 });
      await expect(ledger.epochs.nodes(0, [[0, 0]])).resolves.toHaveLength(1);
      await expect(ledger.epochs.nodes(0, [[0, 1]])).rejects.toThrow('no stored node at epoch 0, level 0, index 1');
      await expect(ledger.epochs.nodes(0, [[0, 64]])).rejects.toThrow('no stored node at epoch 0, level 0, index 64');
      await expect(ledger.epochs.nodes(7, [[0, 0]])).rejects.toThrow('no stored node at epoch 7, level 0, index 0');
    });
  });
});
