// A durable spool for the usage client (Node only): events are written before record() returns
// and removed once the server has answered them, so a restart of the calling process resends
// what was left. SQLite in WAL mode survives a kill -9 of the process.
import type BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { UsageClientError } from './errors.ts';
import type { QueuedEvent, Spool, SpoolQuarantine } from './index.ts';
import { nodeVersionProblem } from './node-version.ts';

/** Reasons quoted in the report, at most (the table keeps every row's). */
const REASONS_SHOWN = 3;

export function createSqliteSpool(file: string): Spool {
  // Before the native binding is loaded: on Node < 22 it dies with a bare segmentation fault.
  const problem = nodeVersionProblem('the SQLite spool of sui-receipts');
  if (problem) throw new UsageClientError('unsupported_runtime', problem);
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL)');
  const add = db.prepare('INSERT OR IGNORE INTO spool (request_id, event) VALUES (?, ?)');
  const addMany = db.transaction((events: QueuedEvent[]) => {
    for (const e of events) add.run(e.request_id, JSON.stringify(e));
  });
  const remove = db.prepare('DELETE FROM spool WHERE request_id = ?');
  const removeMany = db.transaction((ids: string[]) => {
    for (const id of ids) remove.run(id);
  });
  return {
    load: (onQuarantined) => load(db, file, onQuarantined),
    add: (e) => void add.run(e.request_id, JSON.stringify(e)),
    addMany: (events) => addMany(events),
    remove: (ids) => removeMany(ids),
    close: () => db.close(),
  };
}

/**
 * The spooled events, oldest first. A row that is not an event this spool wrote (not JSON, not
 * an object, another request id: a disk fault or a hand edit) is moved, as it was, to the table
 * spool_quarantine of the same file, for an operator to look at: left in the spool it stopped
 * every start of the app, and deleting it could delete a billable event.
 */
function load(db: BetterSqlite3.Database, file: string, onQuarantined?: (q: SpoolQuarantine) => void): QueuedEvent[] {
  const rows = db.prepare('SELECT seq, request_id, event FROM spool ORDER BY seq').all() as Array<{
    seq: number;
    request_id: unknown;
    event: unknown;
  }>;
  const events: QueuedEvent[] = [];
  const bad: Array<{ seq: number; request_id: unknown; event: unknown; reason: string }> = [];
  for (const row of rows) {
    const reason = unreadable(row.request_id, row.event);
    if (typeof reason === 'string') bad.push({ ...row, reason });
    else events.push(reason);
  }
  if (bad.length === 0) return events;
  let where = `table spool_quarantine of ${file}`;
  try {
    // No type constraints: a row is kept exactly as it was found, a BLOB included.
    db.exec(
      'CREATE TABLE IF NOT EXISTS spool_quarantine (id INTEGER PRIMARY KEY, spool_seq INTEGER, request_id, event, reason TEXT NOT NULL, quarantined_at TEXT NOT NULL)',
    );
    const keep = db.prepare('INSERT INTO spool_quarantine (spool_seq, request_id, event, reason, quarantined_at) VALUES (?, ?, ?, ?, ?)');
    const drop = db.prepare('DELETE FROM spool WHERE seq = ?');
    const at = new Date().toISOString();
    db.transaction(() => {
      for (const r of bad) {
        keep.run(r.seq, r.request_id as string, r.event as string, r.reason, at);
        drop.run(r.seq);
      }
    })();
  } catch (err) {
    // A full or read-only disk: they stay in the spool, skipped, and are reported again next start.
    where = `the spool ${file} (they could not be moved to spool_quarantine: ${(err as Error)?.message ?? String(err)})`;
  }
  const reasons = bad.slice(0, REASONS_SHOWN).map((r) => `seq ${r.seq}: ${r.reason}`);
  onQuarantined?.({ rows: bad.length, where, reasons });
  return events;
}

/** The row's event, or why it is not one. */
function unreadable(requestId: unknown, event: unknown): QueuedEvent | string {
  if (typeof event !== 'string')
    return `the event is a ${event === null ? 'NULL' : event instanceof Uint8Array ? 'BLOB' : typeof event}, not JSON text`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(event);
  } catch (err) {
    return `the event is not JSON (${(err as Error).message})`;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    return `the event is JSON ${parsed === null ? 'null' : Array.isArray(parsed) ? 'array' : typeof parsed}, not an object`;
  const id = (parsed as { request_id?: unknown }).request_id;
  if (typeof id !== 'string' || id !== requestId)
    return `the event's request_id (${typeof id === 'string' ? JSON.stringify(id.slice(0, 80)) : typeof id}) is not the row's`;
  return parsed as QueuedEvent;
}
