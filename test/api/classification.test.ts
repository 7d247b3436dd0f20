// Billable classification: usage totals report billable events and units, classified only from
// leaf fields (action at ts_ms) and the published history; a change applies from a stated time,
// never retroactively; a verifier recomputes the billable total from receipts alone.
import { describe, expect, it } from 'vitest';
import {
  classify,
  effectiveHistory,
  UNCONFIGURED,
  validateHistory,
  validatePolicy,
  type ClassificationPeriod,
} from '../../src/event/classification.ts';
import { configureClassification } from '../../src/ledger/classification-periods.ts';
import { RetroactiveClassificationError, GROUP_BY } from '../../src/ledger/index.ts';
import { billableExpr, eventsSql } from '../../src/ledger/sqlite/usage.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { event, serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

const MAX = Number.MAX_SAFE_INTEGER;

describe('classify (pure)', () => {
  const history: ClassificationPeriod[] = [
    { from_ms: 1000, billable: ['recall'], non_billable: ['ping'], other: 'info' },
    { from_ms: 2000, billable: ['recall', 'search'], non_billable: [], other: 'billable' },
  ];
  it('uses the period in force at ts_ms; before the first period every action is billable', () => {
    expect(classify('ping', 999, history)).toBe('billable');
    expect(classify('recall', 1000, history)).toBe('billable');
    expect(classify('ping', 1500, history)).toBe('non_billable');
    expect(classify('search', 1999, history)).toBe('info');
    expect(classify('search', 2000, history)).toBe('billable');
    expect(classify('ping', 2000, history)).toBe('billable'); // other = billable
    expect(effectiveHistory(history)[0]).toEqual(UNCONFIGURED);
    expect(classify('anything', 0, [])).toBe('billable');
  });

  it('refuses bad configurations with sentences naming the field and the rule', () => {
    const both = validatePolicy({ billable: ['a', 'b'], non_billable: ['b'] });
    expect(both.ok).toBe(false);
    expect(!both.ok && both.errors[0]).toMatchObject({
      path: 'non_billable',
      rule: 'disjoint:billable',
      message: expect.stringMatching(/"b" cannot be both billable and non_billable/),
    });
    const bad = validatePolicy({ billable: ['Recall'], other: 'free', extra: 1 });
    expect(!bad.ok && bad.errors.map((e) => e.rule)).toEqual([
      'unknown_field',
      'pattern:^[a-z0-9][a-z0-9._-]*$',
      'one_of:billable|non_billable|info',
    ]);
    const order = validateHistory([
      { from_ms: 5, billable: [], non_billable: [], other: 'info' },
      { from_ms: 5, billable: [], non_billable: [], other: 'info' },
    ]);
    expect(!order.ok && order.errors[0]).toMatchObject({ path: 'history[1].from_ms', rule: 'increasing' });
    expect(validatePolicy({ billable: ['x'.repeat(100_000)] }).ok).toBe(false);
  });
});

forEachEngine((fresh, engine) => {
  const s = serverEachTest(fresh);

  const usage = async (q: string) => {
    const res = await s.get(`/v1/usage?${q}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  const post = async (...events: Array<Record<string, unknown>>) => {
    const res = await s.post({ events });
    expect(res.statusCode, res.body).toBe(200);
  };

  it('without configuration every action is billable: billable sums equal the sums, but an event with 0 units is never a billable event', async () => {
    await post(
      event({ action: 'recall', units: 3 }),
      event({ action: 'recall', units: 2, caller: 'u3' }),
      event({ action: 'ping', units: 0, caller: 'u2' }),
    );
    for (const g of GROUP_BY) {
      const u = await usage(`namespace=acme/prod&group_by=${g}`);
      expect(u.totals).toEqual({ events: 3, units: 5, billable_events: 2, billable_units: 5 });
      for (const grp of u.groups) expect(grp.billable_units).toEqual(grp.units);
    }
    const byAction = await usage('namespace=acme/prod&group_by=action');
    expect(byAction.groups).toEqual([
      { key: 'ping', events: 1, units: 0, billable_events: 0, billable_units: 0 },
      { key: 'recall', events: 2, units: 5, billable_events: 2, billable_units: 5 },
    ]);
    const c = (await s.get('/v1/classification')).json();
    expect(c).toMatchObject({
      configured: false,
      in_force: UNCONFIGURED,
      history: [UNCONFIGURED],
      default_when_unconfigured: UNCONFIGURED,
    });
  });

  it('refused requests, recorded with 0 units, add no billable event even on a billable action', async () => {
    await configureClassification(s.ledger, { billable: ['recall'], non_billable: [], other: 'info' }, { now: Date.now() });
    await post(
      event({ action: 'recall', units: 1, caller: 'a' }),
      ...[1, 2, 3].map((i) => event({ action: 'recall', units: 0, caller: `r${i}`, metadata: { status: 429, admission: 'rate_limited' } })),
    );
    const u = await usage('namespace=acme/prod&group_by=action');
    expect(u.totals).toEqual({ events: 4, units: 1, billable_events: 1, billable_units: 1 });
  });

  it('reports billable_events and billable_units per group_by and in totals (exact beyond 2^53)', async () => {
    const first = await configureClassification(
      s.ledger,
      { billable: ['recall'], non_billable: ['ping'], other: 'info' },
      { now: Date.now() },
    );
    expect(first).toMatchObject({ changed: true, period: { from_ms: 0 } }); // an empty ledger may start at 0
    const ts = Date.now() - 3_600_000;
    await post(
      event({ action: 'recall', units: MAX, caller: 'a', ts }),
      event({ action: 'recall', units: MAX, caller: 'b', ts }),
      event({ action: 'ping', units: 7, caller: 'a', ts }),
      event({ action: 'search', units: 5, caller: 'b', ts }),
    );
    const big = (2n * BigInt(MAX)).toString();
    const all = (2n * BigInt(MAX) + 12n).toString();
    const byAction = await usage('namespace=acme/prod&group_by=action');
    expect(byAction.groups).toEqual([
      { key: 'ping', events: 1, units: 7, billable_events: 0, billable_units: 0 },
      { key: 'recall', events: 2, units: big, billable_events: 2, billable_units: big },
      { key: 'search', events: 1, units: 5, billable_events: 0, billable_units: 0 },
    ]);
    expect(byAction.totals).toEqual({ events: 4, units: all, billable_events: 2, billable_units: big });
    const byCaller = await usage('namespace=acme/prod&group_by=caller');
    expect(byCaller.groups).toEqual([
      { key: 'a', events: 2, units: (BigInt(MAX) + 7n).toString(), billable_events: 1, billable_units: MAX },
      { key: 'b', events: 2, units: (BigInt(MAX) + 5n).toString(), billable_events: 1, billable_units: MAX },
    ]);
    for (const g of ['hour', 'day']) expect((await usage(`namespace=acme/prod&group_by=${g}`)).totals.billable_units).toBe(big);
    // Several namespaces: each, and merged.
    await post(event({ namespace: 'acme/dev', action: 'recall', units: 4, ts }));
    const both = await usage('namespace=acme/prod,acme/dev&group_by=action');
    expect(both.totals).toMatchObject({ billable_events: 3, billable_units: (2n * BigInt(MAX) + 4n).toString() });
    expect(both.groups.find((g: { key: string }) => g.key === 'recall')).toMatchObject({ billable_events: 3 });
    // Nothing changed at a restart with the same policy (lists in any order).
    expect(
      (await configureClassification(s.ledger, { billable: ['recall'], non_billable: ['ping'], other: 'info' }, { now: Date.now() }))
        .changed,
    ).toBe(false);
  });

  it('a change applies from a stated time: earlier events keep their class, later ones take the new one', async () => {
    const now = Date.now();
    await configureClassification(s.ledger, { billable: ['recall'], non_billable: [], other: 'info' }, { now });
    await post(event({ action: 'recall', units: 2, ts: now - 60_000 }), event({ action: 'search', units: 10, ts: now - 60_000 }));
    const before = (await usage('namespace=acme/prod')).totals;
    expect(before).toMatchObject({ billable_events: 1, billable_units: 2 });

    // Two minutes ahead (events up to 5 minutes ahead are accepted): still scheduled when read below,
    // however slow the machine, where one second ahead could pass between the answer and the check.
    const from = Date.now() + 120_000;
    const changed = await configureClassification(
      s.ledger,
      { billable: ['recall', 'search'], non_billable: [], other: 'info' },
      { fromMs: from, now: Date.now() },
    );
    expect(changed).toMatchObject({ changed: true, period: { from_ms: from } });
    expect((await usage('namespace=acme/prod')).totals).toEqual(before); // nothing stored was reclassified
    // Events after the start are classified by the new period; a late event from before it by the old.
    await post(event({ action: 'search', units: 100, ts: from }), event({ action: 'search', units: 1000, ts: from - 1 }));
    expect((await usage('namespace=acme/prod')).totals).toMatchObject({ events: 4, billable_events: 2, billable_units: 102 });

    const c = (await s.get('/v1/classification')).json();
    expect(c.history.map((p: ClassificationPeriod) => p.from_ms)).toEqual([0, from]);
    expect(c.scheduled?.map((p: ClassificationPeriod) => p.from_ms)).toEqual([from]);
  });

  it('refuses a retroactive change, with a sentence saying the earliest allowed time; nothing is stored', async () => {
    const now = Date.now();
    await post(event({ action: 'recall', units: 1, ts: now - 10_000 }), event({ action: 'recall', units: 1, ts: now + 120_000 }));
    const policy = { billable: [], non_billable: ['recall'], other: 'info' as const };
    await expect(configureClassification(s.ledger, policy, { fromMs: now - 5000, now })).rejects.toThrow(
      /classification from .* is refused: the ledger holds an event at .*Use a --classification-from of .* or later/,
    );
    await expect(configureClassification(s.ledger, policy, { fromMs: now + 60_000, now })).rejects.toBeInstanceOf(
      RetroactiveClassificationError,
    );
    expect(await s.ledger.classification.history()).toEqual([]);
    // The default start is after every stored event: those keep their class.
    const { period } = await configureClassification(s.ledger, policy, { now });
    expect(period.from_ms).toBe(now + 120_001);
    expect((await usage('namespace=acme/prod')).totals).toMatchObject({ billable_events: 2, billable_units: 2 });
    // Nor may a new period start before (or at) the last one, or a stored one be rewritten.
    await expect(configureClassification(s.ledger, { ...policy, other: 'billable' }, { fromMs: now + 120_001, now })).rejects.toThrow(
      /a change is already scheduled from/,
    );
    await expect(s.sql('UPDATE classifications SET other = ?', 'billable')).rejects.toThrow(/append-only/);
    await expect(s.sql('DELETE FROM classifications')).rejects.toThrow(/append-only/);
  });

  it('a retroactive change is refused on a ledger with a period and no events too', async () => {
    const now = Date.now();
    await configureClassification(s.ledger, { billable: ['recall'], non_billable: [], other: 'info' }, { now });
    await expect(
      configureClassification(s.ledger, { billable: [], non_billable: [], other: 'info' }, { fromMs: now - 60_000, now }),
    ).rejects.toThrow(/never retroactive/);
  });

  it('GET /v1/classification needs a key, and publishes the history in force', async () => {
    expect((await s.get('/v1/classification', {})).statusCode).toBe(401);
    await post(event({ ts: Date.now() - 1000 }));
    const { period } = await configureClassification(
      s.ledger,
      { billable: ['recall'], non_billable: ['ping'], other: 'non_billable' },
      { now: Date.now() },
    );
    await new Promise((r) => setTimeout(r, Math.max(0, period.from_ms - Date.now() + 2)));
    const res = await s.get('/v1/classification');
    expect(res.statusCode).toBe(200);
    const c = res.json();
    expect(c.configured).toBe(true);
    expect(c.in_force).toEqual(period);
    expect(c.history).toEqual([UNCONFIGURED, period]); // before the first period: everything billable
    expect(validateHistory(c.history).ok).toBe(true);
  });

  it('a verifier recomputes billable_units and billable_events from receipts pages and the published classification', async () => {
    const t0 = Date.now() - 600_000;
    await post(...['recall', 'ping', 'search', 'recall'].map((action, i) => event({ action, units: 10 + i, ts: t0 + i })));
    await configureClassification(s.ledger, { billable: ['recall'], non_billable: ['ping'], other: 'info' }, { now: Date.now() });
    const from = Date.now() + 500;
    await configureClassification(
      s.ledger,
      { billable: ['recall', 'search'], non_billable: ['ping'], other: 'info' },
      { fromMs: from, now: Date.now() },
    );
    await post(...['recall', 'ping', 'search', 'other'].map((action, i) => event({ action, units: 100 + i, ts: from + i })));
    await post(event({ action: 'recall', units: 0, ts: from + 9, metadata: { admission: 'rate_limited' } })); // refused
    await sealAll(s.ledger, { maxEvents: 3 });

    const classification = (await s.get('/v1/classification')).json();
    let cursor: string | null = null;
    let billable = 0;
    let billableEvents = 0;
    let pages = 0;
    let totals: { billable_units: number; billable_events: number } | undefined;
    do {
      const page = await usage(`namespace=acme/prod&receipts=true&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      totals = page.totals;
      for (const receipt of page.events) {
        expect(verifyReceipt(receipt).ok).toBe(true);
        if (classify(receipt.event.action, receipt.event.ts_ms, classification.history) === 'billable' && receipt.event.units > 0) {
          billable += receipt.event.units;
          billableEvents++;
        }
      }
      cursor = page.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBeGreaterThan(1);
    // Before the first period all billable (10+11+12+13), then recall and search (100+102).
    expect(billable).toBe(46 + 202);
    expect(totals!.billable_units).toBe(billable);
    expect(billableEvents).toBe(6);
    expect(totals!.billable_events).toBe(billableEvents);
  });

  it.runIf(engine === 'sqlite')('the classified usage query keeps the (namespace, ts) index (EXPLAIN QUERY PLAN)', () => {
    const b = billableExpr([
      { from_ms: 5, billable: ['a', 'b'], non_billable: [], other: 'info' },
      { from_ms: 9, billable: [], non_billable: ['c'], other: 'billable' },
    ]);
    for (const key of ['action', 'caller', 'bucket', 'ts'] as const) {
      const plan = (
        s
          .db()
          .prepare(`EXPLAIN QUERY PLAN ${eventsSql(key, b.sql)}`)
          .all(...b.params, 'acme/prod', 0, 1, 10) as Array<{ detail: string }>
      )
        .map((p) => p.detail)
        .join('\n');
      expect(plan).toMatch(/SEARCH events USING INDEX events_namespace_ts \(namespace=\? AND ts>\? AND ts<\?\)/);
      expect(plan).not.toMatch(/SCAN events/);
    }
  });
});
