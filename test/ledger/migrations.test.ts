import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadMigrations, openDb, SchemaTooNewError } from '../../src/ledger/sqlite/db.ts';
import { tempDir } from '../helpers.ts';

const t = tempDir();
afterEach(() => t.cleanup());

it('applies every numbered migration once and records it', () => {
  const file = join(t.dir, 'a.db');
  openDb(file).close();
  const db = openDb(file); // second open applies nothing new
  const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
  expect(rows).toEqual(loadMigrations().map((m) => ({ version: m.version, name: m.name })));
  expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  db.close();
});

it('refuses to start on a schema newer than the code knows, with a message saying what to do', () => {
  const file = join(t.dir, 'b.db');
  openDb(file).close();
  const raw = new Database(file);
  raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '999_future.sql', 0)").run();
  raw.close();
  expect(() => openDb(file)).toThrow(SchemaTooNewError);
  expect(() => openDb(file)).toThrow(/schema version 999, newer than this build.*Upgrade sui-receipts/);
});
