// The PostgreSQL connection pool, exact integer parsing, transactions, and numbered SQL
// migrations applied once each under an advisory lock (recorded in schema_migrations).
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { loadMigrations as loadMigrationFiles, SchemaTooNewError, type Migration } from '../schema-migrations.ts';

/** pg_advisory_xact_lock key held while migrating: "sui-rcpM" as 8 bytes. */
export const MIGRATION_LOCK = 0x7375692d7263704dn;
/** pg_advisory_lock key the leader holds on its own connection: "sui-rcpL". */
export const LEADER_LOCK = 0x7375692d7263704cn;

const INT8_OID = 20;

/**
 * BIGINT columns (ids, seqs, units, ms times, counts) all fit a JS number exactly. A value that
 * does not is refused rather than rounded: sums are read as text, never through this.
 */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`PostgreSQL returned the integer ${text}, beyond 2^53−1: read it as text`);
  return n;
}

export const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Server-side deadlines for every session we open. A client that is paused (SIGSTOP, a long GC)
 * or cut off by a partition cannot tell PostgreSQL it is gone; without these the server keeps its
 * session, and the locks it holds, for the kernel's keepalive time (about two hours). With them,
 * unacknowledged data or keepalive probes end the session within about `deadlineMs`.
 */
export function sessionOptions(deadlineMs: number, extra: Record<string, number> = {}): string {
  const idle = Math.max(1, Math.floor(deadlineMs / 3000));
  const settings: Record<string, number> = {
    tcp_user_timeout: Math.max(1000, deadlineMs),
    tcp_keepalives_idle: idle,
    tcp_keepalives_interval: 1,
    tcp_keepalives_count: 3,
    ...extra,
  };
  return Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
}

export function createPool(url: string, size: number, deadlineMs = 10_000, applicationName = 'sui-receipts'): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: size,
    types: pgTypes,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: Math.min(deadlineMs, 10_000),
    options: sessionOptions(deadlineMs),
    // Which instance a session belongs to, in pg_stat_activity (an operator can end one's sessions).
    application_name: applicationName.slice(0, 63),
  });
  // A connection that dies (server restart, pg_terminate_backend, a partition) must never take the
  // process down. pg emits 'error' on the client; the pool listens only while a client is idle, so
  // a client checked out for a transaction or a query has no listener then. One listener for the
  // client's whole life: the query in flight fails on its own (and the caller retries or answers
  // 503), the pool drops the client when it is released broken or found dead.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  pool.on('error', () => {});
  return pool;
}

/** Runs fn in one transaction on a pooled connection: committed if it returns, rolled back if it throws. */
export async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection is gone: do not return it to the pool
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return loadMigrationFiles(dir);
}

/**
 * Applies the migrations not yet recorded, all in one transaction holding an advisory lock: two
 * instances starting together take turns, and the second finds everything applied.
 */
export async function migrate(pool: pg.Pool, location: string, migrations = loadMigrations()): Promise<void> {
  const known = migrations.at(-1)?.version ?? 0;
  await transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > known) throw new SchemaTooNewError(location, current, known);
    for (const m of migrations) {
      if (m.version <= current) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
    }
  });
}

export { SchemaTooNewError } from '../schema-migrations.ts';
