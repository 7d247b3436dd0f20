// What fsck and migrate's copy check read from a PostgreSQL ledger, with its own SQL: one
// REPEATABLE READ READ ONLY transaction, so a ledger being served is read as of one moment.
import pg from 'pg';
import { describeLocation } from '../index.ts';
import { UnreadableLedgerError, type LedgerReader } from '../../fsck/reader.ts';
import { rollupDifferences } from './rollups.ts';
import type { Row } from '../../fsck/rows.ts';
import { columnsOf, EVENTS, TABLES, type TableRows, type TableSpec } from '../copy-tables.ts';

const EVENT_COLUMNS = 'e.id, e.seq, e.namespace, e.request_id, e.caller, e.action, e.units, e.artifact_digest, e.ts, e.leaf_hash';
/**
 * A correction's columns and the version it replaces (p_*), which fsck checks it against (its leaf v2
 * hashes that version's leaf hash). A ledger from before corrections (schema < 10) has none.
 */
const CORRECTIONS = `SELECT ${EVENT_COLUMNS}, e.kind, e.corrects_id, e.chain_id, e.prev_caller, e.prev_action, e.prev_units,
    p.leaf_hash AS p_leaf_hash, p.namespace AS p_namespace, p.ts AS p_ts, p.caller AS p_caller, p.action AS p_action,
    p.units AS p_units, p.artifact_digest AS p_artifact_digest, p.kind AS p_kind, coalesce(p.chain_id, p.id) AS p_chain
  FROM events e LEFT JOIN events p ON p.id = e.corrects_id`;
const NO_CORRECTIONS = `SELECT ${EVENT_COLUMNS}, 0 AS kind FROM events e`;
const INT8_OID = 20;
/** BIGINT as bigint: fsck refuses what is beyond 2^53 instead of reading it rounded. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => BigInt(v)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** A reader on a client the caller holds, inside the caller's transaction: close() leaves it alone. */
export function postgresReader(client: pg.ClientBase, location: string): LedgerReader {
  const rows = async (text: string, values: unknown[]) => (await client.query<Row>({ text, values })).rows;
  const count = async (text: string, values: unknown[]) => Number((await rows(text, values))[0]!.n);
  let select: Promise<string> | undefined;
  const events = async (where: string, values: unknown[]) => {
    select ??= rows(
      "SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'events' AND column_name = 'kind'",
      [],
    ).then((r) => (Number(r[0]!.n) > 0 ? CORRECTIONS : NO_CORRECTIONS));
    return rows(`${await select} ${where}`, values);
  };
  return {
    engine: 'postgres',
    location,
    epochCount: () => count('SELECT count(*) AS n FROM epochs', []),
    unsealedCount: (lastSealed) => count('SELECT count(*) AS n FROM events WHERE seq IS NULL OR seq > $1', [lastSealed]),
    epochs: (after, limit) =>
      rows('SELECT epoch, first_seq, last_seq, size, root, first_ts, last_ts FROM epochs WHERE epoch > $1 ORDER BY epoch LIMIT $2', [
        after,
        limit,
      ]),
    sealedEvents: (first, last) => events('WHERE e.seq BETWEEN $1 AND $2 ORDER BY e.seq', [first, last]),
    nodes: (first, last) =>
      rows('SELECT epoch, level, chunk, hashes FROM epoch_nodes WHERE epoch BETWEEN $1 AND $2 ORDER BY epoch, level, chunk', [first, last]),
    // events_unsealed (id WHERE seq IS NULL) serves the common case; a stray seq is rare.
    unsealedEvents: (lastSealed, after, limit) =>
      events('WHERE (e.seq IS NULL OR e.seq > $1) AND e.id > $2 ORDER BY e.id LIMIT $3', [lastSealed, after, limit]),
    rollupDifferences: (limit) => rollupDifferences(client, limit),
    close: async () => {},
  };
}

/**
 * Connects to the ledger at `url` on a connection of its own (pg reads PGPASSWORD, ~/.pgpass and
 * the URL's TLS parameters) and pins one read-only snapshot until close(). Messages name it
 * without the password.
 */
export async function openPostgresReader(url: string): Promise<LedgerReader> {
  const location = describeLocation(url);
  const client = new pg.Client({ connectionString: url, types, application_name: 'receipts fsck' });
  // A connection dropped mid-check surfaces as a failed query; this keeps it from crashing the process first.
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('events', 'epochs', 'epoch_nodes')",
    );
    if (Number(rows[0]!.n) !== 3)
      throw new UnreadableLedgerError(`${location} holds no sui-receipts ledger (no events, epochs and epoch_nodes tables): check --db`);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  } catch (err) {
    await client.end().catch(() => {});
    if (err instanceof UnreadableLedgerError) throw err;
    throw new UnreadableLedgerError(`cannot read the ledger at ${location}: ${(err as Error).message}`);
  }
  return {
    ...postgresReader(client, location),
    close: async () => {
      await client.query('ROLLBACK').catch(() => {});
      await client.end().catch(() => {});
    },
  };
}

/** Rows per FETCH of a whole table. */
const BATCH = 5000;

/** A copy as migrate checks it: fsck's reader and every table's rows, from one snapshot. */
export interface PostgresCopySnapshot extends TableRows {
  readonly reader: LedgerReader;
  /** Ends the snapshot and gives the connection back to the pool. */
  close(): Promise<void>;
}

/** One REPEATABLE READ READ ONLY snapshot of the ledger on a connection of `pool`. */
export async function openPostgresCopySnapshot(pool: pg.Pool, location: string): Promise<PostgresCopySnapshot> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  } catch (err) {
    client.release();
    throw err;
  }
  return {
    reader: postgresReader(client, location),
    tables: TABLES,
    count: async (spec) => Number((await client.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${spec.table}`)).rows[0]!.n),
    batches: (spec) => tableBatches(client, spec),
    close: async () => {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
    },
  };
}

/** A table in key order through a server-side cursor, a batch at a time. */
async function* tableBatches(client: pg.ClientBase, spec: TableSpec): AsyncGenerator<Row[]> {
  // COLLATE "C": text keys in byte order, as SQLite orders them, whatever the database's collation.
  const order = spec === EVENTS ? 'id' : spec.key.map((k) => (spec.kinds[k]?.startsWith('text') ? `${k} COLLATE "C"` : k)).join(', ');
  const cursor = `copy_${spec.table}`;
  await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${columnsOf(spec).join(', ')} FROM ${spec.table} ORDER BY ${order}`);
  for (;;) {
    const { rows } = await client.query<Row>(`FETCH FORWARD ${BATCH} FROM ${cursor}`);
    if (rows.length === 0) break;
    yield rows;
  }
  await client.query(`CLOSE ${cursor}`);
}
