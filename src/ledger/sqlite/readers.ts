// What fsck (and migrate's source check) reads from a SQLite ledger, with its own SQL: a
// read-only connection in one read transaction, so a ledger being served is checked as of one
// moment. Integers come as bigints (safeIntegers), so none is ever rounded; fsck checks them.
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UnreadableLedgerError, type LedgerReader } from '../../fsck/reader.ts';
import type { Row } from '../../fsck/rows.ts';

const EVENT_COLUMNS = 'namespace, request_id, caller, action, units, artifact_digest, ts, leaf_hash';

/** A reader on a connection the caller holds (and its transaction): close() leaves both alone. */
export function sqliteReader(db: Database.Database, location: string = db.name): LedgerReader {
  const q = (sql: string) => db.prepare(sql).safeIntegers(true);
  const count = (v: unknown) => Number(v);
  // seq is the id on SQLite (schema 004 names it so; older files have only seq).
  const epochs = q('SELECT epoch, first_seq, last_seq, size, root, first_ts, last_ts FROM epochs WHERE epoch > ? ORDER BY epoch LIMIT ?');
  const sealed = q(`SELECT seq AS id, seq, ${EVENT_COLUMNS} FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq`);
  const nodes = q('SELECT epoch, level, chunk, hashes FROM epoch_nodes WHERE epoch BETWEEN ? AND ? ORDER BY epoch, level, chunk');
  const unsealed = q(`SELECT seq AS id, seq, ${EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`);
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
    close: async () => {},
  };
}

/**
 * Opens the SQLite ledger `file` read-only (no schema migration is applied, nothing is written)
 * and pins one read snapshot until close().
 */
export function openSqliteReader(file: string): LedgerReader {
  if (!existsSync(file)) throw new UnreadableLedgerError(`no SQLite ledger at ${file} (${resolve(file)}): check --db`);
  if (!statSync(file).isFile()) throw new UnreadableLedgerError(`${file} (${resolve(file)}) is not a file: --db takes the SQLite ledger file (serve's --db)`);
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
