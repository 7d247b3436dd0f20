// Witness cosignatures on SQLite (migration 009). Only SQL; the rules are in ../cosignatures.ts.
import { COSIGNATURE_COLUMNS, checkCosignature, cosignatureOf, type CosignatureRow } from '../cosignatures.ts';
import type { CosignatureStore, StoredCosignature } from '../types.ts';
import type { Db } from './db.ts';

export class SqliteCosignatureStore implements CosignatureStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async add(c: StoredCosignature): Promise<boolean> {
    checkCosignature(c);
    // SQLite does not enforce the foreign key unless asked: check the checkpoint in the same statement.
    const r = this.db
      .prepare(
        `INSERT INTO witness_cosignatures (${COSIGNATURE_COLUMNS})
         SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM checkpoints WHERE size = ?)
         ON CONFLICT (size, witness) DO NOTHING`,
      )
      .run(c.size, c.witness, c.line, c.cosigned_at, c.received_at_ms, c.size);
    if (r.changes === 0 && !this.db.prepare('SELECT 1 FROM checkpoints WHERE size = ?').get(c.size))
      throw new RangeError(`cosignature size: no checkpoint of size ${c.size} is stored`);
    return r.changes === 1;
  }

  async forSize(size: number): Promise<StoredCosignature[]> {
    const rows = this.db
      .prepare(`SELECT ${COSIGNATURE_COLUMNS} FROM witness_cosignatures WHERE size = ? ORDER BY received_at, witness`)
      .all(size) as CosignatureRow[];
    return rows.map(cosignatureOf);
  }

  async latestSize(witness: string): Promise<number | null> {
    const row = this.db.prepare('SELECT max(size) AS s FROM witness_cosignatures WHERE witness = ?').get(witness) as { s: number | null };
    return row.s;
  }
}
