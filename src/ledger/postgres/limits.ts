// Limits on PostgreSQL: the limits table (src/ledger/limits.ts says what a version is). A change
// is checked and appended in one transaction holding a lock per owner, so two instances cannot
// both add version n or both pass the count of limits.
import type pg from 'pg';
import {
  checkLimitCount,
  inForceAll,
  LIMIT_COLUMNS,
  type LimitInput,
  type LimitRowStored,
  type LimitStore,
  type LimitTally,
  type LimitVersion,
  limitOfRow,
  nextLimitVersion,
  rowValues,
  type SealedAsk,
  TALLY_BUCKET_MS,
} from '../limits.ts';
import { transaction } from './db.ts';
import { Params, REACH, takeBacks } from './usage.ts';

type TallyRow = { i: number; action: string | null; bucket: string | null; n: string | null; u: string | null };
const big = (v: string | null) => (v === null ? 0n : BigInt(v));

/**
 * The statement of a tally, one snapshot: row i = −1 the reach, i = 0 the tail by action and
 * bucket, i = 1 + k ask k's rollup sums. The tail is the events past the last read (the id range
 * of the primary key) or, read whole, the unsealed (partial index) and sealed-not-rolled-up (seq)
 * branches; the namespace compared as an expression so the planner never takes its whole range.
 */
function tallySql(namespace: string, reach: number, after: number, asOf: number, asks: readonly SealedAsk[]): pg.QueryConfig {
  const p = new Params();
  const ns = p.add(namespace);
  const r = p.add(reach, '::int8');
  const top = p.add(asOf, '::int8');
  const inNs = `namespace || '' = ${ns}`;
  const conds =
    after > 0
      ? [`id > ${p.add(after, '::int8')} AND id <= ${top} AND (seq IS NULL OR seq > ${r})`]
      : [`seq IS NULL AND id <= ${top}`, `seq > ${r} AND id <= ${top}`];
  const sides = conds
    .map(
      (c) => `SELECT action, ts, units, 1 AS s FROM events WHERE ${c} AND ${inNs}
      UNION ALL SELECT action, ts, units, -1 FROM (${takeBacks(`${c} AND ${inNs}`)}) AS t`,
    )
    .join('\n      UNION ALL ');
  const parts = [
    `SELECT -1 AS i, NULL::text AS action, NULL::text AS bucket, r::text AS n, NULL::text AS u FROM (${REACH}) AS reach`,
    `SELECT 0, action::text, ((ts / ${TALLY_BUCKET_MS}) * ${TALLY_BUCKET_MS})::text, sum(s)::text, sum(s * units)::text FROM (${sides}) AS x GROUP BY 2, 3`,
    ...asks.map(
      (a, k) =>
        `SELECT ${k + 1}, NULL, NULL, sum(n)::text, sum(u)::text FROM usage_buckets WHERE namespace = ${ns}
         AND bucket >= ${p.add(a.from, '::int8')} AND bucket < ${p.add(a.to, '::int8')}${a.actions === null ? '' : ` AND action = ANY(${p.add(a.actions, '::text[]')})`}`,
    ),
  ];
  return { text: parts.join('\nUNION ALL '), values: p.values };
}

const LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('limits:' || $1, 0))";
const LATEST = `SELECT DISTINCT ON (id COLLATE "C") ${LIMIT_COLUMNS} FROM limits WHERE owner = $1 ORDER BY id COLLATE "C", version DESC`;

export class PgLimitStore implements LimitStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  private async versionsOn(client: pg.Pool | pg.PoolClient, owner: string, id: string): Promise<LimitVersion[]> {
    const { rows } = await client.query<LimitRowStored>({
      text: `SELECT ${LIMIT_COLUMNS} FROM limits WHERE owner = $1 AND id = $2 ORDER BY version`,
      values: [owner, id],
    });
    return rows.map(limitOfRow);
  }

  private async insert(client: pg.PoolClient, owner: string, v: LimitVersion): Promise<void> {
    await client.query({
      text: `INSERT INTO limits (owner, ${LIMIT_COLUMNS}) VALUES (${Array.from({ length: 15 }, (_, i) => `$${i + 1}`).join(', ')})`,
      values: rowValues(owner, v, (d) => d),
    });
  }

  async define(owner: string, id: string, input: LimitInput, now: number): Promise<{ version: LimitVersion; created: boolean }> {
    return transaction(this.pool, async (client) => {
      await client.query(LOCK, [owner]);
      const existing = await this.versionsOn(client, owner, id);
      if (existing.length === 0 || existing.at(-1)!.deleted) {
        const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM (${LATEST}) AS l WHERE NOT deleted`, [owner]);
        checkLimitCount(Number(rows[0]!.n));
      }
      const v = nextLimitVersion(existing, id, input, now);
      if (!v) return { version: existing.at(-1)!, created: false };
      await this.insert(client, owner, v);
      return { version: v, created: true };
    });
  }

  async remove(owner: string, id: string, now: number): Promise<LimitVersion | null> {
    return transaction(this.pool, async (client) => {
      await client.query(LOCK, [owner]);
      const existing = await this.versionsOn(client, owner, id);
      const latest = existing.at(-1);
      if (!latest || latest.deleted) return null;
      const v = nextLimitVersion(existing, id, { ...latest, deleted: true }, now)!;
      await this.insert(client, owner, v);
      return v;
    });
  }

  async versions(owner: string, id: string): Promise<LimitVersion[]> {
    return this.versionsOn(this.pool, owner, id);
  }

  async reach(): Promise<number> {
    const { rows } = await this.pool.query<{ r: string }>({ name: 'limits-reach', text: REACH });
    return Number(rows[0]!.r);
  }

  async tally(namespace: string, reach: number, after: number, asOf: number, asks: readonly SealedAsk[]): Promise<LimitTally> {
    // One statement: one snapshot for the reach, the tail and the rollups.
    const { rows } = await this.pool.query<TallyRow>(tallySql(namespace, reach, after, asOf, asks));
    const out: LimitTally = { reach: -1, tail: [], sealed: asks.map(() => ({ n: 0n, units: 0n })) };
    for (const x of rows) {
      if (x.i === -1) out.reach = Number(x.n);
      else if (x.i === 0) out.tail.push({ action: x.action!, bucket: Number(x.bucket), n: big(x.n), units: big(x.u) });
      else out.sealed[x.i - 1] = { n: big(x.n), units: big(x.u) };
    }
    if (out.reach !== reach) return { reach: out.reach, tail: [], sealed: [] };
    return out;
  }

  async list(owner: string, namespace?: string): Promise<LimitVersion[]> {
    const { rows } = await this.pool.query<LimitRowStored>({
      text: `SELECT * FROM (${LATEST}) AS l WHERE NOT deleted${namespace === undefined ? '' : ' AND namespace = $2'} ORDER BY id COLLATE "C"`,
      values: namespace === undefined ? [owner] : [owner, namespace],
    });
    return rows.map(limitOfRow);
  }

  async inForce(owner: string, namespace: string, at: number): Promise<LimitVersion[]> {
    // Every version of each limit that ever named the namespace (a later one may move or delete it).
    const { rows } = await this.pool.query<LimitRowStored>({
      text: `SELECT ${LIMIT_COLUMNS} FROM limits WHERE owner = $1 AND id IN (SELECT id FROM limits WHERE owner = $1 AND namespace = $2) ORDER BY id, version`,
      values: [owner, namespace],
    });
    return inForceAll(rows.map(limitOfRow), namespace, at);
  }
}
