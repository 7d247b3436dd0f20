// Writing the usage rollups on PostgreSQL (docs/design.md "Usage rollups"): one epoch's events
// added to the buckets and caller days, inside the fenced transaction that seals the epoch (only
// the leader writes them); epochs sealed before rollups existed are rolled up one fenced
// transaction each when the leader's sealer runs. Any instance reads them.
import type pg from 'pg';
import { periodOfRow, type ClassificationRow } from '../classification-periods.ts';
import type { RollupProgress } from '../rollup-check.ts';
import { billableExpr, Params, takeBacks } from './usage.ts';

type Client = pg.ClientBase | pg.Pool;

// Signed sums: every row +1, the take-backs of corrections −1 (usage.ts takeBacks), so a row holds
// the chain heads' net count and units; min, max and latest are over both.
const SUMS = `sum(s) AS n, sum(s * units) AS u, coalesce(sum(s) FILTER (WHERE b AND units > 0), 0) AS bn,
  coalesce(sum(s * units) FILTER (WHERE b), 0) AS bu`;
const ADD = (t: string) => `n = ${t}.n + excluded.n, u = ${t}.u + excluded.u, bn = ${t}.bn + excluded.bn, bu = ${t}.bu + excluded.bu`;

/** The rows `where` selects, +1 each as before corrections, and the take-backs of their corrections, −1. */
const signed = (where: string) =>
  `SELECT namespace, ts, action, caller, units, seq, 1 AS s FROM events WHERE ${where}
   UNION ALL SELECT namespace, ts, action, caller, units, seq, -1 FROM (${takeBacks(where)}) AS t`;

/**
 * Adds epoch `epoch` (positions lo … hi) to the rollups, inside the caller's (fenced)
 * transaction, if the rollups reach the epoch before it; false (nothing written) when they are
 * behind: the catch-up adds the missing epochs first.
 */
export async function rollUpEpoch(client: Client, epoch: number, lo: number, hi: number): Promise<boolean> {
  const state = await client.query<{ epoch: string }>('SELECT epoch FROM rollup_state FOR UPDATE');
  if (Number(state.rows[0]!.epoch) !== epoch - 1) return false;
  const history = await client.query<ClassificationRow>(
    'SELECT from_ms, billable, non_billable, other FROM classifications ORDER BY from_ms',
  );
  const p = new Params();
  const loP = p.add(lo, '::int8');
  const hiP = p.add(hi, '::int8');
  const b = billableExpr(history.rows.map(periodOfRow), p);
  const source = `SELECT x.*, ${b} AS b FROM (${signed(`seq BETWEEN ${loP} AND ${hiP}`)}) AS x`;
  // The latest side of each (bucket, action) by event time, ties by ledger order, then the + side.
  // A later epoch has higher positions, so on a tie in time its side is the later one.
  await client.query({
    text: `INSERT INTO usage_buckets (namespace, bucket, action, n, u, bn, bu, min_units, max_units, last_ts, last_seq, last_units)
      SELECT namespace, (ts / 900000) * 900000, action, ${SUMS}, min(units), max(units),
        (array_agg(ts ORDER BY ts DESC, seq DESC, s DESC, units DESC))[1], (array_agg(seq ORDER BY ts DESC, seq DESC, s DESC, units DESC))[1],
        (array_agg(units ORDER BY ts DESC, seq DESC, s DESC, units DESC))[1]
      FROM (${source}) AS e GROUP BY 1, 2, 3
      ON CONFLICT (namespace, bucket, action) DO UPDATE SET ${ADD('usage_buckets')},
        min_units = least(usage_buckets.min_units, excluded.min_units),
        max_units = greatest(usage_buckets.max_units, excluded.max_units),
        last_seq = CASE WHEN excluded.last_ts >= usage_buckets.last_ts THEN excluded.last_seq ELSE usage_buckets.last_seq END,
        last_units = CASE WHEN excluded.last_ts >= usage_buckets.last_ts THEN excluded.last_units ELSE usage_buckets.last_units END,
        last_ts = greatest(usage_buckets.last_ts, excluded.last_ts)`,
    values: p.values,
  });
  await client.query({
    text: `INSERT INTO usage_caller_days (namespace, day, caller, n, u, bn, bu)
      SELECT namespace, (ts / 86400000) * 86400000, caller, ${SUMS} FROM (${source}) AS e GROUP BY 1, 2, 3
      ON CONFLICT (namespace, day, caller) DO UPDATE SET ${ADD('usage_caller_days')}`,
    values: p.values,
  });
  await client.query({ text: 'UPDATE rollup_state SET epoch = $1', values: [epoch] });
  return true;
}

/** The sealed epochs the rollups do not reach yet, in order. */
export async function missingEpochs(pool: Client): Promise<Array<{ epoch: number; first_seq: number; last_seq: number; size: number }>> {
  const { rows } = await pool.query<{ epoch: string; first_seq: string; last_seq: string; size: string }>(
    'SELECT epoch, first_seq, last_seq, size FROM epochs WHERE epoch > (SELECT epoch FROM rollup_state) ORDER BY epoch',
  );
  return rows.map((r) => ({ epoch: Number(r.epoch), first_seq: Number(r.first_seq), last_seq: Number(r.last_seq), size: Number(r.size) }));
}

/**
 * Rolls up every epoch the rollups do not reach, one transaction each, through `fenced` (the
 * leader's fence: a stale leader writes nothing); how many.
 */
export async function catchUpRollups(
  pool: pg.Pool,
  fenced: <T>(fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>,
  progress: RollupProgress = () => {},
): Promise<number> {
  const missing = await missingEpochs(pool);
  let done = 0;
  for (const e of missing) {
    if (!(await fenced((client) => rollUpEpoch(client, e.epoch, e.first_seq, e.last_seq)))) break;
    done++;
    progress({ epoch: e.epoch, done, of: missing.length, events: e.size });
  }
  return done;
}

/** Drops every rollup row, so that the catch-up builds them again from the events. */
export async function clearRollups(client: Client): Promise<void> {
  await client.query('DELETE FROM usage_buckets');
  await client.query('DELETE FROM usage_caller_days');
  await client.query('UPDATE rollup_state SET epoch = -1');
}

/** One rollup row that differs from the events: its table and key, and both sides' values (JSON arrays; null: absent). */
export interface RollupDifferenceRow {
  tbl: 'usage_buckets' | 'usage_caller_days';
  namespace: string;
  k1: number;
  k2: string;
  stored: string | null;
  recomputed: string | null;
}

/**
 * The rollup rows that differ from the same aggregates recomputed from the events they should
 * hold (every event up to the last rolled-up epoch), diffed in the database: the count, and the
 * first `limit`. Null when the ledger has no rollups yet (a schema before them).
 */
export async function rollupDifferences(client: Client, limit: number): Promise<{ count: number; rows: RollupDifferenceRow[] } | null> {
  const has = await client.query<{ t: string | null }>("SELECT to_regclass('rollup_state')::text AS t");
  if (!has.rows[0]?.t) return null;
  const history = await client.query<ClassificationRow>(
    'SELECT from_ms, billable, non_billable, other FROM classifications ORDER BY from_ms',
  );
  const p = new Params();
  const b = billableExpr(history.rows.map(periodOfRow), p);
  const upTo = 'SELECT coalesce((SELECT e.last_seq FROM rollup_state s JOIN epochs e ON e.epoch = s.epoch), 0)';
  const src = `SELECT x.*, ${b} AS b FROM (${signed(`seq <= (${upTo})`)}) AS x`;
  const values = (t: string, cols: string[]) =>
    `CASE WHEN ${t}.namespace IS NULL THEN NULL ELSE json_build_array(${cols.map((c) => `${t}.${c}`).join(', ')})::text END`;
  const diff = (table: string, keys: [string, string], want: string, cols: string[]) => `
    WITH want AS (${want}), have AS (SELECT namespace, ${keys.join(', ')}, ${cols.join(', ')} FROM ${table})
    SELECT '${table}' AS tbl, coalesce(w.namespace, h.namespace) AS namespace,
      coalesce(w.${keys[0]}, h.${keys[0]})::text AS k1, coalesce(w.${keys[1]}, h.${keys[1]}) AS k2,
      ${values('h', cols)} AS stored, ${values('w', cols)} AS recomputed
    FROM want AS w FULL OUTER JOIN have AS h ON w.namespace = h.namespace AND w.${keys[0]} = h.${keys[0]} AND w.${keys[1]} = h.${keys[1]}
    WHERE h.namespace IS NULL OR w.namespace IS NULL OR ${cols.map((c) => `w.${c} IS DISTINCT FROM h.${c}`).join(' OR ')}`;
  const sums = ['n', 'u', 'bn', 'bu'];
  const statements = [
    diff(
      'usage_buckets',
      ['bucket', 'action'],
      `SELECT namespace, (ts / 900000) * 900000 AS bucket, action, ${SUMS}, min(units) AS min_units, max(units) AS max_units, max(ts) AS last_ts
       FROM (${src}) AS e GROUP BY 1, 2, 3`,
      [...sums, 'min_units', 'max_units', 'last_ts'],
    ),
    diff(
      'usage_caller_days',
      ['day', 'caller'],
      `SELECT namespace, (ts / 86400000) * 86400000 AS day, caller, ${SUMS} FROM (${src}) AS e GROUP BY 1, 2, 3`,
      sums,
    ),
  ];
  let count = 0;
  const rows: RollupDifferenceRow[] = [];
  for (const text of statements) {
    const r = await client.query<RollupDifferenceRow & { k1: string }>({ text, values: p.values });
    count += r.rows.length;
    for (const x of r.rows) if (rows.length < limit) rows.push({ ...x, k1: Number(x.k1) });
  }
  return { count, rows };
}
