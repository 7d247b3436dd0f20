// End to end through HTTP: post, seal, fetch every receipt, verify each; usage with receipts.
import { describe, expect, it } from 'vitest';
import { verifyReceipt } from '../../src/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { event, serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, _engine) => {
  const s = serverEachTest(fresh);

  const receiptOf = async (id: number) => (await s.get(`/v1/events/${id}/receipt`)).json();

  describe('receipts over HTTP', () => {
    it('is pending before sealing, then sealed with a proof that verifies', async () => {
      const [r] = (await s.post(event({ units: 7, artifact_digest: 'cd'.repeat(32) }))).json().results;
      const pending = await receiptOf(r.id);
      expect(pending).toMatchObject({ version: 1, status: 'pending', proof: null, root: null, leaf_hash: r.leaf_hash });
      expect(verifyReceipt(pending)).toMatchObject({ ok: false, reason: expect.stringMatching(/pending/) });

      await sealAll(s.ledger, { maxEvents: 1000 });
      const sealed = await receiptOf(r.id);
      expect(sealed).toMatchObject({ version: 1, status: 'sealed', epoch: 0, leaf_index: 0, tree_size: 1, anchor: null });
      expect(sealed.event).toMatchObject({ units: 7, artifact_digest: 'cd'.repeat(32) });
      expect(verifyReceipt(sealed).ok).toBe(true);
    });

    it('gives every event of several epochs a receipt that verifies against the stored root', async () => {
      const ids: number[] = [];
      for (const n of [37, 1, 64, 100]) {
        const res = await s.post({ events: Array.from({ length: n }, (_, i) => event({ units: i, caller: `c${i % 5}` })) });
        ids.push(...res.json().results.map((r: { id: number }) => r.id));
        await sealAll(s.ledger, { maxEvents: 50 });
      }
      const epochs = (await s.get('/v1/epochs?limit=1000')).json().epochs as Array<{ epoch: number; root: string; size: number }>;
      expect(epochs.map((e) => e.epoch)).toEqual(epochs.map((_, i) => i));
      for (const id of ids) {
        const receipt = await receiptOf(id);
        const epoch = epochs[receipt.epoch]!;
        const result = verifyReceipt(receipt, { root: epoch.root, size: epoch.size });
        expect(result.ok, `event ${id}: ${result.reason}`).toBe(true);
      }
    });

    it('fails verification of an event altered in the database after sealing', async () => {
      const ids = (await s.post({ events: Array.from({ length: 9 }, () => event({ units: 2 })) }))
        .json()
        .results.map((r: { id: number }) => r.id);
      await sealAll(s.ledger, { maxEvents: 1000 });
      const { root, size } = (await s.get('/v1/epochs/0')).json();
      await s.sql('UPDATE events SET units = 200 WHERE id = ?', ids[4]);
      const tampered = await receiptOf(ids[4]);
      expect(tampered.event.units).toBe(200);
      const result = verifyReceipt(tampered, { root, size });
      expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/leaf hash does not match the event fields/) });
      // Re-hashing the altered row does not help: the stored root no longer covers it.
      const { leafHash } = await import('../../src/event/leaf.ts');
      const rehashed = { ...tampered, leaf_hash: Buffer.from(leafHash(tampered.event)).toString('hex') };
      expect(verifyReceipt(rehashed, { root, size })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/not to the trusted root/),
      });
      for (const id of ids.filter((_: number, i: number) => i !== 4))
        expect(verifyReceipt(await receiptOf(id), { root, size }).ok).toBe(true);
    });

    it('answers 404 for an unknown event and for one in a namespace the key may not read', async () => {
      const other = await s.ledger.keys.create('globex', ['globex/*']);
      const res = await s.app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { authorization: `Bearer ${other.key}`, 'content-type': 'application/json' },
        payload: event({ namespace: 'globex/x' }),
      });
      const id = res.json().results[0].id;
      expect((await s.get(`/v1/events/${id}/receipt`)).statusCode).toBe(404);
      expect((await s.get('/v1/events/999999/receipt')).json().error.code).toBe('not_found');
      expect((await s.get('/v1/events/abc/receipt')).statusCode).toBe(404);
    });
  });

  describe('epochs', () => {
    it('lists epochs after a given one, with a limit, and reads one', async () => {
      await s.post({ events: Array.from({ length: 10 }, () => event()) });
      await sealAll(s.ledger, { maxEvents: 3 });
      const page = (await s.get('/v1/epochs?after=0&limit=2')).json();
      expect(page.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([1, 2]);
      expect(page.next_after).toBe(2);
      const one = (await s.get('/v1/epochs/3')).json();
      expect(one).toMatchObject({ epoch: 3, size: 1, anchor: null, root: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect((await s.get('/v1/epochs/4')).statusCode).toBe(404);
      expect((await s.get('/v1/epochs?limit=0')).json().error.details[0].rule).toBe('min:1');
      expect((await s.get('/v1/epochs?limit=1001')).json().error.details[0].rule).toBe('max:1000');
    });
  });

  describe('usage with receipts', () => {
    it('pages every event of the range with its receipt; units over all pages equal the totals, even as events arrive', async () => {
      const now = Date.now();
      const res = await s.post({
        events: Array.from({ length: 250 }, (_, i) =>
          event({ units: (i % 9) + 1, ts: now - 100_000 + i * 10, action: i % 3 ? 'recall' : 'extract' }),
        ),
      });
      expect(res.json().results.every((r: { status: string }) => r.status === 'created')).toBe(true);
      await sealAll(s.ledger, { maxEvents: 100 });
      const q = `namespace=acme/prod&from=${now - 100_000}&to=${now}&receipts=true&limit=70`;
      let url = `/v1/usage?${q}`;
      let units = 0;
      let count = 0;
      let totals: { events: number; units: number } | undefined;
      for (let page = 0; ; page++) {
        const body = (await s.get(url)).json();
        totals ??= body.totals;
        expect(body.totals).toEqual(totals);
        for (const r of body.events) {
          expect(verifyReceipt(r).ok).toBe(true);
          units += r.event.units;
          count++;
        }
        if (page === 0) await s.post({ events: [event({ units: 1000, ts: now - 50_000 })] }); // arrives mid-paging
        if (!body.next_cursor) break;
        url = `/v1/usage?${q}&cursor=${body.next_cursor}`;
      }
      expect(count).toBe(250);
      expect({ events: count, units }).toEqual({ events: totals!.events, units: totals!.units });
      // A fresh read sees the late event.
      expect((await s.get(`/v1/usage?${q}`)).json().totals.events).toBe(251);
    });

    it('rejects a cursor it did not issue', async () => {
      const res = await s.get('/v1/usage?namespace=acme/prod&receipts=true&cursor=bogus');
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details[0]).toMatchObject({ path: 'cursor', rule: 'issued_cursor' });
    });
  });
});
