// Totals stay exact past SQLite's signed 64-bit sum: 1,025 events of the maximum units used to
// make every GET /v1/usage of the namespace answer 500 "integer overflow", for good.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP_BY } from '../../src/ledger/index.ts';
import { event, testServerOn, type TestServer } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, _engine) => {
  const MAX = Number.MAX_SAFE_INTEGER; // 2^53 − 1, the largest accepted units
  const BIG_MAX = BigInt(MAX);
  let s: TestServer;
  const ts = Date.now() - 60_000;

  async function post(n: number, units: number, namespace: string) {
    for (let done = 0; done < n; done += 1000) {
      const events = Array.from({ length: Math.min(1000, n - done) }, () => event({ namespace, action: 'recall', caller: 'c', units, ts }));
      const res = await s.post({ events });
      expect(res.statusCode).toBe(200);
      expect(res.json().results.every((r: { status: string }) => r.status === 'created')).toBe(true);
    }
  }

  const usage = async (q: string) => {
    const res = await s.get(`/v1/usage?${q}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };

  beforeAll(async () => {
    s = await testServerOn(fresh);
    // acme/at: exactly 2^63 = 1024 × (2^53 − 1) + 1024.
    await post(1024, MAX, 'acme/at');
    await post(1, 1024, 'acme/at');
    // acme/beyond: 2,100 × (2^53 − 1), past 2^64.
    await post(2100, MAX, 'acme/beyond');
  });
  afterAll(async () => {
    await s.close();
  });

  describe('usage totals at and beyond 2^63', () => {
    it('sums exactly 2^63 as a decimal string, for every group_by', async () => {
      for (const g of GROUP_BY) {
        const body = await usage(`namespace=acme/at&group_by=${g}`);
        expect(body.totals).toEqual({
          events: 1025,
          units: (2n ** 63n).toString(),
          billable_events: 1025,
          billable_units: (2n ** 63n).toString(),
        });
        const sum = body.groups.reduce((a: bigint, r: { units: number | string }) => a + BigInt(r.units), 0n);
        expect(sum).toBe(2n ** 63n);
      }
    });

    it('sums past 2^64 exactly, and receipts=true pages carry the same totals', async () => {
      const want = (2100n * BIG_MAX).toString();
      expect(BigInt(want) > 2n ** 64n).toBe(true);
      for (const g of GROUP_BY) expect((await usage(`namespace=acme/beyond&group_by=${g}`)).totals.units).toBe(want);
      const page = await usage('namespace=acme/beyond&receipts=true&limit=10');
      expect(page.totals).toEqual({ events: 2100, units: want, billable_events: 2100, billable_units: want });
      expect(page.events).toHaveLength(10);
    });

    it('keeps small totals as numbers', async () => {
      await post(3, 5, 'acme/small');
      expect((await usage('namespace=acme/small')).totals).toEqual({ events: 3, units: 15, billable_events: 3, billable_units: 15 });
      await post(1, MAX - 15, 'acme/small');
      expect((await usage('namespace=acme/small')).totals).toEqual({ events: 4, units: MAX, billable_events: 4, billable_units: MAX });
      await post(1, 1, 'acme/small');
      expect((await usage('namespace=acme/small')).totals).toEqual({
        events: 5,
        units: (BIG_MAX + 1n).toString(),
        billable_events: 5,
        billable_units: (BIG_MAX + 1n).toString(),
      });
    });
  });
});
