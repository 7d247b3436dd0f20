// Writing the usage rollups on PostgreSQL (docs/design.md "Usage rollups"): one epoch's events
// added to the buckets and caller days, inside the fenced transaction that seals the epoch (only
// the leader writes them); epochs sealed before rollups existed are rolled up one fenced
// transaction each when the leader's sealer runs. Any instance reads them.
import type pg from 'pg';
import { periodOfRow, type ClassificationRow } from '../classification-periods.ts';
import type { RollupProgress } from '../rollup-check.ts';
import { billableExpr, Params } from './usage.ts';

type Client = pg.PoolClient | pg.Pool;

const SUMS = `count(*) AS n, sum(units) AS u, count(*) FILTER (WHERE b AND units > 0) AS bn, coalesce(sum(units) FILTER (WHERE b), 0) AS bu`;
const ADD = (t: string) => `n = ${t}.n + excluded.n, u = ${t}.u + excluded.u, bn = ${t}.bn + excluded.bn, bu = ${t}.bu + excluded.bu`;

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
  const source = `SELECT namespace, ts, action, caller, units, seq, ${b} AS b FROM events WHERE seq BETWEEN ${loP} AND ${hiP}`;
  // The latest event of each (bucket, action) by event time, ties by ledger order. A later epoch
  // has higher positions, so on a tie in time its event is the later one.
  await client.query({
    text: `INSERT INTO usage_buckets (namespace, bucket, action, n, u, bn, bu, min_units, max_units, last_ts, last_seq, last_units)
      SELECT namespace, (ts / 900000) * 900000, action, ${SUMS}, min(units), max(units),
        (array_agg(ts ORDER BY ts DESC, seq DESC))[1], (array_agg(seq ORDER BY ts DESC, seq DESC))[1],
        (array_agg(units ORDER BY ts DESC, seq DESC))[1]
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
