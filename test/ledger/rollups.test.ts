// Usage from rollups is exactly usage from the raw events: a property test over thousands of
// random ranges, groupings, time zones, snapshots and epoch boundaries, on both engines, with
// events arriving late into time already rolled up, epochs sealed before rollups reach them, and
// a tail never sealed, and corrections (voids and amendments) of events before and after they were
// rolled up. The oracle below folds the events it wrote, in plain TypeScript: each chain's head at
// the snapshot, at the original's time.
import { afterEach, describe, expect, it } from 'vitest';
import { classify, type ClassificationPeriod } from '../../src/event/classification.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent, type NormalizedEvent } from '../../src/event/validate.ts';
import { byCodePoint } from '../../src/ledger/rollups.ts';
import { GROUP_BY, type GroupBy, type Ledger, type UsageQuery } from '../../src/ledger/index.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { keyOf, windowStart, type Window } from '../../src/usage/time-zone.ts';
import { forEachEngine } from '../support/engines.ts';
import { rng } from '../support/random.ts';

const NOW = Date.now();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MAX = Number.MAX_SAFE_INTEGER;
const QUERIES = Number(process.env.ROLLUP_QUERIES ?? 2000);
const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/Los_Angeles',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'America/St_Johns',
];
/** Newfoundland changed its clocks at 00:01 in 1988: window edges off the 15-minute grid (read from events). */
const OLD_START = Date.UTC(1988, 2, 20);
const OLD_SPAN = 230 * 24 * 3_600_000;
const ACTIONS = ['chat', 'recall', 'ping', 'search.v2', '0-batch'];
const CALLERS = ['u1', 'u2', 'u3', 'U4', 'ü5', '𝔁-emoji', 'Z'];

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

/** The head of each chain among the rows up to position asOf (a void head: none). */
function headsOf(rows: readonly Stored[], asOf = MAX): Stored[] {
  const heads = new Map<number, Stored>();
  for (const e of [...rows].sort((a, b) => a.id - b.id)) if (e.id <= asOf) heads.set(e.chain ?? e.id, e);
  return [...heads.values()].filter((e) => e.kind !== 'void');
}

let counter = 0;
function ev(fields: Record<string, unknown>): NormalizedEvent {
  const input = { request_id: `r-${++counter}`, ...fields };
  // Events of 1988 are written as a ledger migrated from long ago would hold them.
  const maxAgeMs = fields.namespace === 'acme/1988' ? NOW - OLD_START + 86_400_000 : DEFAULT_MAX_AGE_MS;
  const v = validateEvent(input, { now: NOW, maxAgeMs, maxFutureMs: DEFAULT_MAX_FUTURE_MS });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.event;
}

const WINDOW: Partial<Record<GroupBy, Window>> = { hour: 'hour', day: 'day', month: 'month' };

/** What the raw events say: the same groups, sums and order the API promises. */
function oracle(events: Stored[], q: UsageQuery, history: ClassificationPeriod[]) {
  const tz = q.tz ?? 'UTC';
  const w = WINDOW[q.groupBy];
  const groups = new Map<string | number, { events: number; units: bigint; billable_events: number; billable_units: bigint }>();
  const totals = { events: 0, units: 0n, billable_events: 0, billable_units: 0n };
  for (const e of headsOf(events, q.asOf)) {
    if (e.namespace !== q.namespace || e.ts < q.from || e.ts >= q.to) continue;
    const k = w ? windowStart(tz, w, e.ts) : q.groupBy === 'action' ? e.action : e.caller;
    const g = groups.get(k) ?? { events: 0, units: 0n, billable_events: 0, billable_units: 0n };
    const billable = classify(e.action, e.ts, history) === 'billable';
    for (const x of [g, totals]) {
      x.events++;
      x.units += BigInt(e.units);
      if (billable && e.units > 0) x.billable_events++;
      if (billable) x.billable_units += BigInt(e.units);
    }
    groups.set(k, g);
  }
  const exact = (n: bigint) => (n <= BigInt(MAX) ? Number(n) : n.toString());
  const keys = [...groups.keys()];
  if (w) (keys as number[]).sort((a, b) => a - b);
  else (keys as string[]).sort(byCodePoint);
  const shown = (x: typeof totals) => ({ ...x, units: exact(x.units), billable_units: exact(x.billable_units) });
  return {
    groups: keys.map((k) => ({ key: w ? keyOf(tz, w, k as number) : (k as string), ...shown(groups.get(k)!) })),
    totals: shown(totals),
  };
}

forEachEngine((fresh, engine) => {
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  afterEach(async () => {
    await ledger.close();
    await cleanup();
  });

  describe('usage from rollups', () => {
    it('puts each event of a bucket that a window edge cuts in its own window (Newfoundland, 1988-04-03 00:01 local)', async () => {
      ({ ledger, cleanup } = await fresh());
      await ledger.leadership.start(() => {});
      for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
      // The clocks went from 00:01 (−03:30) to 02:01 (−01:30) at 03:31 UTC: the hour windows
      // [03:30, 03:31) and [03:31, 04:30) share the bucket 03:30–03:45.
      const times = [
        Date.UTC(1988, 3, 3, 3, 30, 30),
        Date.UTC(1988, 3, 3, 3, 31),
        Date.UTC(1988, 3, 3, 3, 44),
        Date.UTC(1988, 3, 3, 3, 50),
      ];
      const stored: Stored[] = [];
      const results = await ledger.events.write(
        times.map((ts, i) => ({
          event: ev({ namespace: 'acme/1988', action: 'chat', caller: 'u1', units: i + 1, ts }),
          owner: 'acme',
          keyId: 'abcdefabcdef',
        })),
      );
      results.forEach((r, i) =>
        stored.push({ id: (r as { id: number }).id, ts: times[i]!, action: 'chat', caller: 'u1', units: i + 1, namespace: 'acme/1988' }),
      );
      await sealNext(ledger, { maxEvents: 10 }); // rolled up: the bucket's rows must be split again
      const q: UsageQuery = {
        namespace: 'acme/1988',
        from: Date.UTC(1988, 3, 2),
        to: Date.UTC(1988, 3, 5),
        groupBy: 'hour',
        tz: 'America/St_Johns',
      };
      const got = await ledger.usage.query(q);
      expect(got.groups.map((g) => [g.key, g.events])).toEqual([
        ['1988-04-03T00:00:00-03:30', 1],
        ['1988-04-03T02:01:00-01:30', 3],
      ]);
      expect({ groups: got.groups, totals: got.totals }).toEqual(oracle(stored, q, []));
    });

    it('pages a snapshot whose later groups were rolled up after it: full pages, no holes, no endless "more"', async () => {
      ({ ledger, cleanup } = await fresh());
      await ledger.leadership.start(() => {});
      for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
      // Mid-bucket: the range [at - DAY, at + DAY) then ends in a part-bucket read from its events.
      // Two days back, so that at + DAY is in the past whatever NOW's place in its bucket (one day
      // back put it up to 7.5 minutes in the future: refused past 5, a failure 1 run in 6).
      const at = Math.floor((NOW - 2 * DAY) / 900_000) * 900_000 + 450_000;
      const write = async (actions: string[], ts = at) => {
        const res = await ledger.events.write(
          actions.map((action) => ({
            event: ev({ namespace: 'acme/prod', action, caller: 'u1', units: 1, ts }),
            owner: 'acme',
            keyId: 'abcdefabcdef',
          })),
        );
        return res.map((r) => (r as { id: number }).id);
      };
      // The snapshot holds "z" only; "a" to "e" come after it, and all of them are rolled up. "z"
      // lies in the range's last part-bucket: a part never cut short, whose row a page that reads on
      // past cancelled keys must not count again.
      const [snapshot] = await write(['z'], at + DAY - 1);
      await write(['a', 'b', 'c', 'd', 'e', 'y']);
      await sealNext(ledger, { maxEvents: 100 });
      expect((await ledger.epochs.latest())?.last_seq).toBeGreaterThan(snapshot!);
      const q: UsageQuery = { namespace: 'acme/prod', from: at - DAY, to: at + DAY, groupBy: 'action', asOf: snapshot! };
      for (const limit of [1, 2, 3]) {
        const page = await ledger.usage.query({ ...q, limit });
        // Each of the parts returns limit + 1 keys that the snapshot cancels: the page reads on.
        expect(page.groups, `limit ${limit}`).toEqual([{ key: 'z', events: 1, units: 1, billable_events: 1, billable_units: 1 }]);
        expect(page.more, `limit ${limit}`).toBe(false);
      }
      // Without the snapshot the same pages are full and continue after their last key.
      const keys: string[] = [];
      let after: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await ledger.usage.query({ ...q, asOf: undefined, limit: 2, ...(after !== undefined && { after }) });
        expect(page.groups.length).toBe(page.more ? 2 : page.groups.length);
        keys.push(...page.groups.map((g) => g.key));
        if (!page.more) break;
        after = page.groups.at(-1)!.key;
      }
      expect(keys).toEqual(['a', 'b', 'c', 'd', 'e', 'y', 'z']);
    });

    it('equals the raw events over thousands of random ranges, groupings, zones, snapshots and epoch boundaries', {
      timeout: 240_000,
    }, async () => {
      ({ ledger, cleanup } = await fresh());
      await ledger.leadership.start(() => {});
      for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
      // Billing classification from the start: recall and chat billable, ping not, others info.
      await ledger.classification.append({ billable: ['recall', 'chat'], non_billable: ['ping'], other: 'info' }, { now: NOW });
      const history = await ledger.classification.history();

      const seed = Number(process.env.ROLLUP_SEED ?? Date.now() % 100_000);
      const r = rng(seed);
      const stored: Stored[] = [];
      const start = NOW - 30 * DAY;
      // Event times: random, on bucket and hour edges, and just before them (off-by-one at edges).
      const ts = () => {
        const t = start + r.int(0, 30 * DAY);
        const edge = Math.floor(t / 900_000) * 900_000;
        return r.pick([t, edge, edge - 1, edge + 1, Math.floor(t / HOUR) * HOUR]);
      };
      // 1988 around Newfoundland's changes (Apr 3 and Oct 30, at 00:01 local): minutes either side.
      const oldTs = () => {
        const change = r.pick([Date.UTC(1988, 3, 3, 3, 31), Date.UTC(1988, 9, 30, 1, 31)]);
        return r.next() < 0.5 ? change + r.int(-10 * 60_000, 10 * 60_000) : OLD_START + r.int(0, OLD_SPAN);
      };
      const write = async (n: number) => {
        const batch = Array.from({ length: n }, () => {
          const x = r.next();
          const namespace = x < 0.75 ? 'acme/prod' : x < 0.85 ? 'acme/dev' : 'acme/1988';
          return {
            namespace,
            action: r.pick(ACTIONS),
            caller: r.pick(CALLERS),
            units: r.next() < 0.02 ? MAX - r.int(0, 3) : r.next() < 0.1 ? 0 : r.int(1, 1000),
            ts: namespace === 'acme/1988' ? oldTs() : ts(),
          };
        });
        const results = await ledger.events.write(batch.map((b) => ({ event: ev(b), owner: 'acme', keyId: 'abcdefabcdef' })));
        results.forEach((res, i) => {
          if (res.status !== 'created') throw new Error(`write: ${JSON.stringify(res)}`);
          stored.push({ id: res.id, ...batch[i]! });
        });
      };
      // Voids and amendments of random heads (changing units, action and caller), some amended
      // then voided at once: of heads just written (unsealed), and of heads already rolled up.
      let corrections = 0;
      const correct = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const heads = headsOf(stored);
          const target = r.pick(heads);
          const twice = r.next() < 0.2;
          const kind = twice || r.next() < 0.6 ? 'amend' : 'void';
          const changes: Partial<Stored> = {
            ...(r.next() < 0.6 && { units: r.next() < 0.1 ? 0 : r.next() < 0.03 ? MAX : r.int(1, 1000) }),
            ...(r.next() < 0.4 && { action: r.pick(ACTIONS) }),
            ...(r.next() < 0.4 && { caller: r.pick(CALLERS) }),
          };
          // An amendment must change something (one that changes nothing is refused).
          if (!Object.entries(changes).some(([k, v]) => target[k as keyof Stored] !== v)) changes.units = target.units === 1 ? 2 : 1;
          const at = await correctOne(target, kind, changes);
          if (twice) await correctOne(at, 'void', {});
        }
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
        corrections++;
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
      // Rounds of writes, corrections and seals of random sizes: later rounds land in time already
      // rolled up, and correct events already rolled up.
      for (let round = 0; round < 12; round++) {
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

      const positions = stored.map((e) => e.id).sort((a, b) => a - b);
      let checked = 0;
      for (let i = 0; i < QUERIES; i++) {
        const old = r.next() < 0.2;
        const groupBy = old && r.next() < 0.5 ? 'hour' : r.pick(GROUP_BY);
        const tz = old && r.next() < 0.7 ? 'America/St_Johns' : r.pick(ZONES);
        // Old ranges mostly around the changes, so that the buckets their edges cut are inside.
        const aroundChange = r.pick([Date.UTC(1988, 3, 3, 3, 31), Date.UTC(1988, 9, 30, 1, 31)]) - r.int(0, 3 * DAY);
        const a =
          r.next() < 0.15
            ? 0
            : old
              ? r.next() < 0.7
                ? aroundChange
                : OLD_START - DAY + r.int(0, OLD_SPAN)
              : start - DAY + r.int(0, 32 * DAY);
        const b = r.next() < 0.15 ? MAX : a + r.pick([1, 900_000, HOUR, DAY, 7 * DAY, r.int(1, 40 * DAY)]);
        const edges = (x: number) => (r.next() < 0.3 ? Math.floor(x / 900_000) * 900_000 : x);
        const from = edges(a);
        const to = Math.max(from + 1, b === MAX ? b : edges(b));
        const asOf = r.next() < 0.4 ? r.pick(positions) : undefined;
        const q: UsageQuery = {
          namespace: r.next() < 0.9 ? 'acme/prod' : 'acme/dev',
          from,
          to,
          groupBy,
          tz,
          ...(asOf !== undefined && { asOf }),
        };
        const want = oracle(stored, q, history);
        const got = await ledger.usage.query(q);
        expect({ groups: got.groups, totals: got.totals }, `seed ${seed}, query ${JSON.stringify(q)}`).toEqual(want);
        // Paged: a random page size, continued after the last key, gives the same groups.
        if (want.groups.length > 1 && i % 10 === 0) {
          const limit = r.int(1, want.groups.length);
          const pages: typeof want.groups = [];
          let after: string | undefined;
          for (;;) {
            const page = await ledger.usage.query({ ...q, limit, ...(after !== undefined && { after }) });
            pages.push(...page.groups);
            expect(page.totals).toEqual(want.totals);
            if (!page.more) break;
            after = page.groups.at(-1)!.key;
          }
          expect(pages, `seed ${seed}, paged ${JSON.stringify(q)}`).toEqual(want.groups);
        }
        checked++;
      }
      expect(checked).toBe(QUERIES);
      // The rollups really were used: most of the ledger is sealed and rolled up.
      const latest = await ledger.epochs.latest();
      expect(latest?.last_seq ?? 0, `${engine}: sealed`).toBeGreaterThan(stored.length / 4);
      expect(corrections, 'corrections written').toBeGreaterThan(20);
    });
  });
});
