// A durable spool for the usage client (Node only): events are written before record() returns
// and removed once the server has answered them, so a restart of the calling process resends
// what was left. SQLite in WAL mode survives a kill -9 of the process.
import type BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { QueuedEvent, Spool } from './index.ts';
import { nodeVersionProblem } from './node-version.ts';

export function createSqliteSpool(file: string): Spool {
  // Before the native binding is loaded: on Node < 22 it dies with a bare segmentation fault.
  const problem = nodeVersionProblem('the SQLite spool of sui-receipts');
  if (problem) throw new Error(problem);
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL)');
  const add = db.prepare('INSERT OR IGNORE INTO spool (request_id, event) VALUES (?, ?)');
  const remove = db.prepare('DELETE FROM spool WHERE request_id = ?');
  const removeMany = db.transaction((ids: string[]) => {
    for (const id of ids) remove.run(id);
  });
  return {
    load: () => (db.prepare('SELECT event FROM spool ORDER BY seq').pluck().all() as string[]).map((s) => JSON.parse(s) as QueuedEvent),
    add: (e) => void add.run(e.request_id, JSON.stringify(e)),
    remove: (ids) => removeMany(ids),
    close: () => db.close(),
  };
}
