// Totals net of corrections (issue 24): usage, the rollups and meters count the head of each
// event's chain at the original's time, whether the correction came before the original was
// sealed, while it is in the tail, or after both were rolled up. The reference for every answer is
// a second ledger that only ever held the heads, as plain events: a corrected ledger must answer
// exactly as that one does, for every group_by, time zone and meter.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { fsck } from '../../src/fsck/index.ts';
import { type Aggregation, GROUP_BY, type Ledger, SqliteLedger, type UsageQuery } from '../../src/ledger/index.ts';
import type { PostgresLedger } from '../../src/ledger/postgres/index.ts';
import { postgresReader } from '../../src/ledger/postgres/readers.ts';
import { sqliteReader } from '../../src/ledger/sqlite/readers.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import type { LedgerFactory } from '../helpers.ts';
import { receipts } from '../cli/run.ts';
import { forEachEngine } from '../support/engines.ts';

const NOW = Date.now();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 10:07 UTC three days ago: inside a bucket, and another local day in Kolkata than in UTC at +14 h. */
const T0 = Math.floor((NOW - 3 * DAY) / DAY) * DAY + 10 * HOUR + 7 * 60_000;

type Fields = { action: string; caller: string; units: number; ts: number };
const BASE: Record<'a' | 'b' | 'c' | 'd', Fields> = {
  a: { action: 'recall', caller: 'u1', units: 10, ts: T0 },
  b: { action: 'chat', caller: 'u2', units: 5, ts: T0 + HOUR },
  c: { action: 'ping', caller: 'u1', units: 7, ts: T0 + 14 * HOUR },
  d: { action: 'recall', caller: 'u3', units: 2, ts: T0 + DAY },
};

let counter = 0;
const item = (f: Fields) => {
  const v = validateEvent(
    { request_id: `ct-${++counter}`, namespace: 'acme/prod', ...f },
    { now: NOW, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
  );
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { event: v.event, owner: 'acme', keyId: 'abcdefabcdef' };
};

/** When the corrections are made: before any seal, after the originals were rolled up (the corrections in the tail), or both rolled up. */
const STAGES = ['unsealed', 'tail', 'rolled up'] as const;
type Stage = (typeof STAGES)[number];
type Fix = { kind: 'void' } | { kind: 'amend'; changes: Partial<Omit<Fields, 'ts'>> };

const lead = async (ledger: Ledger) => {
  await ledger.leadership.start(() => {});
  for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
};
const sealAll = async (ledger: Ledger) => {
  while (await sealNext(ledger, { maxEvents: 2 }));
};
/** Billing classification: recall and chat billable, ping not, others info. */
const classify = (ledger: Ledger) =>
  ledger.classification.append({ billable: ['recall', 'chat'], non_billable: ['ping'], other: 'info' }, { now: NOW - 30 * DAY });

const METERS: Array<[string, Aggregation, string[] | null]> = [
  ['sum', 'sum', null],
  ['count', 'count', null],
  ['callers', 'unique_count', null],
  ['recall-units', 'sum', ['recall']],
  ['recall-callers', 'unique_count', ['recall']],
  // Not sums: read from chain heads, a bucket holding a correction from its events.
  ['max', 'max', null],
  ['min', 'min', null],
  ['latest', 'latest', null],
];

forEachEngine((fresh: LedgerFactory, engine) => {
  const opened: Array<{ ledger: Ledger; cleanup: () => Promise<void> }> = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) {
      await o.ledger.close();
      await o.cleanup();
    }
  });
  const open = async () => {
    const o = await fresh();
    opened.push(o);
    await lead(o.ledger);
    await classify(o.ledger);
    for (const [name, aggregation, actions] of METERS)
      await o.ledger.meters.define('acme', name, { aggregation, actions, fromMs: NOW - 30 * DAY, retroactive: true }, NOW);
    return o.ledger;
  };

  /**
   * The base events written and corrected at `stage` (chains: a list of fixes per event, applied
   * in order), and a reference ledger holding only the heads; ids: the originals' ids.
   */
  const corrected = async (stage: Stage, fixes: Partial<Record<keyof typeof BASE, Fix[]>>) => {
    const ledger = await open();
    const keys = Object.keys(BASE) as Array<keyof typeof BASE>;
    const written = await ledger.events.write(keys.map((k) => item(BASE[k])));
    const ids = Object.fromEntries(keys.map((k, i) => [k, (written[i] as { id: number }).id])) as Record<keyof typeof BASE, number>;
    if (stage !== 'unsealed') await sealAll(ledger);
    const heads = new Map(keys.map((k) => [k, { ...BASE[k] } as Fields | null]));
    for (const k of keys) {
      let at = ids[k];
      for (const fix of fixes[k] ?? []) {
        const [res] = await ledger.events.correct([
          {
            kind: fix.kind,
            target: { id: at },
            request_id: `fix-${++counter}`,
            ...(fix.kind === 'amend' && { changes: fix.changes }),
            owner: 'acme',
            keyId: 'abcdefabcdef',
            notBeforeMs: NOW - 30 * DAY,
            receivedAtMs: NOW,
          },
        ]);
        expect(res, JSON.stringify(fix)).toMatchObject({ status: 'created' });
        at = (res as { id: number }).id;
        heads.set(k, fix.kind === 'void' ? null : { ...heads.get(k)!, ...fix.changes });
      }
    }
    if (stage === 'rolled up') await sealAll(ledger);
    const reference = await open();
    const kept = [...heads.values()].filter((h): h is Fields => h !== null);
    if (kept.length > 0) await reference.events.write(kept.map(item));
    if (stage === 'rolled up') await sealAll(reference);
    return { ledger, reference, ids };
  };

  /** Every group_by in UTC and two other zones, over the whole range and over whole days. */
  const questions = (): UsageQuery[] =>
    GROUP_BY.flatMap((groupBy) =>
      ['UTC', 'Asia/Kolkata', 'America/Los_Angeles'].flatMap((tz) => [
        { namespace: 'acme/prod', from: 0, to: NOW + DAY, groupBy, tz },
        { namespace: 'acme/prod', from: Math.floor(T0 / DAY) * DAY, to: Math.floor(T0 / DAY) * DAY + 2 * DAY, groupBy, tz },
      ]),
    );

  const sameUsage = async (ledger: Ledger, reference: Ledger, what: string) => {
    for (const q of questions()) {
      const got = await ledger.usage.query(q);
      const want = await reference.usage.query(q);
      expect({ groups: got.groups, totals: got.totals }, `${engine} ${what}: ${JSON.stringify(q)}`).toEqual({
        groups: want.groups,
        totals: want.totals,
      });
    }
  };

  const sameMeters = async (ledger: Ledger, reference: Ledger, what: string) => {
    for (const [name] of METERS)
      for (const tz of ['UTC', 'Asia/Kolkata'])
        for (const window of ['hour', 'day', 'month'] as const)
          for (const groupBy of [undefined, 'caller', 'action'] as const) {
            const q = {
              owner: 'acme',
              name,
              namespace: 'acme/prod',
              from: Math.floor(T0 / DAY) * DAY - DAY,
              to: Math.floor(T0 / DAY) * DAY + 3 * DAY,
              window,
              tz,
              ...(groupBy && { groupBy }),
            };
            const got = await ledger.meters.usage(q);
            const want = await reference.meters.usage(q);
            expect({ windows: got.windows, total: got.total }, `${engine} ${what}: ${JSON.stringify(q)}`).toEqual({
              windows: want.windows,
              total: want.total,
            });
          }
  };

  const totals = async (ledger: Ledger) =>
    (await ledger.usage.query({ namespace: 'acme/prod', from: 0, to: NOW + DAY, groupBy: 'action' })).totals;

  describe('usage net of corrections', () => {
    for (const stage of STAGES) {
      it(`a void removes the original's count and units from every group_by and zone (${stage})`, async () => {
        const { ledger, reference, ids } = await corrected(stage, { a: [{ kind: 'void' }] });
        expect(await totals(ledger)).toEqual({ events: 3, units: 14, billable_events: 2, billable_units: 7 });
        await sameUsage(ledger, reference, `void ${stage}`);
        // A snapshot from before the void still counts the original.
        const before = await ledger.usage.query({ namespace: 'acme/prod', from: 0, to: NOW + DAY, groupBy: 'caller', asOf: ids.d });
        expect(before.totals).toEqual({ events: 4, units: 24, billable_events: 3, billable_units: 17 });
      });

      it(`an amendment moves units, action and caller at the original's time (${stage})`, async () => {
        const { ledger, reference } = await corrected(stage, {
          a: [{ kind: 'amend', changes: { units: 3, action: 'search', caller: 'u9' } }],
          b: [{ kind: 'amend', changes: { units: 50 } }],
        });
        const byAction = await ledger.usage.query({ namespace: 'acme/prod', from: 0, to: NOW + DAY, groupBy: 'action' });
        expect(byAction.groups.map((g) => [g.key, g.events, g.units])).toEqual([
          ['chat', 1, 50],
          ['ping', 1, 7],
          ['recall', 1, 2],
          ['search', 1, 3],
        ]);
        const byCaller = await ledger.usage.query({ namespace: 'acme/prod', from: 0, to: NOW + DAY, groupBy: 'caller' });
        expect(byCaller.groups.map((g) => [g.key, g.events, g.units])).toEqual([
          ['u1', 1, 7],
          ['u2', 1, 50],
          ['u3', 1, 2],
          ['u9', 1, 3],
        ]);
        await sameUsage(ledger, reference, `amend ${stage}`);
      });

      it(`billable follows the head's action; an amendment then a void counts nothing (${stage})`, async () => {
        const { ledger, reference } = await corrected(stage, {
          c: [{ kind: 'amend', changes: { action: 'recall' } }],
          b: [{ kind: 'amend', changes: { action: 'ping', units: 8 } }],
          d: [{ kind: 'amend', changes: { units: 4 } }, { kind: 'void' }],
        });
        // a recall 10 and c recall 7 billable; b now ping (not billable); d gone.
        expect(await totals(ledger)).toEqual({ events: 3, units: 25, billable_events: 2, billable_units: 17 });
        await sameUsage(ledger, reference, `billable ${stage}`);
      });

      it(`meters (sum, count, unique_count; max, min, latest) count chain heads (${stage})`, async () => {
        const { ledger, reference } = await corrected(stage, {
          a: [{ kind: 'void' }],
          c: [{ kind: 'amend', changes: { caller: 'u2', action: 'recall' } }],
          d: [{ kind: 'amend', changes: { units: 0 } }],
        });
        const q = { owner: 'acme', namespace: 'acme/prod', from: 0, to: NOW + DAY, window: 'month' as const, tz: 'UTC' };
        const total = async (name: string) => (await ledger.meters.usage({ ...q, from: T0 - DAY, to: T0 + 2 * DAY, name })).total;
        expect(await total('sum')).toBe(5 + 7 + 0);
        expect(await total('count')).toBe(3);
        expect(await total('callers')).toBe(2); // u1's only event was voided, c moved to u2
        expect(await total('recall-units')).toBe(7);
        expect(await total('recall-callers')).toBe(2); // u2 (c), u3 (d, 0 units)
        expect(await total('max')).toBe(7); // a's 10 was voided
        expect(await total('min')).toBe(0); // d amended to 0
        expect(await total('latest')).toBe(0); // d, the latest event by time, now 0 units
        await sameMeters(ledger, reference, `meters ${stage}`);
      });
    }
  });

  describe('rollup check and rebuild after corrections', () => {
    const check = async (ledger: Ledger) => {
      if (engine === 'sqlite') return fsck(sqliteReader((ledger as SqliteLedger).db, 'test'));
      const client = await (ledger as unknown as PostgresLedger).pool.connect();
      try {
        return await fsck(postgresReader(client, 'test'));
      } finally {
        client.release();
      }
    };

    it('fsck finds the rollups equal to their events; a rebuild gives the same net answers', async () => {
      const { ledger, reference } = await corrected('rolled up', {
        a: [{ kind: 'amend', changes: { units: 3, action: 'search', caller: 'u9' } }, { kind: 'void' }],
        b: [{ kind: 'amend', changes: { action: 'ping' } }],
        c: [{ kind: 'void' }],
      });
      expect((await check(ledger)).rollup_differences).toBe(0);
      await sameUsage(ledger, reference, 'before rebuild');
      await ledger.epochs.clearRollups();
      await sealNext(ledger, { maxEvents: 10 }); // catches the rollups up, epoch by epoch
      expect((await check(ledger)).rollup_differences).toBe(0);
      await sameUsage(ledger, reference, 'after rebuild');
      await sameMeters(ledger, reference, 'after rebuild');
    });
  });
});

describe('receipts fsck and receipts rollups rebuild after corrections (a real process, SQLite file)', () => {
  it('fsck is clean, rebuild repeats the same rows, and usage counts the heads', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corrections-rollups-'));
    try {
      const file = join(dir, 'ledger.db');
      const ledger = new SqliteLedger(file);
      const written = await ledger.events.write((Object.values(BASE) as Fields[]).map(item));
      const [a, b] = written.map((w) => (w as { id: number }).id);
      await sealAll(ledger);
      const fix = (id: number, kind: 'void' | 'amend', changes?: Partial<Fields>) =>
        ledger.events.correct([
          {
            kind,
            target: { id },
            request_id: `cli-fix-${++counter}`,
            ...(changes && { changes }),
            owner: 'acme',
            keyId: 'abcdefabcdef',
            notBeforeMs: 0,
            receivedAtMs: NOW,
          },
        ]);
      expect(await fix(a!, 'void')).toMatchObject([{ status: 'created' }]);
      expect(await fix(b!, 'amend', { units: 40, caller: 'u7' })).toMatchObject([{ status: 'created' }]);
      await sealAll(ledger);
      const rows = () => ledger.db.prepare('SELECT * FROM usage_buckets ORDER BY bucket, action').all();
      const stored = rows();
      await ledger.close();

      const checked = receipts(['fsck', '--db', file, '--json']);
      expect(checked.code, checked.stdout + checked.stderr).toBe(0);
      expect(JSON.parse(checked.stdout)).toMatchObject({ ok: true, rollup_differences: 0 });
      const rebuilt = receipts(['rollups', 'rebuild', '--db', file]);
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      const again = receipts(['fsck', '--db', file, '--json']);
      expect(again.code, again.stdout + again.stderr).toBe(0);

      const after = new SqliteLedger(file);
      try {
        expect(after.db.prepare('SELECT * FROM usage_buckets ORDER BY bucket, action').all()).toEqual(stored);
        const t = await after.usage.query({ namespace: 'acme/prod', from: 0, to: NOW + DAY, groupBy: 'caller' });
        expect(t.groups.map((g) => [g.key, g.events, g.units])).toEqual([
          ['u1', 1, 7],
          ['u3', 1, 2],
          ['u7', 1, 40],
        ]);
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
