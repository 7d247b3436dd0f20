// Meters on PostgreSQL: the meters table and the SQL of each part of a meter's usage question
// (src/ledger/meters.ts plans the parts and folds their rows): the versions and all parts read in
// one repeatable-read transaction, the parts as ONE statement. Rollups through their primary
// keys, events through the (namespace, ts, id) index, the tail through the unsealed index and the
// seq range past the rollups. Sums are numeric (exact at any volume), read as text.
import type pg from 'pg';
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
import { DAY_MS } from '../rollups.ts';
import { transaction } from './db.ts';
import { Params, REACH, type Reach, takeBacks } from './usage.ts';

const TIME = { bucket: '(ts / 900000) * 900000', day: '(ts / 86400000) * 86400000', ts: 'ts' } as const;

/** Ledger order of an event: its seq once sealed; unsealed ones come after every sealed one, by id. */
const ORD = 'coalesce(seq, 9007199254740992 + id)';

/**
 * The columns every part gives (text), NULL where the aggregation does not need them. sides: both
 * sides of each row (a sum: n and units signed by s); heads: chain heads, one row each.
 */
function columns(agg: Aggregation, from: 'rollup' | 'sides' | 'heads'): string {
  const rollup = from === 'rollup';
  const latest = (col: string) =>
    rollup
      ? `(array_agg(${col} ORDER BY last_ts DESC, last_seq DESC))[1]::text`
      : `(array_agg(${col} ORDER BY ts DESC, ${ORD} DESC))[1]::text`;
  return [
    `${rollup ? 'sum(n)' : from === 'sides' ? 'sum(s)' : 'count(*)'}::text AS n`,
    `${agg === 'sum' ? (rollup ? 'sum(u)::text' : 'sum(s * units)::text') : 'NULL::text'} AS u`,
    `${agg === 'min' ? (rollup ? 'min(min_units)::text' : 'min(units)::text') : 'NULL::text'} AS mn`,
    `${agg === 'max' ? (rollup ? 'max(max_units)::text' : 'max(units)::text') : 'NULL::text'} AS mx`,
    `${agg === 'latest' ? latest(rollup ? 'last_ts' : 'ts') : 'NULL::text'} AS lt`,
    `${agg === 'latest' ? latest(rollup ? 'last_seq' : ORD) : 'NULL::text'} AS lo`,
    `${agg === 'latest' ? latest(rollup ? 'last_units' : 'units') : 'NULL::text'} AS lu`,
  ].join(', ');
}

/**
 * One part as a SELECT of (t, g, c, n, u, mn, mx, lt, lo, lu), its values bound in p. A sum
 * (isSum) reads both sides of each row, net of corrections; max, min and latest read chain heads
 * (rows that are not voids and that no correction replaced), and the buckets holding a correction
 * from their events (part corrected), never from their rollup rows.
 */
export function partSql(part: MeterPart, agg: Aggregation, ns: string, p: Params, reach: Reach): string {
  const nsP = p.add(ns);
  const from = p.add(part.from, '::int8');
  const to = p.add(part.to, '::int8');
  const filter = part.actions === null || part.kind === 'callers' ? '' : ` AND action = ANY(${p.add(part.actions, '::text[]')})`;
  const sum = isSum(agg);
  const t = part.kind === 'buckets' ? 'bucket' : part.kind === 'callers' ? 'day' : TIME[part.time];
  const g = part.group ?? null;
  const c = part.callers ? 'caller' : null;
  const keys = [t, g, c].filter((k): k is string => k !== null);
  const select = (src: 'rollup' | 'sides' | 'heads') =>
    `SELECT (${t})::text AS t, ${g ?? 'NULL'}::text AS g, ${c ?? 'NULL'}::text AS c, ${columns(agg, src)}`;
  const group = ` GROUP BY ${keys.join(', ')}`;
  // Through the partial index of corrections: the buckets holding one, the versions replaced.
  const corrections = `FROM events WHERE namespace = ${nsP} AND ts >= ${from} AND ts < ${to} AND kind <> 0`;
  const correctedBuckets = `SELECT (ts / 900000) * 900000 ${corrections}`;
  const replaced = `SELECT corrects_id ${corrections} AND corrects_id IS NOT NULL`;
  if (part.kind === 'buckets')
    return `${select('rollup')} FROM usage_buckets WHERE namespace = ${nsP} AND bucket >= ${from} AND bucket < ${to}${filter}${
      sum ? '' : ` AND bucket NOT IN (${correctedBuckets})`
    }${group}`;
  if (part.kind === 'distinct') throw new Error('a distinct part is counted (distinctSql), not read as rows');
  if (part.kind === 'callers')
    return `${select('rollup')} FROM usage_caller_days WHERE namespace = ${nsP} AND day >= ${from} AND day < ${to}${group}`;
  if (part.kind === 'corrected')
    return `${select('heads')} FROM (SELECT DISTINCT (ts / 900000) * 900000 AS cb ${corrections}) AS cbs
      JOIN events ON events.namespace = ${nsP} AND events.ts >= cbs.cb AND events.ts < cbs.cb + 900000
      WHERE events.kind <> 1 AND events.id NOT IN (${replaced})${filter}${group}`;
  if (part.kind === 'tail') {
    // As usage's tail (postgres/usage.ts partSql): what the rollups do not hold, in disjoint
    // branches on their own indexes, the range compared as expressions so that the planner cannot
    // read every event of it through (namespace, ts).
    const inRange = `namespace || '' = ${nsP} AND ts + 0 >= ${from} AND ts + 0 < ${to}`;
    const wheres = [`seq IS NULL AND ${inRange}`];
    if (reach.sealed > reach.r) wheres.push(`seq > ${p.add(reach.r, '::int8')} AND seq <= ${p.add(reach.sealed, '::int8')} AND ${inRange}`);
    // A sum: each branch's rows +1 and the take-backs of its corrections −1 (through their index).
    const corrections = `namespace = ${nsP} AND ts >= ${from} AND ts < ${to}`;
    if (sum)
      return `${select('sides')} FROM (${wheres
        .map(
          (w) => `SELECT ts, action, caller, units, 1 AS s FROM events WHERE ${w}
          UNION ALL SELECT ts, action, caller, units, -1 FROM (${takeBacks(`${w.replace(inRange, corrections)}`)}) AS t`,
        )
        .join(' UNION ALL ')}) AS events WHERE true${filter}${group}`;
    return `${select('heads')} FROM (${wheres.map((w) => `SELECT * FROM events WHERE ${w}`).join(' UNION ALL ')}) AS events
      WHERE (ts / 900000) * 900000 NOT IN (${correctedBuckets})${filter}${group}`;
  }
  const range = `namespace = ${nsP} AND ts >= ${from} AND ts < ${to}`;
  if (sum)
    return `${select('sides')} FROM (SELECT ts, action, caller, units, 1 AS s FROM events WHERE ${range}
      UNION ALL SELECT ts, action, caller, units, -1 FROM (${takeBacks(range)}) AS t) AS events WHERE true${filter}${group}`;
  return `${select('heads')} FROM events WHERE ${range} AND kind <> 1 AND id NOT IN (${replaced})${filter}${group}`;
}

/**
 * A distinct part's counts in one statement, each row tagged (x): per range (a window's days),
 * over the part, and the touched callers' rows. Each is one pass over the part's caller days
 * (PostgreSQL scans 300,000 of them in parallel faster than it probes 30 key ranges, each row's n
 * a heap fetch): one-day ranges are counted by day (a day's rows are distinct callers by the
 * primary key), longer ones by (range, caller) pairs made distinct first, the range found by
 * width_bucket over the ranges' starts. The total only where it is apart (totalApart).
 */
function distinctSql(part: MeterPart, ranges: ReturnType<typeof distinctRanges>, callers: string[], ns: string, p: Params): string {
  const nsP = p.add(ns);
  const from = p.add(part.from, '::int8');
  const to = p.add(part.to, '::int8');
  const days = `FROM usage_caller_days WHERE namespace = ${nsP} AND day >= ${from} AND day < ${to}`;
  const sql: string[] = [];
  if (ranges.every((r) => r.to - r.from <= DAY_MS))
    sql.push(`SELECT 'w' AS x, day::text AS t, NULL::text AS c, count(*)::text AS n ${days} AND n > 0 GROUP BY day`);
  else {
    const starts = p.add(
      ranges.map((r) => r.from),
      '::int8[]',
    );
    sql.push(`SELECT 'w' AS x, (${starts})[i]::text AS t, NULL::text AS c, count(*)::text AS n
      FROM (SELECT DISTINCT width_bucket(day, ${starts}) AS i, caller ${days} AND n > 0) AS d GROUP BY i`);
  }
  if (totalApart(part, ranges))
    sql.push(`SELECT 't', NULL, NULL, (SELECT count(*) FROM (SELECT DISTINCT caller ${days} AND n > 0) AS d)::text`);
  if (callers.length > 0) sql.push(`SELECT 'c', day::text, caller, n::text ${days} AND caller = ANY(${p.add(callers, '::text[]')})`);
  return sql.join('\nUNION ALL ');
}

type Row = Record<'t' | 'n' | 'u' | 'mn' | 'mx' | 'lt' | 'lo' | 'lu', string | null> & { g: string | null; c: string | null };

const num = (v: string | null) => (v === null ? null : Number(v));
const COLUMNS = 'name, version, aggregation, actions, from_ms, created_at';
/** One meter's versions are appended one writer at a time (a lock per owner and name: a name has no /). */
const LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('meters:' || $1 || '/' || $2, 0))";

export class PgMeterStore implements MeterStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  private async versionsOn(client: pg.Pool | pg.PoolClient, owner: string, name: string): Promise<MeterVersion[]> {
    const { rows } = await client.query<MeterRowStored>({
      text: `SELECT ${COLUMNS} FROM meters WHERE owner = $1 AND name = $2 ORDER BY version`,
      values: [owner, name],
    });
    return rows.map(meterOfRow);
  }

  async define(owner: string, name: string, input: MeterInput, now: number): Promise<{ version: MeterVersion; created: boolean }> {
    return transaction(this.pool, async (client) => {
      await client.query(LOCK, [owner, name]);
      const existing = await this.versionsOn(client, owner, name);
      if (existing.length === 0) {
        const { rows } = await client.query<{ n: string }>('SELECT count(DISTINCT name) AS n FROM meters WHERE owner = $1', [owner]);
        if (Number(rows[0]!.n) >= MAX_METERS_PER_OWNER)
          throw new MeterError('name', `max_meters:${MAX_METERS_PER_OWNER}`, `an owner has at most ${MAX_METERS_PER_OWNER} meters`, 409);
      }
      const v = nextVersion(existing, name, input, now);
      if (!v) return { version: existing.at(-1)!, created: false };
      await client.query({
        text: `INSERT INTO meters (owner, ${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        values: [owner, v.name, v.version, v.aggregation, v.actions === null ? null : JSON.stringify(v.actions), v.from_ms, v.created_at],
      });
      return { version: v, created: true };
    });
  }

  async versions(owner: string, name: string): Promise<MeterVersion[]> {
    return this.versionsOn(this.pool, owner, name);
  }

  async list(owner: string): Promise<MeterVersion[]> {
    const { rows } = await this.pool.query<MeterRowStored>({
      text: `SELECT DISTINCT ON (name COLLATE "C") ${COLUMNS} FROM meters WHERE owner = $1 ORDER BY name COLLATE "C", version DESC`,
      values: [owner],
    });
    return rows.map(meterOfRow);
  }

  async usage(q: MeterUsageQuery): Promise<MeterUsageResult> {
    const { plan, rows, distinct } = await transaction(this.pool, async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const plan = planMeterQuery(q, await this.versionsOn(client, q.owner, q.name));
      if (plan.parts.length === 0) return { plan, rows: [] as MeterRow[] };
      const head = await client.query<{ r: string; sealed: string }>(REACH);
      const reach = { r: Number(head.rows[0]!.r), sealed: Number(head.rows[0]!.sealed) };
      const p = new Params();
      const text = plan.parts
        .filter((part) => part.kind !== 'distinct')
        .map((part) => `(${partSql(part, plan.aggregation, q.namespace, p, reach)})`)
        .join('\nUNION ALL ');
      const rows = text === '' ? [] : (await client.query<Row>({ text, values: p.values })).rows.map(meterRow);
      const part = plan.parts.find((x) => x.kind === 'distinct');
      if (!part) return { plan, rows };
      const d = new Params();
      const counts = await client.query<{ x: 'w' | 't' | 'c'; t: string | null; c: string | null; n: string }>({
        text: distinctSql(part, distinctRanges(part, plan.windows), touchedCallers(rows), q.namespace, d),
        values: d.values,
      });
      const distinct: DistinctCounts = { windows: [], touched: [] };
      for (const r of counts.rows)
        if (r.x === 'w') {
          if (r.n !== '0') distinct.windows.push({ t: Number(r.t), k: Number(r.n) });
        } else if (r.x === 't') distinct.total = Number(r.n);
        else
          distinct.touched.push({
            ...meterRow({ t: r.t, g: null, c: r.c, n: r.n, u: null, mn: null, mx: null, lt: null, lo: null, lu: null }),
          });
      return { plan, rows, distinct };
    });
    return foldMeter(q, plan.aggregation, plan.windows, rows, distinct);
  }
}

function meterRow(r: Row): MeterRow {
  return {
    t: Number(r.t),
    g: r.g,
    c: r.c,
    n: r.n === null ? 0n : BigInt(r.n),
    u: r.u === null ? 0n : BigInt(r.u),
    mn: num(r.mn),
    mx: num(r.mx),
    lt: num(r.lt),
    lo: r.lo === null ? null : BigInt(r.lo),
    lu: num(r.lu),
  };
}
