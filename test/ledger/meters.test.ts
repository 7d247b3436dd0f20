// Meters answer exactly what the raw events say: a property test over random meters (every
// aggregation, action lists, versions from stated times, retroactive ones), ranges, windows, time
// zones, groupings and seal points, on both engines, with events arriving late into time already
// rolled up, a tail never sealed, and voids and amendments before and after rollup. The oracle
// below folds the events it wrote, in plain TypeScript, from the rule as documented: an event
// counts under the latest version (highest number) whose from is at or before its ts, when that
// version takes its action; of a corrected event only its chain's head counts, at its ts (latest:
// ties in time by the head's ledger position).
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent, type NormalizedEvent } from '../../src/event/validate.ts';
import { AGGREGATIONS, type Ledger, MeterError, type MeterUsageQuery, type MeterVersion } from '../../src/ledger/index.ts';
import { instantIn, planMeterQuery } from '../../src/ledger/meters.ts';
import { byCodePoint } from '../../src/ledger/rollups.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { type Window, windowsOf } from '../../src/usage/time-zone.ts';
import { forEachEngine } from '../support/engines.ts';
import { rng } from '../support/random.ts';

const NOW = Date.now();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MAX = Number.MAX_SAFE_INTEGER;
const ZONES = [
  'UTC',
  'Europe/London',
  'Europe/Berlin',
  'America/Los_Angeles',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
];
const ACTIONS = ['chat', 'recall', 'ping', 'search.v2', '0-batch'];
const CALLERS = ['u1', 'u2', 'u3', 'U4', 'ü5', '𝔁-emoji', 'Z'];
const WINDOWS: Window[] = ['hour', 'day', 'month'];

/** A row of the ledger: an event, or a correction (kind, chain: the original's id). */
type Stored = {
  id: number;
  ts: number;
  action: string;
  caller: string;
  units: number;
  namespace: string;
  kind?: 'void' | 'amend';
  chain?: number;
};

/** The head of each chain (a void head: none). */
function headsOf(rows: readonly Stored[]): Stored[] {
  const heads = new Map<number, Stored>();
  for (const e of [...rows].sort((a, b) => a.id - b.id)) heads.set(e.chain ?? e.id, e);
  return [...heads.values()].filter((e) => e.kind !== 'void');
}

let counter = 0;
function ev(fields: Record<string, unknown>): NormalizedEvent {
  const v = validateEvent(
    { request_id: `m-${++counter}`, ...fields },
    { now: NOW, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
  );
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.event;
}

const exact = (n: bigint) => (n <= BigInt(MAX) ? Number(n) : n.toString());

/** What the raw events say for q under these versions. */
function oracle(events: Stored[], q: MeterUsageQuery, versions: MeterVersion[]) {
  const agg = versions[0]!.aggregation;
  const counts = (e: Stored) => {
    let v: MeterVersion | undefined;
    for (const x of versions) if (x.from_ms <= e.ts && (!v || x.version > v.version)) v = x;
    return v !== undefined && (v.actions === null || v.actions.includes(e.action));
  };
  const picked = headsOf(events).filter((e) => e.namespace === q.namespace && e.ts >= q.from && e.ts < q.to && counts(e));
  const aggregate = (es: Stored[]): number | string => {
    switch (agg) {
      case 'sum':
        return exact(es.reduce((s, e) => s + BigInt(e.units), 0n));
      case 'count':
        return es.length;
      case 'max':
        return Math.max(...es.map((e) => e.units));
      case 'min':
        return Math.min(...es.map((e) => e.units));
      case 'unique_count':
        return new Set(es.map((e) => e.caller)).size;
      case 'latest':
        // By event time, ties by ledger order (the events were written one batch after another).
        return es.reduce((a, e) => (e.ts > a.ts || (e.ts === a.ts && e.id > a.id) ? e : a)).units;
    }
  };
  const windows = windowsOf(q.tz, q.window, q.from, q.to);
  const out: Array<{ start: string; end: string; value: number | string; group?: string }> = [];
  for (const w of windows) {
    const inW = picked.filter((e) => e.ts >= w.start && e.ts < w.end);
    if (inW.length === 0) continue;
    const groups = new Map<string, Stored[]>();
    for (const e of inW) {
      const k = q.groupBy === 'action' ? e.action : q.groupBy === 'caller' ? e.caller : '';
      groups.set(k, [...(groups.get(k) ?? []), e]);
    }
    for (const k of [...groups.keys()].sort(byCodePoint))
      out.push({
        start: instantIn(q.tz, w.start),
        end: instantIn(q.tz, w.end),
        value: aggregate(groups.get(k)!),
        ...(q.groupBy && { group: k }),
      });
  }
  return { windows: out, total: picked.length === 0 ? null : aggregate(picked) };
}

forEachEngine((fresh, engine) => {
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  afterEach(async () => {
    await ledger.close();
    await cleanup();
  });

  const open = async () => {
    ({ ledger, cleanup } = await fresh());
    await ledger.leadership.start(() => {});
    for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
  };

  describe('meters', () => {
    it('equal the raw events for every aggregation over random ranges, windows, zones, groups, versions and seal points', {
      timeout: 300_000,
    }, async () => {
      await open();
      const seed = Number(process.env.METER_SEED ?? Date.now() % 100_000);
      const r = rng(seed);
      const start = NOW - 30 * DAY;
      // Meters: each aggregation once with every action in one version (the caller-day rollups
      // answer it), and once with versions: action lists, a later from, a retroactive one.
      const meters: Array<{ name: string; versions: MeterVersion[] }> = [];
      for (const agg of AGGREGATIONS) {
        await ledger.meters.define('acme', `${agg}-all`, { aggregation: agg, actions: null, fromMs: start - DAY, retroactive: true }, NOW);
        await ledger.meters.define(
          'acme',
          `${agg}-v`,
          { aggregation: agg, actions: ['chat', 'recall'], fromMs: start + r.int(0, 5 * DAY), retroactive: true },
          NOW - 2 * HOUR,
        );
        await ledger.meters.define(
          'acme',
          `${agg}-v`,
          { aggregation: agg, actions: null, fromMs: start + r.int(10, 20) * DAY + r.int(0, DAY), retroactive: true },
          NOW - HOUR,
        );
        await ledger.meters.define(
          'acme',
          `${agg}-v`,
          {
            aggregation: agg,
            actions: ['ping', 'search.v2', 'chat'],
            fromMs: start + r.int(3, 8) * DAY + r.int(0, HOUR),
            retroactive: true,
          },
          NOW,
        );
      }
      for (const agg of AGGREGATIONS)
        for (const name of [`${agg}-all`, `${agg}-v`]) meters.push({ name, versions: await ledger.meters.versions('acme', name) });
      expect(meters.find((m) => m.name === 'sum-v')!.versions.map((v) => v.version)).toEqual([1, 2, 3]);

      const stored: Stored[] = [];
      const hot = Array.from({ length: 20 }, () => start + r.int(0, 30 * DAY)); // equal times: latest's ties
      const ts = () => {
        const t = start + r.int(0, 30 * DAY);
        const edge = Math.floor(t / 900_000) * 900_000;
        return r.pick([t, edge, edge - 1, edge + 1, Math.floor(t / HOUR) * HOUR, Math.floor(t / DAY) * DAY, r.pick(hot)]);
      };
      const write = async (n: number) => {
        const batch = Array.from({ length: n }, () => ({
          namespace: r.next() < 0.9 ? 'acme/prod' : 'acme/dev',
          action: r.pick(ACTIONS),
          caller: r.pick(CALLERS),
          units: r.next() < 0.02 ? MAX - r.int(0, 3) : r.next() < 0.1 ? 0 : r.int(1, 1000),
          ts: ts(),
        }));
        const results = await ledger.events.write(batch.map((b) => ({ event: ev(b), owner: 'acme', keyId: 'abcdefabcdef' })));
        results.forEach((res, i) => {
          if (res.status !== 'created') throw new Error(`write: ${JSON.stringify(res)}`);
          stored.push({ id: res.id, ...batch[i]! });
        });
      };
      const correctOne = async (target: Stored, kind: 'void' | 'amend', changes: Partial<Stored>): Promise<Stored> => {
        const [res] = await ledger.events.correct([
          {
            kind,
            target: { id: target.id },
            request_id: `fix-${++counter}`,
            ...(kind === 'amend' && { changes }),
            owner: 'acme',
            keyId: 'abcdefabcdef',
            notBeforeMs: 0,
            receivedAtMs: NOW,
          },
        ]);
        if (res!.status !== 'created') throw new Error(`correct: ${JSON.stringify(res)}`);
        const row: Stored = {
          ...target,
          ...(kind === 'amend' ? changes : { units: 0 }),
          id: res!.id,
          kind,
          chain: target.chain ?? target.id,
        };
        stored.push(row);
        return row;
      };
      // Voids and amendments (units, action, caller) of random heads, some amended then voided.
      let corrections = 0;
      const correct = async (n: number) => {
        for (let i = 0; i < n; i++, corrections++) {
          const twice = r.next() < 0.2;
          const changes: Partial<Stored> = {
            ...(r.next() < 0.6 && { units: r.next() < 0.1 ? 0 : r.int(1, 2000) }),
            ...(r.next() < 0.4 && { action: r.pick(ACTIONS) }),
            ...(r.next() < 0.4 && { caller: r.pick(CALLERS) }),
          };
          const target = r.pick(headsOf(stored));
          // An amendment must change something (one that changes nothing is refused).
          if (!Object.entries(changes).some(([k, v]) => target[k as keyof Stored] !== v)) changes.units = target.units === 1 ? 2 : 1;
          const at = await correctOne(target, twice || r.next() < 0.6 ? 'amend' : 'void', changes);
          if (twice) await correctOne(at, 'void', {});
        }
      };
      // Rounds of writes, corrections and seals of random sizes: later rounds land in time already
      // rolled up, and correct events already rolled up.
      for (let round = 0; round < 10; round++) {
        await write(r.int(20, 250));
        await correct(r.int(0, 25));
        const seals = r.int(0, 3);
        for (let i = 0; i < seals; i++) await sealNext(ledger, { maxEvents: r.int(1, 300) });
      }
      // Enough sealed (and rolled up) to matter, whatever the seed drew: a quarter at least.
      for (let i = 0; i < 20 && ((await ledger.epochs.latest())?.last_seq ?? 0) <= stored.length / 4; i++)
        await sealNext(ledger, { maxEvents: 300 });
      await write(r.int(10, 80)); // a tail never sealed
      await correct(r.int(5, 20));

      let checked = 0;
      let counted = 0; // unique_count questions whose rollup callers are counted in SQL (distinct)
      for (let i = 0; i < 700; i++) {
        const m = r.pick(meters);
        const window = r.pick(WINDOWS);
        // UTC often: its days and months are whole UTC days, which the caller-day rollups answer.
        const tz = r.next() < 0.35 ? 'UTC' : r.pick(ZONES);
        const a = start - DAY + r.int(0, 32 * DAY);
        const edges = (x: number) => (r.next() < 0.3 ? Math.floor(x / 900_000) * 900_000 : r.next() < 0.3 ? Math.floor(x / DAY) * DAY : x);
        const from = edges(a);
        const span = r.pick([1, 900_000, HOUR, DAY, 7 * DAY, r.int(1, 33 * DAY)]);
        const to = Math.max(from + 1, edges(from + span));
        const groupBy = r.pick([undefined, undefined, 'caller', 'action'] as const);
        const q: MeterUsageQuery = {
          owner: 'acme',
          name: m.name,
          namespace: r.next() < 0.9 ? 'acme/prod' : 'acme/dev',
          from,
          to,
          window,
          tz,
          ...(groupBy && { groupBy }),
        };
        const want = oracle(stored, q, m.versions);
        const got = await ledger.meters.usage(q);
        if (planMeterQuery(q, m.versions).parts.some((p) => p.kind === 'distinct')) counted++;
        expect({ windows: got.windows, total: got.total }, `${engine} seed ${seed}, query ${JSON.stringify(q)}`).toEqual(want);
        checked++;
      }
      expect(checked).toBe(700);
      // Distinct callers counted in SQL (every caller day with n > 0, less the callers the tail and
      // the edges touch, which are counted from all their rows): unique_count of every action by
      // day or month in UTC, over whole days and days cut at either edge.
      const unique = meters.find((m) => m.name === 'unique_count-all')!;
      for (let i = 0; i < 150; i++) {
        const a = Math.floor((start + r.int(-1, 29) * DAY) / DAY) * DAY + r.pick([0, 0, r.int(1, DAY - 1)]);
        const q: MeterUsageQuery = {
          owner: 'acme',
          name: unique.name,
          namespace: r.next() < 0.9 ? 'acme/prod' : 'acme/dev',
          from: a,
          to: a + r.int(2, 32) * DAY + r.pick([0, 0, r.int(1, DAY - 1), -r.int(1, DAY - 1)]),
          window: r.pick(['day', 'month'] as const),
          tz: 'UTC',
        };
        if (planMeterQuery(q, unique.versions).parts.some((p) => p.kind === 'distinct')) counted++;
        expect(await ledger.meters.usage(q), `${engine} seed ${seed}, query ${JSON.stringify(q)}`).toMatchObject(
          oracle(stored, q, unique.versions),
        );
      }
      expect(counted, 'unique_count questions counted in SQL').toBeGreaterThan(140);
      const latest = await ledger.epochs.latest();
      expect(latest?.last_seq ?? 0, `${engine}: sealed`).toBeGreaterThan(stored.length / 4);
      expect(corrections, 'corrections written').toBeGreaterThan(20);
    });

    it('keeps versions: a past from needs retroactive, an unchanged PUT adds nothing, the aggregation stays', async () => {
      await open();
      const created = await ledger.meters.define('acme', 'tokens', { aggregation: 'sum', actions: ['chat'] }, NOW);
      expect(created).toMatchObject({ created: true, version: { version: 1, from_ms: NOW, actions: ['chat'] } });
      const again = await ledger.meters.define('acme', 'tokens', { aggregation: 'sum', actions: ['chat'] }, NOW + 1);
      expect(again).toMatchObject({ created: false, version: { version: 1 } });
      const past = () => ledger.meters.define('acme', 'tokens', { aggregation: 'sum', actions: null, fromMs: NOW - DAY }, NOW + 2);
      await expect(past()).rejects.toMatchObject({ field: 'from', rule: 'requires:retroactive=true' });
      await expect(ledger.meters.define('acme', 'tokens', { aggregation: 'max', actions: null }, NOW + 2)).rejects.toBeInstanceOf(
        MeterError,
      );
      expect(await ledger.meters.versions('acme', 'tokens')).toHaveLength(1); // nothing stored by the refusals
      await ledger.meters.define('acme', 'tokens', { aggregation: 'sum', actions: null, fromMs: NOW - DAY, retroactive: true }, NOW + 3);
      expect((await ledger.meters.versions('acme', 'tokens')).map((v) => [v.version, v.from_ms])).toEqual([
        [1, NOW],
        [2, NOW - DAY],
      ]);
      // Per owner: another owner sees none of it.
      expect(await ledger.meters.versions('other', 'tokens')).toEqual([]);
      expect((await ledger.meters.list('acme')).map((v) => [v.name, v.version])).toEqual([['tokens', 2]]);
    });
  });
});
