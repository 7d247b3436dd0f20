// A run longer than one read (SQLite reads leaves 16,384 at a time, PostgreSQL 5,000 rows a page)
// is sealed exactly: every event once, in ledger order, the root of the tree over those leaves,
// and a cap that falls inside a slice leaves the rest, in order, for the next epoch.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { buildTree, rootOf } from '../../src/merkle/tree.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh) => {
  const s = serverEachTest(fresh);

  describe('sealing a run longer than one read', () => {
    it('70,001 events: an epoch capped at 66,000 inside a slice, then the other 4,001, each with the root of its leaves', async () => {
      const now = Date.now();
      for (let b = 0; b * 1000 < 70_001; b++) {
        const items = Array.from({ length: Math.min(1000, 70_001 - b * 1000) }, (_, i) => {
          const v = validateEvent(
            {
              request_id: `r-${b}-${i}`,
              namespace: 'acme/prod',
              action: 'recall',
              caller: 'user-1',
              units: 1,
              ts: now - 70_001 + b * 1000 + i,
            },
            { now, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
          );
          if (!v.ok) throw new Error(JSON.stringify(v.errors));
          return { event: v.event, owner: 'acme-inc', keyId: 'abcdefabcdef' };
        });
        await s.ledger.events.write(items);
      }
      const e0 = (await sealNext(s.ledger, { maxEvents: 66_000 }))!;
      const e1 = (await sealNext(s.ledger, { maxEvents: 66_000 }))!;
      expect(await sealNext(s.ledger, { maxEvents: 66_000 })).toBeNull();
      expect([e0.size, e0.first_seq, e0.last_seq, e1.size, e1.first_seq, e1.last_seq]).toEqual([66_000, 1, 66_000, 4_001, 66_001, 70_001]);
      const rows = await s.sql<{ id: number; seq: number; ts: number; leaf_hash: Buffer }>(
        'SELECT id, seq, ts, leaf_hash FROM events ORDER BY seq',
      );
      expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 70_001 }, (_, i) => i + 1));
      // Ledger order is id order: nothing reordered across slices or pages.
      expect(rows.every((r, i) => i === 0 || Number(r.id) > Number(rows[i - 1]!.id))).toBe(true);
      for (const [e, part] of [
        [e0, rows.slice(0, 66_000)],
        [e1, rows.slice(66_000)],
      ] as const) {
        expect(e.root).toBe(Buffer.from(rootOf(buildTree(new Uint8Array(Buffer.concat(part.map((r) => r.leaf_hash)))))).toString('hex'));
        expect([e.first_ts_ms, e.last_ts_ms]).toEqual([Number(part[0]!.ts), Number(part.at(-1)!.ts)]);
      }
    });
  });
});
