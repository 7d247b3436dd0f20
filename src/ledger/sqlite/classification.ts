// The classification history on SQLite: append-only rows, appended in an IMMEDIATE transaction
// so no event can be written between the check and the insert.
import type { ClassificationPeriod, ClassificationPolicy } from '../../event/classification.ts';
import { periodOfRow, periodToAppend, type ClassificationRow } from '../classification-periods.ts';
import type { ClassificationStore } from '../types.ts';
import type { Db } from './db.ts';

export class SqliteClassificationStore implements ClassificationStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Synchronous read, for the usage store (same connection, no await between). */
  historySync(): ClassificationPeriod[] {
    const rows = this.db
      .prepare('SELECT from_ms, billable, non_billable, other FROM classifications ORDER BY from_ms')
      .all() as ClassificationRow[];
    return rows.map(periodOfRow);
  }

  async history(): Promise<ClassificationPeriod[]> {
    return this.historySync();
  }

  async append(policy: ClassificationPolicy, opts: { fromMs?: number; now: number }): Promise<ClassificationPeriod> {
    const tx = this.db.transaction(() => {
      const lastFrom = (this.db.prepare('SELECT max(from_ms) AS m FROM classifications').get() as { m: number | null }).m;
      // One pass over the (namespace, ts) index; only when a change is stored, never per request.
      const maxTs = (this.db.prepare('SELECT max(ts) AS m FROM events').get() as { m: number | null }).m;
      const period = periodToAppend(policy, opts, { lastFrom, maxTs });
      this.db
        .prepare('INSERT INTO classifications (from_ms, billable, non_billable, other, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(period.from_ms, JSON.stringify(period.billable), JSON.stringify(period.non_billable), period.other, opts.now);
      return period;
    });
    return tx.immediate();
  }
}
