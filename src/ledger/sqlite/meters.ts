// Meters on SQLite: the meters table and the SQL of each part of a meter's usage question
// (src/ledger/meters.ts plans the parts and folds their rows), run in one read transaction so
// that every part sees the same snapshot. Rollups through their primary keys, events through the
// (namespace, ts) index, the tail along the rowid past the rollups: never a full scan.
import type { Statement } from 'better-sqlite3';
import {
  type Aggregation,
  foldMeter,
  MAX_METERS_PER_OWNER,
  type MeterInput,
  MeterError,
  type MeterPart,
  type MeterRow,
  type MeterRowStored,
  type MeterStore,
  type MeterUsageQuery,
  type MeterUsageResult,
  type MeterVersion,
  type DistinctCounts,
  distinctRanges,
  meterOfRow,
  totalApart,
  touchedCallers,
  nextVersion,
  planMeterQuery,
  isSum,
} from '../meters.ts';
import type { Db } from './db.ts';
import { CORRECTIONS, ROLLED_UP_TO, SLICE_BITS, SLICE_MASK, takeBacks, unitsOf } from './usage.ts';

const S1 = Number(SLICE_BITS);
const S2 = 2 * S1;
// ts + this is ≥ 0 for every instant RFC 3339 can write: the latest's sort key pads it to 20 digits.
const TS_OFFSET = 62_135_596_800_000;

const TIME = { bucket: '(ts / 900000) * 900000', day: '(ts / 86400000) * 86400000', ts: 'ts' } as const;

/**
 * What the aggregation needs, and nothing else: SQLite takes a bare column from the row of the
 * one max() of a query, which is how the latest event's units are read (max by time, then position).
 * sides: rows of both sides of each row (a sum: n and units signed by s).
 */
function columns(agg: Aggregation, from: 'rollup' | 'sides' | 'heads'): string {
  const rollup = from === 'rollup';
  const cols = [rollup ? 'sum(n) AS n' : from === 'sides' ? 'sum(s) AS n' : 'count(*) AS n'];
  if (agg === 'sum')
    cols.push(
      rollup
        ? 'sum(u0) AS u0, sum(u1) AS u1, sum(u2) AS u2'
        : `sum(s * (units & ${SLICE_MASK})) AS u0, sum(s * ((units >> ${S1}) & ${SLICE_MASK})) AS u1, sum(s * (units >> ${S2})) AS u2`,
    );
  if (agg === 'max') cols.push(rollup ? 'max(max_units) AS mx' : 'max(units) AS mx');
  if (agg === 'min') cols.push(rollup ? 'min(min_units) AS mn' : 'min(units) AS mn');
  if (agg === 'latest')
    cols.push(
      rollup
        ? `max(printf('%020d%020d', last_ts + ${TS_OFFSET}, last_seq)) AS lk, last_ts AS lt, last_seq AS lo, last_units AS lu`
        : `max(printf('%020d%020d', ts + ${TS_OFFSET}, seq)) AS lk, ts AS lt, seq AS lo, units AS lu`,
    );
  return cols.join(', ');
}

/** The buckets of the part's range that hold a correction (a correction's ts is its original's). */
const CORRECTED_BUCKETS = `SELECT (ts / 900000) * 900000 FROM events INDEXED BY events_corrections_ts
  WHERE namespace = @ns AND ts >= @from AND ts < @to AND kind <> 0`;
/** The ids of the range's versions that a correction replaced: not chain heads. */
const REPLACED = `SELECT corrects_id FROM events INDEXED BY events_corrections_ts
  WHERE namespace = @ns AND ts >= @from AND ts < @to AND kind <> 0 AND corrects_id IS NOT NULL`;

/**
 * One part's statement; named parameters: r (a tail's: where the rollups reach), ns, from, to,
 * actions (JSON, when the part lists them). A sum (isSum) reads both sides of each row, net; max,
 * min and latest read chain heads (rows that are not voids and that no correction replaced).
 */
export function partSql(p: MeterPart, agg: Aggregation): string {
  const filter = p.actions === null ? '' : ' AND action IN (SELECT value FROM json_each(@actions))';
  const g = p.group ?? 'NULL';
  const c = p.callers ? 'caller' : 'NULL';
  const sum = isSum(agg);
  const select = (t: string, from: 'rollup' | 'sides' | 'heads') => `SELECT ${t} AS t, ${g} AS g, ${c} AS c, ${columns(agg, from)}`;
  if (p.kind === 'buckets')
    return `${select('bucket', 'rollup')} FROM usage_buckets
      WHERE namespace = @ns AND bucket >= @from AND bucket < @to${filter}${sum ? '' : ` AND bucket NOT IN (${CORRECTED_BUCKETS})`} GROUP BY 1, 2, 3`;
  if (p.kind === 'distinct') throw new Error('a distinct part is counted (DISTINCT_SQL), not read as rows');
  if (p.kind === 'callers')
    return `${select('day', 'rollup')} FROM usage_caller_days
      WHERE namespace = @ns AND day >= @from AND day < @to GROUP BY 1, 2, 3`;
  const t = TIME[p.time];
  if (p.kind === 'corrected')
    return `${select(t, 'heads')} FROM (SELECT DISTINCT (ts / 900000) * 900000 AS cb FROM events INDEXED BY events_corrections_ts
        WHERE namespace = @ns AND ts >= @from AND ts < @to AND kind <> 0) AS cbs
      CROSS JOIN events INDEXED BY events_namespace_ts ON namespace = @ns AND ts >= cbs.cb AND ts < cbs.cb + 900000
      WHERE kind <> 1 AND seq NOT IN (${REPLACED})${filter} GROUP BY 1, 2, 3`;
  if (p.kind === 'tail')
    return sum
      ? sides(agg, select(t, 'sides'), filter, 'events NOT INDEXED', 'seq > @r AND namespace = @ns AND ts >= @from AND ts < @to')
      : `${select(t, 'heads')} FROM events NOT INDEXED WHERE seq > @r AND namespace = @ns AND ts >= @from AND ts < @to${filter}
        AND (ts / 900000) * 900000 NOT IN (${CORRECTED_BUCKETS}) GROUP BY 1, 2, 3`;
  const range = 'namespace = @ns AND ts >= @from AND ts < @to';
  return sum
    ? sides(agg, select(t, 'sides'), filter, 'events', range)
    : `${select(t, 'heads')} FROM events WHERE ${range} AND kind <> 1 AND seq NOT IN (${REPLACED})${filter} GROUP BY 1, 2, 3`;
}

/**
 * A sum net of corrections over the rows `where` selects from `from`: every row summed as before
 * corrections (one pass, no extra layer), the take-backs (usage.ts takeBacks) through the partial
 * index of corrections only, then the two added up.
 */
function sides(agg: Aggregation, select: string, filter: string, from: string, where: string): string {
  const again = ['sum(n) AS n', ...(agg === 'sum' ? ['sum(u0) AS u0', 'sum(u1) AS u1', 'sum(u2) AS u2'] : [])].join(', ');
  return `SELECT t, g, c, ${again} FROM (
      ${select} FROM (SELECT ts, seq, action, caller, units, 1 AS s FROM ${from} WHERE ${where}) WHERE true${filter} GROUP BY 1, 2, 3
      UNION ALL
      ${select} FROM (SELECT *, -1 AS s FROM (${takeBacks(CORRECTIONS, where)})) WHERE true${filter} GROUP BY 1, 2, 3)
    GROUP BY 1, 2, 3`;
}

/**
 * A distinct part's counts: per range (a window's days; one day's rows are distinct callers by the
 * primary key, so they are counted without a temporary b-tree), then over the part. Each count is
 * one primary-key range; the ranges go in as JSON and drive the join (a correlated subquery, so
 * the planner cannot turn it around).
 */
const DISTINCT_SQL = {
  windows: `SELECT w.s AS t, CASE WHEN w.e - w.s <= 86400000
      THEN (SELECT count(*) FROM usage_caller_days WHERE namespace = @ns AND day >= w.s AND day < w.e AND n > 0)
      ELSE (SELECT count(DISTINCT caller) FROM usage_caller_days WHERE namespace = @ns AND day >= w.s AND day < w.e AND n > 0) END AS k
    FROM (SELECT value ->> 0 AS s, value ->> 1 AS e FROM json_each(@ranges)) AS w`,
  total: 'SELECT count(DISTINCT caller) FROM usage_caller_days WHERE namespace = @ns AND day >= @from AND day < @to AND n > 0',
  touched: `SELECT day AS t, caller AS c, n FROM usage_caller_days
    WHERE namespace = @ns AND day >= @from AND day < @to AND caller IN (SELECT value FROM json_each(@callers))`,
} as const;

type Row = {
  t: bigint;
  g: string | null;
  c: string | null;
  n: bigint | null;
  u0?: bigint | null;
  u1?: bigint | null;
  u2?: bigint | null;
  mn?: bigint | null;
  mx?: bigint | null;
  lt?: bigint | null;
  lo?: bigint | null;
  lu?: bigint | null;
};

const num = (v: bigint | null | undefined) => (v === null || v === undefined ? null : Number(v));
const COLUMNS = 'name, version, aggregation, actions, from_ms, created_at';
const MAX_CACHED_STATEMENTS = 64;

export class SqliteMeterStore implements MeterStore {
  private readonly db: Db;
  private readonly stmts = new Map<string, Statement>();

  constructor(db: Db) {
    this.db = db;
  }

  private stmt(sql: string, safe = false): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      if (this.stmts.size >= MAX_CACHED_STATEMENTS) this.stmts.clear();
      s = this.db.prepare(sql);
      if (safe) s.safeIntegers(true);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private versionsSync(owner: string, name: string): MeterVersion[] {
    return (
      this.stmt(`SELECT ${COLUMNS} FROM meters WHERE owner = ? AND name = ? ORDER BY version`).all(owner, name) as MeterRowStored[]
    ).map(meterOfRow);
  }

  async define(owner: string, name: string, input: MeterInput, now: number): Promise<{ version: MeterVersion; created: boolean }> {
    return this.db
      .transaction(() => {
        const existing = this.versionsSync(owner, name);
        if (existing.length === 0) {
          const meters = this.stmt('SELECT count(DISTINCT name) AS n FROM meters WHERE owner = ?').pluck().get(owner) as number;
          if (meters >= MAX_METERS_PER_OWNER)
            throw new MeterError('name', `max_meters:${MAX_METERS_PER_OWNER}`, `an owner has at most ${MAX_METERS_PER_OWNER} meters`, 409);
        }
        const v = nextVersion(existing, name, input, now);
        if (!v) return { version: existing.at(-1)!, created: false };
        this.stmt(`INSERT INTO meters (owner, ${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`).run(
          owner,
          v.name,
          v.version,
          v.aggregation,
          v.actions === null ? null : JSON.stringify(v.actions),
          v.from_ms,
          v.created_at,
        );
        return { version: v, created: true };
      })
      .immediate();
  }

  async versions(owner: string, name: string): Promise<MeterVersion[]> {
    return this.versionsSync(owner, name);
  }

  async list(owner: string): Promise<MeterVersion[]> {
    return (
      this.stmt(
        `SELECT ${COLUMNS} FROM meters AS m WHERE owner = ?
           AND version = (SELECT max(version) FROM meters WHERE owner = m.owner AND name = m.name) ORDER BY name`,
      ).all(owner) as MeterRowStored[]
    ).map(meterOfRow);
  }

  async usage(q: MeterUsageQuery): Promise<MeterUsageResult> {
    // One read transaction: the versions, the rollups' reach and every part from one snapshot.
    const { plan, rows, distinct } = this.db.transaction(() => {
      const plan = planMeterQuery(q, this.versionsSync(q.owner, q.name));
      const rows = this.run(
        plan.parts.filter((p) => p.kind !== 'distinct'),
        plan.aggregation,
        q.namespace,
      );
      const part = plan.parts.find((p) => p.kind === 'distinct');
      return { plan, rows, distinct: part && this.distinct(part, plan.windows, q.namespace, rows) };
    })();
    return foldMeter(q, plan.aggregation, plan.windows, rows, distinct);
  }

  private distinct(part: MeterPart, windows: Parameters<typeof distinctRanges>[1], ns: string, rows: MeterRow[]): DistinctCounts {
    const ranges = distinctRanges(part, windows);
    const range = { ns, from: part.from, to: part.to };
    const perWindow = (
      this.stmt(DISTINCT_SQL.windows).all({ ns, ranges: JSON.stringify(ranges.map((r) => [r.from, r.to])) }) as Array<{
        t: number;
        k: number;
      }>
    ).filter((w) => w.k > 0);
    const total = totalApart(part, ranges) ? (this.stmt(DISTINCT_SQL.total).pluck().get(range) as number) : undefined;
    const callers = touchedCallers(rows);
    const touched =
      callers.length === 0
        ? []
        : (
            this.stmt(DISTINCT_SQL.touched, true).all({ ...range, callers: JSON.stringify(callers) }) as Array<{
              t: bigint;
              c: string;
              n: bigint;
            }>
          ).map((x): MeterRow => ({ t: Number(x.t), g: null, c: x.c, n: x.n, u: 0n, mn: null, mx: null, lt: null, lo: null, lu: null }));
    return { windows: perWindow, ...(total !== undefined && { total }), touched };
  }

  private run(parts: MeterPart[], agg: Aggregation, ns: string): MeterRow[] {
    const r = Number(this.stmt(ROLLED_UP_TO, true).pluck().get() as bigint);
    return parts.flatMap((p) => {
      const params: Record<string, unknown> = { ns, from: p.from, to: p.to };
      if (p.kind === 'tail') params.r = r;
      if (p.actions !== null && p.kind !== 'callers') params.actions = JSON.stringify(p.actions);
      return (this.stmt(partSql(p, agg), true).all(params) as Row[]).map(
        (x): MeterRow => ({
          t: Number(x.t),
          g: x.g,
          c: x.c,
          n: x.n ?? 0n,
          u: unitsOf(x.u0 ?? null, x.u1 ?? null, x.u2 ?? null),
          mn: num(x.mn),
          mx: num(x.mx),
          lt: num(x.lt),
          lo: x.lo ?? null,
          lu: num(x.lu),
        }),
      );
    });
  }
}
