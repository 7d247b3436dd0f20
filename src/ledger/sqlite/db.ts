// Opening the ledger: WAL, a busy timeout so the CLI and the server can share the file,
// and numbered SQL migrations applied once each, recorded in schema_migrations.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMigrations as loadMigrationFiles, SchemaTooNewError, type Migration } from '../schema-migrations.ts';

export type Db = Database.Database;

export type SyncMode = 'full' | 'normal';

export interface OpenOptions {
  /**
   * `full` (default): a commit is on disk before it is acknowledged, even across a power cut.
   * `normal`: survives a crash of the process (kill -9) but not of the machine; faster.
   */
  synchronous?: SyncMode;
  readonly?: boolean;
  /** False: open a file another connection already migrated (the seal worker), taking no write lock. */
  migrate?: boolean;
}

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return loadMigrationFiles(dir);
}

export function openDb(file: string, options: OpenOptions = {}): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { readonly: options.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (!options.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${(options.synchronous ?? 'full').toUpperCase()}`);
    if (options.migrate !== false) migrate(db, file);
  }
  return db;
}

export function migrate(db: Db, file: string, migrations = loadMigrations()): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const known = migrations.at(-1)?.version ?? 0;
  const currentVersion = () => (db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  // One write transaction for the check and all steps: a crash leaves each migration applied
  // or not at all, and two processes starting together (serve and `keys create`) cannot both apply one.
  db.transaction(() => {
    const current = currentVersion();
    if (current > known) throw new SchemaTooNewError(file, current, known);
    for (const m of migrations) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }
  }).immediate();
}

export { SchemaTooNewError } from '../schema-migrations.ts';
