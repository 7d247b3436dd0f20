// Witness cosignatures on PostgreSQL (migration 009). Only SQL; the rules are in ../cosignatures.ts.
// Not fenced: a cosignature is verified against the checkpoint before it is stored, so whichever
// instance stores it, it is true; the first one per (size, witness) is kept.
import type pg from 'pg';
import { COSIGNATURE_COLUMNS, checkCosignature, cosignatureOf, type CosignatureRow } from '../cosignatures.ts';
import type { CosignatureStore, StoredCosignature } from '../types.ts';

export class PgCosignatureStore implements CosignatureStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  async add(c: StoredCosignature): Promise<boolean> {
    checkCosignature(c);
    try {
      const r = await this.pool.query({
        name: 'cosignatures-add',
        text: `INSERT INTO witness_cosignatures (${COSIGNATURE_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (size, witness) DO NOTHING`,
        values: [c.size, c.witness, c.line, c.cosigned_at, c.received_at_ms],
      });
      return r.rowCount === 1;
    } catch (err) {
      if ((err as { code?: string }).code === '23503')
        throw new RangeError(`cosignature size: no checkpoint of size ${c.size} is stored`, { cause: err });
      throw err;
    }
  }

  async forSize(size: number): Promise<StoredCosignature[]> {
    const { rows } = await this.pool.query<CosignatureRow>({
      name: 'cosignatures-for-size',
      text: `SELECT ${COSIGNATURE_COLUMNS} FROM witness_cosignatures WHERE size = $1 ORDER BY received_at, witness`,
      values: [size],
    });
    return rows.map(cosignatureOf);
  }

  async latestSize(witness: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ s: string | null }>({
      name: 'cosignatures-latest',
      text: 'SELECT max(size) AS s FROM witness_cosignatures WHERE witness = $1',
      values: [witness],
    });
    return rows[0]!.s === null ? null : Number(rows[0]!.s);
  }
}
