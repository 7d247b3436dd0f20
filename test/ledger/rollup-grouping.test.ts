// SQLite rolls a run up in one of two ways (src/ledger/sqlite/rollups.ts): each rollup grouped
// straight from the events ('apart', two sorts of the run), or both summed from one finer grouping
// ('fine', one sort; cheaper when the run repeats callers and actions). The seal picks by a sample
// of the run, so the two must give the same rows for any run: checked here over random ledgers
// with corrections (voids, amendments, chains), a classification, several namespaces, times
// decades apart and units up to 2^53 − 1, on random ranges of positions.
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { aggregateRun, groupingOf, rollupDifferences, type RunRollup } from '../../src/ledger/sqlite/rollups.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { rng } from '../support/random.ts';

const NOW = Date.now();
const MAX = Number.MAX_SAFE_INTEGER;
/** 7 min 13 s into a 15-minute bucket 75–90 minutes ago. */
const SECOND_PERIOD = Math.floor((NOW - 90 * 60_000) / 900_000) * 900_000 + 433_000;

/** The rows of a rollup in one order, bigints as strings. */
const sorted = (x: RunRollup) => ({
  buckets: x.buckets.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))).sort(),
  callers: x.callers.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))).sort(),
});

type Shape = { callers: string[]; actions: string[]; ts: (r: ReturnType<typeof rng>) => number };

/** Repetitive: two callers and two actions within an hour (the seal picks 'fine'). */
const CLUSTERED: Shape = {
  callers: ['u1', 'ü2'],
  actions: ['chat', 'recall'],
  ts: (r) => NOW - 2 * 3_600_000 + r.int(0, 3_600_000),
};
/** Scattered: many callers and actions over 30 days, some in 1988 (the seal picks 'apart'). */
const SCATTERED: Shape = {
  callers: Array.from({ length: 400 }, (_, i) => `caller-${i}`),
  actions: ['chat', 'recall', 'ping', 'search.v2', '0-batch'],
  ts: (r) => (r.next() < 0.1 ? Date.UTC(1988, 3, 3, 3, 21) + r.int(0, 20 * 60_000) : NOW - 30 * 86_400_000 + r.int(0, 30 * 86_400_000)),
};

let ledger: SqliteLedger | undefined;
afterEach(async () => {
  await ledger?.close();
  ledger = undefined;
});

/** A ledger of `n` events of the shape, a tenth of them then corrected (some twice), with a classification. */
async function build(shape: Shape, n: number, seed: number): Promise<SqliteLedger> {
  const r = rng(seed);
  const l = new SqliteLedger(':memory:');
  await l.classification.append({ billable: ['recall', 'chat'], non_billable: ['ping'], other: 'info' }, { now: NOW - 40 * 86_400_000 });
  // A second period from inside a bucket that both shapes fill: billable follows each event's own time.
  await l.classification.append({ billable: ['chat', 'search.v2'], non_billable: ['recall'], other: 'info' }, { now: SECOND_PERIOD });
  const ids: number[] = [];
  for (let written = 0; written < n; written += 500) {
    const items = Array.from({ length: Math.min(500, n - written) }, (_, i) => {
      const v = validateEvent(
        {
          request_id: `r-${written + i}`,
          namespace: r.next() < 0.8 ? 'acme/prod' : 'acme/dev',
          action: r.pick(shape.actions),
          caller: r.pick(shape.callers),
          units: r.next() < 0.02 ? MAX - r.int(0, 3) : r.next() < 0.1 ? 0 : r.int(1, 1000),
          ts: new Date(shape.ts(r)).toISOString(),
        },
        { now: NOW, maxAgeMs: Number.MAX_SAFE_INTEGER, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
      );
      if (!v.ok) throw new Error(JSON.stringify(v.errors));
      return { event: v.event, owner: 'acme', keyId: 'abcdefabcdef' };
    });
    for (const res of await l.events.write(items)) if (res.status === 'created') ids.push(res.id);
  }
  let fix = 0;
  const correct = (kind: 'amend' | 'void', id: number) =>
    l.events.correct([
      {
        kind,
        target: { id },
        request_id: `fix-${++fix}`,
        ...(kind === 'amend' && { changes: { units: r.int(1, 2000), ...(r.next() < 0.4 && { caller: r.pick(shape.callers) }) } }),
        owner: 'acme',
        keyId: 'abcdefabcdef',
        notBeforeMs: 0,
        receivedAtMs: NOW,
      },
    ]);
  for (let i = 0; i < n / 10; i++) {
    const [res] = await correct(r.next() < 0.6 ? 'amend' : 'void', r.pick(ids));
    // A target corrected already: correct its head instead (a chain of three), unless a void ended it.
    if (res?.status === 'already_corrected' && res.head_kind !== 'void') await correct('void', res.head_id);
  }
  return l;
}

describe('SQLite rollups: which grouping a run gets', () => {
  it('a run that turns from repetitive to scattered after its start is judged on its middle and end too', async () => {
    const r = rng(7);
    ledger = await build({ ...CLUSTERED, callers: ['u1'], actions: ['chat'] }, 2_000, 7);
    const clusteredTo = ledger.db.prepare('SELECT max(seq) FROM events').pluck().get() as number;
    const scattered = Array.from({ length: 4_000 }, (_, i) => {
      const v = validateEvent(
        {
          request_id: `s-${i}`,
          namespace: 'acme/prod',
          action: 'chat',
          caller: `caller-${i}`,
          units: 1,
          ts: new Date(SCATTERED.ts(r)).toISOString(),
        },
        { now: NOW, maxAgeMs: MAX, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
      );
      if (!v.ok) throw new Error(JSON.stringify(v.errors));
      return { event: v.event, owner: 'acme', keyId: 'abcdefabcdef' };
    });
    await ledger.events.write(scattered);
    const last = ledger.db.prepare('SELECT max(seq) FROM events').pluck().get() as number;
    expect(groupingOf(ledger.db, 1, clusteredTo)).toBe('fine');
    expect(groupingOf(ledger.db, 1, last)).toBe('apart');
    // A run of one or two events: its stretches overlap, each event is counted once.
    expect(groupingOf(ledger.db, 5, 5)).toBe('apart');
    expect(groupingOf(ledger.db, 5, 6)).toBe('apart');
  });
});

describe('SQLite rollups: both groupings give the same rows', () => {
  for (const [name, shape, picked] of [
    ['clustered', CLUSTERED, 'fine'],
    ['scattered', SCATTERED, 'apart'],
  ] as const) {
    it(`${name} runs: 'apart' and 'fine' agree on every random range, with and without take-backs; the seal picks '${picked}'`, async () => {
      const seed = Number(process.env.ROLLUP_SEED ?? Date.now() % 100_000);
      const r = rng(seed);
      ledger = await build(shape, 3_000, seed);
      const db = ledger.db;
      const last = db.prepare('SELECT max(seq) FROM events').pluck().get() as number;
      const corrected = db.prepare('SELECT count(*) FROM events WHERE kind <> 0 AND seq BETWEEN ? AND ?').pluck();
      expect(corrected.get(1, last), `seed ${seed}`).toBeGreaterThan(100);
      let withoutCorrections = 0;
      for (let i = 0; i < 60; i++) {
        const lo = r.next() < 0.2 ? 1 : r.int(1, last);
        const hi = r.next() < 0.2 ? last : r.int(lo, Math.min(last, lo + r.pick([0, 10, 300, last])));
        const apart = sorted(aggregateRun(db, lo, hi, true, 'apart'));
        expect(sorted(aggregateRun(db, lo, hi, true, 'fine')), `seed ${seed}, positions ${lo}…${hi}`).toEqual(apart);
        if ((corrected.get(lo, hi) as number) === 0) {
          withoutCorrections++;
          expect(sorted(aggregateRun(db, lo, hi, false, 'fine')), `seed ${seed}, positions ${lo}…${hi}`).toEqual(apart);
          expect(sorted(aggregateRun(db, lo, hi, false, 'apart')), `seed ${seed}, positions ${lo}…${hi}`).toEqual(apart);
        }
      }
      expect(withoutCorrections, `seed ${seed}`).toBeGreaterThan(0);
      // The seal's own pick, and what it stored, checked against the events by fsck's comparison.
      expect(groupingOf(db, 1, last)).toBe(picked);
      while (await sealNext(ledger, { maxEvents: 1_000_000 }));
      expect(rollupDifferences(db, 5)).toEqual({ count: 0, rows: [] });
    });
  }
});
