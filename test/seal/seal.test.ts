import { describe, expect, it } from 'vitest';
import { HASH_SIZE } from '../../src/merkle/hash.ts';
import { auditPath, buildTree, memoryNodeReader, rootOf } from '../../src/merkle/tree.ts';
import { inProcessSealer, SealScheduler, WorkerSealer } from '../../src/seal/scheduler.ts';
import { sealAll, sealNext } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { event, serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, engine) => {
  const s = serverEachTest(fresh);

  const post = async (n: number) => {
    const res = await s.post({ events: Array.from({ length: n }, () => event()) });
    return res.json().results.map((r: { id: number }) => r.id) as number[];
  };

  describe('sealing', () => {
    it('makes no epoch from an empty interval', async () => {
      expect(await sealNext(s.ledger, { maxEvents: 100 })).toBeNull();
      expect(await s.sql('SELECT count(*) AS n FROM epochs')).toEqual([{ n: 0 }]);
    });

    it('numbers epochs from 0 without gaps, in ledger order, with leaf indexes in seq order', async () => {
      const a = await post(5);
      const e0 = (await sealNext(s.ledger, { maxEvents: 100 }))!;
      expect(await sealNext(s.ledger, { maxEvents: 100 })).toBeNull();
      const b = await post(3);
      const e1 = (await sealNext(s.ledger, { maxEvents: 100 }))!;
      expect([e0.epoch, e0.size, e1.epoch, e1.size]).toEqual([0, 5, 1, 3]);
      const placed = [];
      for (const seq of [...a, ...b]) {
        const r = await s.receipt(seq);
        placed.push({ seq, epoch: r.epoch, leaf_index: r.leaf_index });
      }
      expect(placed).toEqual([
        ...a.map((seq, i) => ({ seq, epoch: 0, leaf_index: i })),
        ...b.map((seq, i) => ({ seq, epoch: 1, leaf_index: i })),
      ]);
    });

    it('stores the root of the RFC 6962 tree over the stored leaf hashes, and the time range', async () => {
      const now = Date.now();
      await s.post({ events: [event({ ts: now - 5000 }), event({ ts: now - 9000 }), event({ ts: now - 1000 })] });
      const e = (await sealNext(s.ledger, { maxEvents: 100 }))!;
      const hashes = (await s.sql<{ leaf_hash: Buffer }>('SELECT leaf_hash FROM events ORDER BY seq')).map((r) => r.leaf_hash);
      expect(e.root).toBe(Buffer.from(rootOf(buildTree(new Uint8Array(Buffer.concat(hashes))))).toString('hex'));
      expect([e.first_ts_ms, e.last_ts_ms]).toEqual([now - 9000, now - 1000]);
    });

    it.runIf(engine === 'sqlite')(
      'ends an epoch at a gap in the sequence (a row deleted by hand) and starts the next after it',
      async () => {
        const ids = await post(6);
        s.db().prepare('DELETE FROM events WHERE seq = ?').run(ids[3]);
        const epochs = await sealAll(s.ledger, { maxEvents: 100 });
        expect(epochs.map((e) => [e.first_seq, e.last_seq, e.size])).toEqual([
          [ids[0], ids[2], 3],
          [ids[4], ids[5], 2],
        ]);
        for (const id of [...ids.slice(0, 3), ...ids.slice(4)]) {
          const r = await s.receipt(id);
          expect(verifyReceipt(r).ok, `event ${id}`).toBe(true);
        }
      },
    );

    it('caps an epoch at maxEvents and leaves the rest for the next', async () => {
      await post(10);
      const epochs = await sealAll(s.ledger, { maxEvents: 4 });
      expect(epochs.map((e) => [e.epoch, e.size])).toEqual([
        [0, 4],
        [1, 4],
        [2, 2],
      ]);
      expect((await s.ledger.events.unsealed()).events).toBe(0);
    });

    it('serves every proof from stored nodes equal to the in-memory audit path (sizes across chunk and cache edges)', async () => {
      for (const n of [1, 2, 63, 64, 65, 130, 1000, 4097]) {
        for (let left = n; left > 0; left -= 1000) await post(Math.min(1000, left));
        const e = (await sealNext(s.ledger, { maxEvents: 10_000 }))!;
        const hashes = (
          await s.sql<{ leaf_hash: Buffer }>('SELECT leaf_hash FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq', e.first_seq, e.last_seq)
        ).map((r) => r.leaf_hash);
        const tree = buildTree(new Uint8Array(Buffer.concat(hashes)));
        const ids = (
          await s.sql<{ id: number }>('SELECT id FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq', e.first_seq, e.last_seq)
        ).map((r) => r.id);
        for (const [i, id] of ids.entries()) {
          const receipt = await s.receipt(id);
          const expected = auditPath(i, n, memoryNodeReader(tree)).map((h) => Buffer.from(h).toString('hex'));
          expect(receipt.proof, `n=${n} leaf ${i}`).toEqual(expected);
        }
        expect(hashes[0]!.length).toBe(HASH_SIZE);
      }
    });
  });

  describe('seal scheduler', () => {
    it('seals once the oldest unsealed event has waited epochMs, not before', async () => {
      await post(3);
      const [received] = (await s.sql<{ t: number }>('SELECT min(received_at) AS t FROM events')) as [{ t: number }];
      const scheduler = new SealScheduler(s.ledger, { epochMs: 10_000, maxEvents: 100, seal: inProcessSealer(s.ledger) });
      expect(await scheduler.tick(received.t + 9_999)).toEqual([]);
      expect((await scheduler.tick(received.t + 10_000)).map((e) => e.size)).toEqual([3]);
    });

    it('seals at maxEvents without waiting, in full epochs', async () => {
      await post(25);
      const scheduler = new SealScheduler(s.ledger, { epochMs: 3_600_000, maxEvents: 10, seal: inProcessSealer(s.ledger) });
      expect((await scheduler.tick()).map((e) => e.size)).toEqual([10, 10]); // 5 wait for time or more events
      expect((await s.ledger.events.unsealed()).events).toBe(5);
    });

    it.runIf(engine === 'sqlite')('seals on a worker thread with its own connection, beside the server connection', async () => {
      await post(12);
      const worker = new WorkerSealer({ engine: 'sqlite', file: s.ledger.location, synchronous: 'normal' });
      const scheduler = new SealScheduler(s.ledger, { epochMs: 0, maxEvents: 5, seal: worker.seal });
      try {
        expect((await scheduler.tick()).map((e) => [e.epoch, e.size])).toEqual([
          [0, 5],
          [1, 5],
          [2, 2],
        ]);
        const r = await s.receipt(7);
        expect(verifyReceipt(r).ok).toBe(true);
      } finally {
        await worker.close();
      }
    });

    it.runIf(engine === 'sqlite')('does not seal one run twice when two sealers race (serve and `receipts seal`)', async () => {
      await post(30);
      const worker = new WorkerSealer({ engine: 'sqlite', file: s.ledger.location, synchronous: 'normal' });
      try {
        const [a, b] = await Promise.all([worker.seal(10, Date.now()), sealNext(s.ledger, { maxEvents: 10 })]);
        const epochs = await s.sql<{ epoch: number; first_seq: number; last_seq: number }>(
          'SELECT epoch, first_seq, last_seq FROM epochs ORDER BY epoch',
        );
        expect(epochs.map((e) => e.epoch)).toEqual([0, 1]);
        expect(epochs[1]!.first_seq).toBe(epochs[0]!.last_seq + 1);
        expect(new Set([a!.epoch, b!.epoch])).toEqual(new Set([0, 1]));
      } finally {
        await worker.close();
      }
    });
  });
});
