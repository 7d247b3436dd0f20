// Writing the usage rollups on SQLite (docs/design.md "Usage rollups"): one epoch's events added
// to the buckets and caller days, in the transaction that seals the epoch (or, for epochs sealed
// before rollups existed, one epoch per transaction when the sealer starts).
import { availableParallelism } from 'node:os';
import type { ClassificationPeriod } from '../../event/classification.ts';
import { periodOfRow, type ClassificationRow } from '../classification-periods.ts';
import type { RollupProgress } from '../rollup-check.ts';
import type { Db } from './db.ts';
import { billableExpr, SIGNED_SUMS, SLICE_BITS, SLICE_MASK, takeBacks } from './usage.ts';

const S1 = Number(SLICE_BITS);
const S2 = 2 * S1;

const SUMS = `count(*) AS n,
       sum(units & ${SLICE_MASK}) AS u0, sum((units >> ${S1}) & ${SLICE_MASK}) AS u1, sum(units >> ${S2}) AS u2,
       sum(b * (units > 0)) AS bn,
       sum(b * (units & ${SLICE_MASK})) AS b0, sum(b * ((units >> ${S1}) & ${SLICE_MASK})) AS b1, sum(b * (units >> ${S2})) AS b2`;
/** The same sums over groups of sums, named as the groups' columns. */
const SUM_OF_SUMS = 'sum(n) AS n, sum(u0) AS u0, sum(u1) AS u1, sum(u2) AS u2, sum(bn) AS bn, sum(b0) AS b0, sum(b1) AS b1, sum(b2) AS b2';

const ADD = `n = n + excluded.n, u0 = u0 + excluded.u0, u1 = u1 + excluded.u1, u2 = u2 + excluded.u2,
       bn = bn + excluded.bn, b0 = b0 + excluded.b0, b1 = b1 + excluded.b1, b2 = b2 + excluded.b2`;

// ts + this is ≥ 0 for every instant RFC 3339 can write: the latest's sort key pads it to 20 digits.
const TS_OFFSET = 62_135_596_800_000;
/** A side's order for "latest": event time, then ledger position, then an event before a take-back; then its units. */
const sideKey = (ts: string, seq: string, plus: 0 | 1, units: string) =>
  `printf('%020d%020d%d%d', ${ts} + ${TS_OFFSET}, ${seq}, ${plus}, ${units})`;
const parsedKey = (lk: string) =>
  `CAST(substr(${lk}, 1, 20) AS INTEGER) - ${TS_OFFSET}, CAST(substr(${lk}, 21, 20) AS INTEGER), CAST(substr(${lk}, 42) AS INTEGER)`;

/** The events of ledger positions @lo … @hi with their billable flag, as before corrections. */
const source = (billable: string) =>
  `SELECT namespace, ts, action, caller, units, ${billable} AS b FROM events WHERE seq BETWEEN @lo AND @hi`;
/**
 * The take-backs of the corrections among them (usage.ts takeBacks: the replaced version's, and a
 * void's own), −1 each: a row of the rollups holds the chain heads' net count and units.
 */
const takenBack = (billable: string) =>
  `SELECT namespace, ts, seq, action, caller, units, ${billable} AS b FROM (${takeBacks('events', 'seq BETWEEN @lo AND @hi')})`;
const NEGATED = `-count(*) AS n,
       -sum(units & ${SLICE_MASK}) AS u0, -sum((units >> ${S1}) & ${SLICE_MASK}) AS u1, -sum(units >> ${S2}) AS u2,
       -sum(b * (units > 0)) AS bn,
       -sum(b * (units & ${SLICE_MASK})) AS b0, -sum(b * ((units >> ${S1}) & ${SLICE_MASK})) AS b1, -sum(b * (units >> ${S2})) AS b2`;

/**
 * The run's events summed by (namespace, bucket, action), straight from the events: one sort of
 * the run. `byCaller`: by caller too, the fine groups both kinds of rollup rows are sums of (a day
 * is 96 whole buckets): one sort of the run instead of two, and the groups below then sort only
 * these rows, the cheaper way when they are few (docs/performance.md).
 */
const bucketGroups = (billable: string, byCaller = false) =>
  `SELECT namespace, (ts / 900000) * 900000 AS bucket, action, ${byCaller ? 'caller, ' : ''}${SUMS},
     min(units) AS mn, max(units) AS mx, max(ts) AS lt
   FROM (${source(billable)}) GROUP BY 1, 2, 3${byCaller ? ', 4' : ''}`;
/** The run's events grouped by (namespace, day, caller), straight from the events: one sort of the run. */
const callerGroups = (billable: string) =>
  `SELECT namespace, (ts / 86400000) * 86400000 AS day, caller, ${SUMS} FROM (${source(billable)}) GROUP BY 1, 2, 3`;

/** Each kind of rollup row summed from the fine groups (`fine`: bucketGroups by caller, in selectBothOfFine). */
const bucketsOfFine = `SELECT namespace, bucket, action, ${SUM_OF_SUMS}, min(mn) AS mn, max(mx) AS mx, max(lt) AS lt
   FROM fine GROUP BY 1, 2, 3`;
const callersOfFine = `SELECT namespace, (bucket / 86400000) * 86400000 AS day, caller, ${SUM_OF_SUMS} FROM fine GROUP BY 1, 2, 3`;

/**
 * Buckets: the epoch's events as before corrections, grouped (`groups`: bucketGroups or
 * bucketsOfFine; the latest event of each (bucket, action) by event time, ties by ledger order,
 * found through the (namespace, ts) index), plus the take-backs of its corrections; min, max and
 * latest over both. A later epoch has higher positions, so on a tie in time its side is the later
 * one. Parameters: billable's (once more with corrections).
 */
const selectBuckets = (groups: string, billable: string, corrections: boolean) =>
  `SELECT namespace, bucket, action, ${SUM_OF_SUMS}, min(mn), max(mx), ${parsedKey('max(lk)')}
   FROM (SELECT g.namespace, g.bucket, g.action, g.n, g.u0, g.u1, g.u2, g.bn, g.b0, g.b1, g.b2, g.mn, g.mx,
           ${sideKey('g.lt', 'l.seq', 1, 'l.units')} AS lk
         FROM (${groups}) AS g
         JOIN events AS l ON l.seq = (SELECT max(e.seq) FROM events AS e
               WHERE e.namespace = g.namespace AND e.ts = g.lt AND e.action = g.action AND e.seq BETWEEN @lo AND @hi)
         ${
           corrections
             ? `UNION ALL
         SELECT namespace, (ts / 900000) * 900000, action, ${NEGATED}, min(units), max(units), max(${sideKey('ts', 'seq', 0, 'units')})
         FROM (${takenBack(billable)}) GROUP BY 1, 2, 3`
             : ''
         })
   GROUP BY 1, 2, 3`;

/** Caller days (`groups`: callerGroups or callersOfFine), plus the take-backs of the run's corrections. */
const selectCallers = (groups: string, billable: string, corrections: boolean) =>
  `SELECT namespace, day, caller, ${SUM_OF_SUMS} FROM (
     SELECT namespace, day, caller, n, u0, u1, u2, bn, b0, b1, b2 FROM (${groups})
     ${
       corrections
         ? `UNION ALL
     SELECT namespace, (ts / 86400000) * 86400000, caller, ${NEGATED} FROM (${takenBack(billable)}) GROUP BY 1, 2, 3`
         : ''
     })
   GROUP BY 1, 2, 3`;

/** Both from the fine groups, in one statement (the groups are made once): buckets tagged 0, caller days 1. */
const selectBothOfFine = (billable: string, corrections: boolean) =>
  `WITH fine AS MATERIALIZED (${bucketGroups(billable, true)})
   SELECT 0, * FROM (${selectBuckets(bucketsOfFine, billable, corrections)})
   UNION ALL
   SELECT 1, *, NULL, NULL, NULL, NULL, NULL FROM (${selectCallers(callersOfFine, billable, corrections)})`;

const UPSERT_BUCKET = `INSERT INTO usage_buckets
     (namespace, bucket, action, n, u0, u1, u2, bn, b0, b1, b2, min_units, max_units, last_ts, last_seq, last_units)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT (namespace, bucket, action) DO UPDATE SET ${ADD},
     min_units = min(min_units, excluded.min_units), max_units = max(max_units, excluded.max_units),
     last_seq = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last_seq ELSE last_seq END,
     last_units = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last_units ELSE last_units END,
     last_ts = max(last_ts, excluded.last_ts)`;

const UPSERT_CALLER = `INSERT INTO usage_caller_days (namespace, day, caller, n, u0, u1, u2, bn, b0, b1, b2)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT (namespace, day, caller) DO UPDATE SET ${ADD}`;

/** One run's aggregates, as rows ready to add to the rollups (bigints: exact). */
export interface RunRollup {
  buckets: unknown[][];
  callers: unknown[][];
}

/** How the run's events are grouped: each rollup straight from the events, or both from the fine groups. */
export type Grouping = 'apart' | 'fine';

/** Events of a run that choose its grouping (in three stretches), and how few fine groups they must make for 'fine'. */
const SAMPLE_EVENTS = 16_384;
const FINE_WHEN_GROUPS_PER_EVENT_AT_MOST = 0.25;

/**
 * The cheaper grouping for positions lo … hi, judged on three stretches of the run (its start,
 * middle and end, 16,384 events in all, ~10–25 ms): 'fine' when they make at most a quarter as
 * many (namespace, caller, bucket, action) groups as events. For a run of one shape throughout,
 * a stretch makes at least as many groups per event as the whole run, so a run judged 'fine' is
 * at least as repetitive as its sample. A run that changes shape between the stretches can be
 * judged wrong: that costs time, never exactness (both ways give the same rows), at most what the
 * other way costs (1M events of a random run: 5.8–7.2 s against 5.2–5.3 s, docs/performance.md).
 */
export function groupingOf(db: Db, lo: number, hi: number): Grouping {
  const stretch = Math.ceil(Math.min(hi - lo + 1, SAMPLE_EVENTS) / 3);
  const groups = db
    .prepare('SELECT count(*) FROM (SELECT 1 FROM events WHERE seq BETWEEN ? AND ? GROUP BY namespace, caller, ts / 900000, action)')
    .pluck();
  let sampled = 0;
  let made = 0;
  // Stretches that overlap (a short run) are counted as one.
  let next = lo;
  for (const from of [lo, Math.floor((lo + hi) / 2) - Math.floor(stretch / 2), hi - stretch + 1]) {
    const a = Math.max(from, next);
    const b = Math.min(hi, from + stretch - 1);
    if (a > b) continue;
    made += groups.get(a, b) as number;
    sampled += b - a + 1;
    next = b + 1;
  }
  return made <= sampled * FINE_WHEN_GROUPS_PER_EVENT_AT_MOST ? 'fine' : 'apart';
}

/**
 * The aggregates of ledger positions lo … hi, read (in the caller's read snapshot) while no write
 * lock is held: the seal computes them beside the tree, and its write transaction only adds the
 * rows. Billable flags use the classification read in the same snapshot; a later period can never
 * reclassify an event already stored (periods are never retroactive), so they stay right.
 * `corrections`: false only when the caller knows that positions lo … hi hold no correction; their
 * take-backs are then not looked for (a scan of the whole run per statement, 0.1–0.17 s for 1M).
 * `grouping`: both give the same rows (test/ledger/rollup-grouping.test.ts); by default the
 * cheaper one for this run.
 */
export function aggregateRun(db: Db, lo: number, hi: number, corrections = true, grouping: Grouping = groupingOf(db, lo, hi)): RunRollup {
  const b = billableExpr(historyIn(db));
  const taken = corrections ? b.params : [];
  const rows = (sql: string, params: unknown[]) =>
    db
      .prepare(sql)
      .raw()
      .safeIntegers(true)
      .all({ lo, hi }, ...params) as unknown[][];
  // Each GROUP BY sorts the run's rows (1M events: 0.5–2.1 s each); SQLite's sorter merges on helper
  // threads when allowed: 10–30 % less for a random 1M run here, none for a sorted one
  // (docs/performance.md). Only for these statements.
  const threads = db.pragma('threads', { simple: true }) as number;
  db.pragma(`threads = ${Math.max(0, Math.min(4, availableParallelism() - 1))}`);
  try {
    if (grouping === 'apart')
      return {
        buckets: rows(selectBuckets(bucketGroups(b.sql), b.sql, corrections), [...b.params, ...taken]),
        callers: rows(selectCallers(callerGroups(b.sql), b.sql, corrections), [...b.params, ...taken]),
      };
    const both = rows(selectBothOfFine(b.sql, corrections), [...b.params, ...taken, ...taken]);
    return {
      buckets: both.filter((r) => r[0] === 0n).map((r) => r.slice(1, 17)),
      callers: both.filter((r) => r[0] === 1n).map((r) => r.slice(1, 12)),
    };
  } finally {
    db.pragma(`threads = ${threads}`);
  }
}

/**
 * Adds a run's aggregates as epoch `epoch`, inside the caller's write transaction, if the rollups
 * reach the epoch before it; false (nothing written) when they are behind: the catch-up adds the
 * missing epochs first.
 */
export function storeRunRollup(db: Db, epoch: number, agg: RunRollup): boolean {
  const state = db.prepare('SELECT epoch FROM rollup_state').pluck().get() as number;
  if (state !== epoch - 1) return false;
  const bucket = db.prepare(UPSERT_BUCKET);
  for (const r of agg.buckets) bucket.run(...r);
  const caller = db.prepare(UPSERT_CALLER);
  for (const r of agg.callers) caller.run(...r);
  db.prepare('UPDATE rollup_state SET epoch = ?').run(epoch);
  return true;
}

export function historyIn(db: Db): ClassificationPeriod[] {
  return (
    db.prepare('SELECT from_ms, billable, non_billable, other FROM classifications ORDER BY from_ms').all() as ClassificationRow[]
  ).map(periodOfRow);
}

/** Adds epoch `epoch` (positions lo … hi) to the rollups, inside the caller's write transaction (see storeRunRollup). */
export function rollUpEpoch(db: Db, epoch: number, lo: number, hi: number): boolean {
  const state = db.prepare('SELECT epoch FROM rollup_state').pluck().get() as number;
  return state === epoch - 1 && storeRunRollup(db, epoch, aggregateRun(db, lo, hi));
}

/** Rolls up every sealed epoch the rollups do not reach yet, one transaction each; how many. */
export function catchUpRollups(db: Db, progress: RollupProgress = () => {}): number {
  const missing = db
    .prepare('SELECT epoch, first_seq, last_seq, size FROM epochs WHERE epoch > (SELECT epoch FROM rollup_state) ORDER BY epoch')
    .all() as Array<{ epoch: number; first_seq: number; last_seq: number; size: number }>;
  let done = 0;
  for (const e of missing) {
    if (!db.transaction(() => rollUpEpoch(db, e.epoch, e.first_seq, e.last_seq)).immediate()) break; // another writer got there
    done++;
    progress({ epoch: e.epoch, done, of: missing.length, events: e.size });
  }
  return done;
}

/** Drops every rollup row, so that catchUpRollups builds them again from the events. */
export function clearRollups(db: Db): void {
  db.transaction(() => {
    db.exec('DELETE FROM usage_buckets; DELETE FROM usage_caller_days; UPDATE rollup_state SET epoch = -1;');
  }).immediate();
}

/**
 * The rollup rows that differ from the same aggregates recomputed from the events they should
 * hold (every event up to the last rolled-up epoch): the count, and the first `limit` of them.
 * One statement per table, diffed in the database (a full outer join), so memory stays small.
 * Null when the ledger has no rollups yet (a schema before them: nothing to check).
 */
export function rollupDifferences(db: Db, limit: number): { count: number; rows: RollupDifferenceRow[] } | null {
  const has = db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'rollup_state'").pluck().get() as
    | number
    | bigint;
  if (Number(has) === 0) return null;
  const b = billableExpr(historyIn(db));
  const upTo = 'SELECT coalesce((SELECT e.last_seq FROM rollup_state s JOIN epochs e ON e.epoch = s.epoch), 0)';
  const values = (t: string, cols: string[]) =>
    `CASE WHEN ${t}.namespace IS NULL THEN NULL ELSE json_array(${cols.map((c) => `${t}.${c}`).join(', ')}) END`;
  const diff = (table: string, keys: [string, string], want: string, cols: string[]) => `
    WITH want AS (${want}), have AS (SELECT namespace, ${keys.join(', ')}, ${cols.join(', ')} FROM ${table})
    SELECT '${table}' AS tbl, coalesce(w.namespace, h.namespace) AS namespace,
      coalesce(w.${keys[0]}, h.${keys[0]}) AS k1, coalesce(w.${keys[1]}, h.${keys[1]}) AS k2,
      ${values('h', cols)} AS stored, ${values('w', cols)} AS recomputed
    FROM want AS w FULL OUTER JOIN have AS h ON w.namespace = h.namespace AND w.${keys[0]} = h.${keys[0]} AND w.${keys[1]} = h.${keys[1]}
    WHERE h.namespace IS NULL OR w.namespace IS NULL OR ${cols.map((c) => `w.${c} IS NOT h.${c}`).join(' OR ')}`;
  // Every row +1 and the take-backs of corrections −1 (usage.ts takeBacks), as the seal adds them.
  const src = `SELECT namespace, ts, action, caller, units, s, ${b.sql} AS b FROM (
    SELECT namespace, ts, action, caller, units, 1 AS s FROM events WHERE seq <= (${upTo})
    UNION ALL SELECT namespace, ts, action, caller, units, -1 FROM (${takeBacks('events', `seq <= (${upTo})`)}))`;
  const sums = ['n', 'u0', 'u1', 'u2', 'bn', 'b0', 'b1', 'b2'];
  const buckets = diff(
    'usage_buckets',
    ['bucket', 'action'],
    `SELECT namespace, (ts / 900000) * 900000 AS bucket, action, ${SIGNED_SUMS}, min(units) AS min_units, max(units) AS max_units, max(ts) AS last_ts
     FROM (${src}) GROUP BY 1, 2, 3`,
    [...sums, 'min_units', 'max_units', 'last_ts'],
  );
  const callers = diff(
    'usage_caller_days',
    ['day', 'caller'],
    `SELECT namespace, (ts / 86400000) * 86400000 AS day, caller, ${SIGNED_SUMS} FROM (${src}) GROUP BY 1, 2, 3`,
    sums,
  );
  let count = 0;
  const rows: RollupDifferenceRow[] = [];
  for (const sql of [buckets, callers]) {
    for (const r of db.prepare(sql).iterate(...b.params) as Iterable<RollupDifferenceRow>) {
      count++;
      if (rows.length < limit) rows.push({ ...r, k1: Number(r.k1) });
    }
  }
  return { count, rows };
}

/** One rollup row that differs from the events: its table and key, and both sides' values (JSON arrays; null: absent). */
export interface RollupDifferenceRow {
  tbl: 'usage_buckets' | 'usage_caller_days';
  namespace: string;
  /** The bucket's or day's start (ms). */
  k1: number;
  /** The action (buckets) or caller (days). */
  k2: string;
  stored: string | null;
  recomputed: string | null;
}
