// Newest first over HTTP (what the web page's "Latest events" and "Epochs" read):
// /v1/usage?receipts=true&order=desc and /v1/epochs?order=desc&before=.
import { describe, expect, it } from 'vitest';
import { sealAll } from '../../src/seal/sealer.ts';
import { PAGE_DESC_SQL } from '../../src/ledger/sqlite/events.ts';
import { event, serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, engine) => {
  const s = serverEachTest(fresh);

  describe('usage receipts, order=desc', () => {
    it('pages the newest events first, in (ts, id) descending order, and all pages together are the whole range', async () => {
      const base = Math.floor(Date.now() / 60_000) * 60_000 - 86_400_000;
      // Two events share a timestamp: the higher id is newer.
      const ts = [5, 1, 9, 9, 3, 7, 2].map((m) => base + m * 60_000);
      const ids: number[] = (await s.post({ events: ts.map((t, i) => event({ ts: t, units: i + 1 })) }))
        .json()
        .results.map((r: { id: number }) => r.id);
      const expected = ids
        .map((id, i) => ({ id, ts: ts[i]! }))
        .sort((a, b) => b.ts - a.ts || b.id - a.id)
        .map((e) => e.id);

      const q = `namespace=acme/prod&receipts=true&order=desc&limit=3`;
      const first = (await s.get(`/v1/usage?${q}`)).json();
      expect(first.events.map((r: { id: number }) => r.id)).toEqual(expected.slice(0, 3));
      const seen: number[] = [];
      let url = `/v1/usage?${q}`;
      for (;;) {
        const body = (await s.get(url)).json();
        seen.push(...body.events.map((r: { id: number }) => r.id));
        if (!body.next_cursor) break;
        url = `/v1/usage?${q}&cursor=${body.next_cursor}`;
      }
      expect(seen).toEqual(expected);

      // Within a range: [from, to) holds, newest first.
      const ranged = (
        await s.get(`/v1/usage?namespace=acme/prod&receipts=true&order=desc&from=${base + 2 * 60_000}&to=${base + 9 * 60_000}`)
      ).json();
      expect(ranged.events.map((r: { event: { ts_ms: number } }) => (r.event.ts_ms - base) / 60_000)).toEqual([7, 5, 3, 2]);
    });

    it('keeps the default oldest first, and refuses a cursor used with the other order', async () => {
      await s.post({ events: [1, 2, 3].map((m) => event({ ts: Math.floor(Date.now() / 10) * 10 - 1000 + m })) });
      const asc = (await s.get('/v1/usage?namespace=acme/prod&receipts=true&limit=2')).json();
      expect(asc.events.map((r: { event: { ts_ms: number } }) => r.event.ts_ms % 10)).toEqual([1, 2]);
      const mixed = await s.get(`/v1/usage?namespace=acme/prod&receipts=true&limit=2&order=desc&cursor=${asc.next_cursor}`);
      expect(mixed.statusCode).toBe(400);
      expect(mixed.json().error.details[0]).toMatchObject({ path: 'cursor', rule: 'same_order' });

      const bad = await s.get('/v1/usage?namespace=acme/prod&receipts=true&order=newest');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.details[0]).toMatchObject({ path: 'order', rule: 'one_of:asc|desc' });
      const alone = await s.get('/v1/usage?namespace=acme/prod&order=desc');
      expect(alone.json().error.details[0]).toMatchObject({ path: 'order', rule: 'requires:receipts=true' });
    });

    it.runIf(engine === 'sqlite')('walks the (namespace, ts) index backwards, never a full scan or a sort (EXPLAIN QUERY PLAN)', () => {
      // The engine's own statement, not a copy of it.
      const sql = PAGE_DESC_SQL;
      const plan = (s.db().prepare(`EXPLAIN QUERY PLAN ${sql}`).all('acme/prod', 0, 1, 1, 1, 1, 1) as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join('\n');
      expect(plan).toMatch(/USING (COVERING )?INDEX events_namespace_ts/);
      expect(plan).not.toMatch(/TEMP B-TREE/);
    });
  });

  describe('epochs, order=desc', () => {
    it('lists the newest epochs first, however many there are, and pages back with before=', async () => {
      await s.post({ events: Array.from({ length: 600 }, () => event()) });
      await s.post({ events: Array.from({ length: 603 }, () => event()) });
      await sealAll(s.ledger, { maxEvents: 1 }); // 1203 epochs: more than one page of 1000
      const newest = (await s.get('/v1/epochs?order=desc&limit=20')).json();
      expect(newest.epochs.map((e: { epoch: number }) => e.epoch)).toEqual(Array.from({ length: 20 }, (_, i) => 1202 - i));
      expect(newest.next_before).toBe(1183);
      const next = (await s.get(`/v1/epochs?order=desc&limit=3&before=${newest.next_before}`)).json();
      expect(next.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([1182, 1181, 1180]);
      const last = (await s.get('/v1/epochs?order=desc&limit=1000&before=3')).json();
      expect(last).toEqual({ epochs: expect.any(Array), next_before: null });
      expect(last.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([2, 1, 0]);
      // The default is unchanged: oldest first from 0.
      expect((await s.get('/v1/epochs?limit=2')).json()).toMatchObject({ epochs: [{ epoch: 0 }, { epoch: 1 }], next_after: 1 });
      expect((await s.get('/v1/epochs?order=up')).json().error.details[0]).toMatchObject({ path: 'order', rule: 'one_of:asc|desc' });
      expect((await s.get('/v1/epochs?before=x')).json().error.details[0]).toMatchObject({ path: 'before', rule: 'type:integer' });
    });
  });
});
