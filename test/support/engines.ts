// One suite, both engines: forEachEngine runs a describe block on SQLite and on PostgreSQL (a
// throw-away cluster, a fresh database per service). Without PostgreSQL the second block is
// skipped with one warning, unless CI=true or RECEIPTS_REQUIRE_POSTGRES=1.
import { afterAll, beforeAll, describe } from 'vitest';
import type { Engine } from '../../src/ledger/index.ts';
import { openPostgresLedger } from '../../src/ledger/postgres/index.ts';
import { sqliteLedger, type LedgerFactory } from '../helpers.ts';
import { findPostgresBin, freshDatabase, postgresRequired, startPostgres, type PostgresCluster } from './postgres.ts';

const postgresHere = findPostgresBin() !== null;
let warned = false;

export function forEachEngine(body: (fresh: LedgerFactory, engine: Engine) => void): void {
  describe('sqlite', () => body(sqliteLedger, 'sqlite'));
  if (!postgresHere && !postgresRequired()) {
    if (!warned)
      console.warn('SKIPPED: the PostgreSQL half of the engine suites (no initdb/pg_ctl found; apt-get install postgresql to run it)');
    warned = true;
  }
  describe.skipIf(!postgresHere && !postgresRequired())('postgres', () => {
    let cluster: PostgresCluster | null = null;
    beforeAll(async () => {
      cluster = await startPostgres();
      if (!cluster)
        throw new Error('PostgreSQL is required here (CI=true or RECEIPTS_REQUIRE_POSTGRES=1) but initdb/pg_ctl were not found');
    }, 60_000);
    afterAll(async () => {
      await cluster?.stop();
    });
    const fresh: LedgerFactory = async () => {
      const ledger = await openPostgresLedger(await freshDatabase(cluster!.url), { leaseMs: 600 });
      return { ledger, cleanup: async () => {} };
    };
    body(fresh, 'postgres');
  });
}
