// The classification history on PostgreSQL: append-only rows. An append waits out the event
// writers in flight and holds them off until it commits (WRITERS_LOCK, exclusive), so the
// latest event time it reads is final: no stored event can fall inside the new period.
import type pg from 'pg';
import type { ClassificationPeriod, ClassificationPolicy } from '../../event/classification.ts';
import { periodOfRow, periodToAppend, type ClassificationRow } from '../classification-periods.ts';
import type { ClassificationStore } from '../types.ts';
import { transaction } from './db.ts';
import { WRITERS_LOCK } from './events.ts';

export const HISTORY_SQL = 'SELECT from_ms, billable, non_billable, other FROM classifications ORDER BY from_ms';

export class PgClassificationStore implements ClassificationStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async history(): Promise<ClassificationPeriod[]> {
    const { rows } = await this.pool.query<ClassificationRow>({ name: 'classification-history', text: HISTORY_SQL });
    return rows.map(periodOfRow);
  }

  async append(policy: ClassificationPolicy, opts: { fromMs?: number; now: number }): Promise<ClassificationPeriod> {
    return transaction(this.pool, async (client) => {
      await client.query('LOCK TABLE classifications IN EXCLUSIVE MODE'); // one appender at a time
      await client.query('SELECT pg_advisory_xact_lock($1::int8)', [WRITERS_LOCK.toString()]);
      // Read committed: these statements see every writer that finished before the lock.
      const last = await client.query<{ m: number | null }>('SELECT max(from_ms) AS m FROM classifications');
      const ts = await client.query<{ m: number | null }>('SELECT max(ts) AS m FROM events');
      const period = periodToAppend(policy, opts, { lastFrom: last.rows[0]!.m, maxTs: ts.rows[0]!.m });
      await client.query('INSERT INTO classifications (from_ms, billable, non_billable, other, created_at) VALUES ($1, $2, $3, $4, $5)', [
        period.from_ms,
        JSON.stringify(period.billable),
        JSON.stringify(period.non_billable),
        period.other,
        opts.now,
      ]);
      return period;
    });
  }
}
