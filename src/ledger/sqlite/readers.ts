// What fsck and migrate read from a SQLite ledger, with its own SQL: one read transaction (for
// migrate, under the file's write lock), so a ledger being served is read as of one moment.
// Integers come as bigints (safeIntegers), so none is ever rounded; the callers check them.
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UnreadableLedgerError, type LedgerReader } from '../../fsck/reader.ts';
import { rowProblem, type Row } from '../../fsck/rows.ts';
import {
  CORRECTION_DEFAULTS,
  EVENTS,
  MalformedRowError,
  OPTIONAL_TABLES,
  sqliteColumns,
  TABLES,
  type TableRows,
  type TableSpec,
} from '../copy-tables.ts';
import { DEFAULT_RIGHTS, rightsJson } from '../api-keys.ts';
import { loadMigrations, openDb, type Db } from './db.ts';
import { rollupDifferences } from './rollups.ts';

const EVENT_COLUMNS = 'e.namespace, e.request_id, e.caller, e.action, e.units, e.artifact_digest, e.ts, e.leaf_hash';
/**
 * A correction's columns and the version it replaces (p_*), which fsck checks it against (its leaf v2
 * hashes that version's leaf hash). A ledger from before corrections (schema < 10) has none.
 */
const CORRECTION_JOIN = {
  columns: `e.kind, e.corrects_id, e.chain_id, e.prev_caller, e.prev_action, e.prev_units,
    p.leaf_hash AS p_leaf_hash, p.namespace AS p_namespace, p.ts AS p_ts, p.caller AS p_caller, p.action AS p_action,
    p.units AS p_units, p.artifact_digest AS p_artifact_digest, p.kind AS p_kind, coalesce(p.chain_id, p.seq) AS p_chain`,
  join: 'LEFT JOIN events p ON p.seq = e.corrects_id',
};
const NO_CORRECTIONS = { columns: '0 AS kind', join: '' };
/** Whether the events table has the correction columns (schema 010). */
const hasCorrections = (db: Database.Database) =>
  (db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('events') as string[]).includes('kind');

/** A reader on a connection the caller holds (and its transaction): close() leaves both alone. */
export function sqliteReader(db: Database.Database, location: string = db.name): LedgerReader {
  const q = (sql: string) => db.prepare(sql).safeIntegers(true);
  const count = (v: unknown) => Number(v);
  // seq is the id on SQLite (schema 004 names it so; older files have only seq).
  const epochs = q('SELECT epoch, first_seq, last_seq, size, root, first_ts, last_ts FROM epochs WHERE epoch > ? ORDER BY epoch LIMIT ?');
  const c = hasCorrections(db) ? CORRECTION_JOIN : NO_CORRECTIONS;
  const select = `SELECT e.seq AS id, e.seq, ${EVENT_COLUMNS}, ${c.columns} FROM events e ${c.join}`;
  const sealed = q(`${select} WHERE e.seq BETWEEN ? AND ? ORDER BY e.seq`);
  const nodes = q('SELECT epoch, level, chunk, hashes FROM epoch_nodes WHERE epoch BETWEEN ? AND ? ORDER BY epoch, level, chunk');
  const unsealed = q(`${select} WHERE e.seq > ? ORDER BY e.seq LIMIT ?`);
  const epochCount = q('SELECT count(*) FROM epochs').pluck();
  const unsealedCount = q('SELECT count(*) FROM events WHERE seq > ?').pluck();
  return {
    engine: 'sqlite',
    location,
    epochCount: async () => count(epochCount.get()),
    unsealedCount: async (lastSealed) => count(unsealedCount.get(lastSealed)),
    epochs: async (after, limit) => epochs.all(after, limit) as Row[],
    sealedEvents: async (first, last) => sealed.all(first, last) as Row[],
    nodes: async (first, last) => nodes.all(first, last) as Row[],
    unsealedEvents: async (lastSealed, after, limit) => unsealed.all(Math.max(lastSealed, after), limit) as Row[],
    rollupDifferences: async (limit) => rollupDifferences(db as Db, limit),
    close: async () => {},
  };
}

/**
 * Opens the SQLite ledger `file` read-only (no schema migration is applied, nothing is written)
 * and pins one read snapshot until close().
 */
export function openSqliteReader(file: string): LedgerReader {
  if (!existsSync(file)) throw new UnreadableLedgerError(`no SQLite ledger at ${file} (${resolve(file)}): check --db`);
  if (!statSync(file).isFile())
    throw new UnreadableLedgerError(`${file} (${resolve(file)}) is not a file: --db takes the SQLite ledger file (serve's --db)`);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
    if (!['events', 'epochs', 'epoch_nodes'].every((t) => tables.has(t))) {
      throw new UnreadableLedgerError(`${file} is not a sui-receipts ledger (it has no events, epochs and epoch_nodes tables): check --db`);
    }
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM epochs').get(); // the snapshot starts at the first read
  } catch (err) {
    db?.close();
    if (err instanceof UnreadableLedgerError) throw err;
    throw new UnreadableLedgerError(`cannot read ${file} as a SQLite ledger: ${(err as Error).message}; check --db`);
  }
  const open = db;
  return {
    ...sqliteReader(open, file),
    close: async () => {
      if (open.inTransaction) open.exec('ROLLBACK');
      open.close();
    },
  };
}

// ── The source of a whole-ledger copy (`receipts migrate`) ──────────────────────────────────────

/** Rows per read of a whole table. */
const BATCH = 5000;
/** The schema version from which a SQLite ledger has every table a copy moves (003: anchors). */
const MIN_COPY_VERSION = 3;
/** How long the source waits for a write already in flight on it before giving up. */
const WRITER_WAIT_MS = 5000;

/** Everything a copy reads, from one snapshot of the file (under its write lock when asked). */
export interface SqliteCopySource extends TableRows {
  /** fsck's reader, on the same snapshot. */
  readonly reader: LedgerReader;
  /** The last ledger position an epoch holds (0: none). */
  readonly lastSealedSeq: number;
  /**
   * A table read on demand, in key order, in the form copyRows takes (src/ledger/postgres/copy.ts);
   * onSlice sees each slice read, with how far it got.
   */
  rows(
    spec: TableSpec,
    onSlice?: (rows: Row[], done: number, total: number) => void,
  ): { readonly length: number; slice(start: number, end: number): Row[] };
  /** Ends the snapshot (and the write lock) and closes the file. */
  close(): void;
}

/**
 * Opens the SQLite ledger `file` as the source of a copy, without this build's schema migrations
 * (nothing is written), and pins one snapshot until close(). With `lock`, read-write so that it
 * can hold SQLite's write lock for the whole copy (BEGIN IMMEDIATE on a read-only connection takes
 * no lock at all): any process that writes the file (keys create/revoke, seal, a serve without its
 * lock) then waits and fails instead of changing it under the copy, where its change would be
 * missing from the target: a revoked key valid again, an epoch sealed twice. A file this user
 * cannot write (a read-only backup) is read in a plain snapshot: nothing of ours writes it.
 * Throws an UnreadableLedgerError saying what is wrong and what to do.
 */
export function openSqliteCopySource(file: string, options: { lock: boolean }): SqliteCopySource {
  if (!existsSync(file))
    throw new UnreadableLedgerError(`no SQLite ledger at ${file} (${resolve(file)}): check --from; nothing was copied`);
  if (!statSync(file).isFile())
    throw new UnreadableLedgerError(`${file} (${resolve(file)}) is not a file: --from takes the SQLite ledger file (serve's --db)`);
  let db: Db | undefined;
  try {
    // Not openDb read-write: that would apply this build's schema migrations to the source.
    db =
      options.lock && writable(file)
        ? new Database(file, { fileMustExist: true, timeout: WRITER_WAIT_MS })
        : openDb(file, { readonly: true });
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    const version = hasTable ? Number(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get() ?? 0) : 0;
    const known = loadMigrations().at(-1)?.version ?? 0;
    if (version > known) {
      throw new UnreadableLedgerError(
        `${file} has schema version ${version}, newer than this build of sui-receipts knows (${known}): migrate with the version that wrote it`,
      );
    }
    if (version < MIN_COPY_VERSION) {
      throw new UnreadableLedgerError(
        version === 0
          ? `${file} is not a sui-receipts ledger (it has no schema_migrations table): check --from`
          : `${file} has the old schema version ${version}: open it once with this build to upgrade it (\`receipts keys list --db ${file}\`), then migrate`,
      );
    }
  } catch (err) {
    db?.close();
    if (err instanceof UnreadableLedgerError) throw err;
    throw new UnreadableLedgerError(`cannot read ${file} as a SQLite ledger: ${(err as Error).message}; check --from`);
  }
  try {
    // One snapshot for everything read from here on; under the write lock until close().
    if (db.readonly) db.exec('BEGIN');
    else lockForCopy(db, file);
    return copySource(db, file);
  } catch (err) {
    db.close();
    throw err;
  }
}

function writable(file: string): boolean {
  try {
    accessSync(file, constants.W_OK);
    accessSync(dirname(resolve(file)), constants.W_OK); // the -wal and -shm files beside it
    return true;
  } catch {
    return false;
  }
}

/** Takes the write lock, waiting a little for a writer already in flight. */
function lockForCopy(db: Db, file: string): void {
  try {
    db.exec('BEGIN IMMEDIATE');
  } catch (err) {
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    throw new UnreadableLedgerError(
      `another process kept writing to ${file} for ${WRITER_WAIT_MS / 1000} s (a receipts seal or keys command, or a receipts serve started without its lock), ` +
        'so nothing was copied: a change made during the copy would be missing from PostgreSQL. Let it finish (or stop it) and run receipts migrate again',
    );
  }
}

function copySource(db: Db, file: string): SqliteCopySource {
  const integer = (v: unknown, what: string): number => {
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n))
      throw new UnreadableLedgerError(`${what}: ${String(v)} is not an integer in 0 … 2^53−1; nothing was copied`);
    return n;
  };
  const count = (spec: TableSpec) =>
    integer(db.prepare(`SELECT count(*) FROM ${spec.table}`).safeIntegers(true).pluck().get(), `${spec.table} count`);
  const lastSealedSeq = integer(
    db.prepare('SELECT coalesce(max(last_seq), 0) FROM epochs').safeIntegers(true).pluck().get(),
    'epochs.last_seq',
  );
  // A ledger from before a table existed (classifications: 005, meters: 008, limits: 011, webhooks: 012) has none of its rows.
  const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  const tables = TABLES.filter((t) => !OPTIONAL_TABLES.includes(t) || hasTable.get(t.table) !== undefined);
  // A source from before key rights (schema < 7) has no rights column: its keys have exactly
  // record and read (what migration 007 gives them), and the copy carries that.
  const hasRights = (db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('api_keys') as string[]).includes('rights');
  // A source from before corrections (schema < 10): every event an ordinary one.
  const corrections = hasCorrections(db);
  const columnSql = (c: string) =>
    c === 'rights' && !hasRights
      ? `'${rightsJson(DEFAULT_RIGHTS)}' AS rights`
      : !corrections && Object.hasOwn(CORRECTION_DEFAULTS, c)
        ? `${CORRECTION_DEFAULTS[c]} AS ${c}`
        : c;
  // A correction's leaf v2 hashes the replaced version's leaf hash: read with it, so that an
  // unsealed correction's leaf is recomputed on the way like any other (not copied: not a column).
  const extraSql = (spec: TableSpec) =>
    spec === EVENTS && corrections ? ', (SELECT p.leaf_hash FROM events p WHERE p.seq = events.corrects_id) AS p_leaf_hash' : '';

  /** A table read on demand, in key order (keyset pages, so each slice costs the same). */
  const rows = (spec: TableSpec, onSlice?: (rows: Row[], done: number, total: number) => void) => {
    const order = spec.key.join(', ');
    const select = `SELECT ${sqliteColumns(spec).map(columnSql).join(', ')}${extraSql(spec)} FROM ${spec.table}`;
    const length = count(spec);
    // safeIntegers: an integer beyond 2^53 is refused (rowProblem), never rounded.
    const first = db.prepare(`${select} ORDER BY ${order} LIMIT ?`).safeIntegers(true);
    const after = db
      .prepare(`${select} WHERE (${order}) > (${spec.key.map(() => '?').join(', ')}) ORDER BY ${order} LIMIT ?`)
      .safeIntegers(true);
    const offset = db.prepare(`${select} ORDER BY ${order} LIMIT ? OFFSET ?`).safeIntegers(true);
    let nextStart = 0;
    let lastKey: unknown[] | undefined;
    return {
      length,
      slice(start = 0, end = length): Row[] {
        const limit = Math.min(end, length) - start;
        if (limit <= 0) return [];
        const read = (
          start === 0 ? first.all(limit) : start === nextStart && lastKey ? after.all(...lastKey, limit) : offset.all(limit, start)
        ) as Row[];
        const last = read.at(-1);
        if (last) lastKey = spec.key.map((k) => last[k]);
        for (const r of read) {
          const problem = rowProblem(spec, r);
          if (problem) throw new MalformedRowError(problem);
          // seq is the id on SQLite; an event after the last epoch has no ledger position elsewhere.
          if (spec === EVENTS) Object.assign(r, { id: r.seq, seq: (r.seq as number) <= lastSealedSeq ? r.seq : null });
        }
        nextStart = start + read.length;
        onSlice?.(read, nextStart, length);
        return read;
      },
    };
  };

  return {
    reader: sqliteReader(db, file),
    lastSealedSeq,
    tables,
    count: async (spec) => count(spec),
    rows,
    async *batches(spec) {
      const table = rows(spec);
      for (let start = 0; start < table.length; start += BATCH) yield table.slice(start, start + BATCH);
    },
    close: () => {
      if (db.inTransaction) db.exec('ROLLBACK'); // nothing was written: this only lets go of the lock
      db.close();
    },
  };
}
