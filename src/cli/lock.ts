// One `receipts serve` per ledger: two would both seal and both anchor. The lock is an OS-level
// file lock (fcntl on POSIX, LockFileEx on Windows) taken through SQLite's EXCLUSIVE locking
// mode on a small file beside the ledger: the kernel drops it when the holder dies, even on
// kill -9, so a stale lock is simply taken over. A JSON file beside it says who holds it,
// for the message the next one prints.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CliError } from './errors.ts';

export interface Holder {
  pid: number;
  host: string;
  port: number | null;
  started_at: string;
  /** Set while `receipts migrate` holds the lock to copy the ledger (serve otherwise). */
  command?: 'migrate';
}

export interface ServeLock {
  /** Records where the holder listens (once it does), for the message of the next one. */
  listening(host: string, port: number): void;
  release(): void;
}

/** The ledger's real path (symlinks and relative spellings resolved), also before the file exists. */
function canonical(file: string): string {
  if (existsSync(file)) return realpathSync(file);
  const dir = resolve(dirname(file));
  mkdirSync(dir, { recursive: true });
  return join(realpathSync(dir), basename(file));
}

export function acquireServeLock(ledgerFile: string, host: string, command: 'serve' | 'migrate' = 'serve'): ServeLock {
  if (ledgerFile === ':memory:') return { listening() {}, release() {} };
  const ledger = canonical(ledgerFile);
  const lockFile = `${ledger}.serve-lock`;
  const infoFile = `${ledger}.serve.json`;
  const db = new Database(lockFile, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE'); // never release a lock once taken, until close
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since INTEGER NOT NULL)');
    db.prepare('DELETE FROM holder').run();
    db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
    db.exec('COMMIT');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    throw new CliError('ledger_busy', busyMessage(ledgerFile, lockFile, infoFile), { holder: readHolder(infoFile), cause: err });
  }
  const write = (holder: Holder) => {
    // Written whole, then renamed: a reader never sees half a file.
    writeFileSync(`${infoFile}.${process.pid}`, `${JSON.stringify(holder)}\n`);
    renameSync(`${infoFile}.${process.pid}`, infoFile);
  };
  const started = new Date().toISOString();
  const by = command === 'migrate' ? { command } : {};
  write({ pid: process.pid, host, port: null, started_at: started, ...by });
  let released = false;
  return {
    listening(h, port) {
      if (!released) write({ pid: process.pid, host: h, port, started_at: started, ...by });
    },
    release() {
      if (released) return;
      released = true;
      if (readHolder(infoFile)?.pid === process.pid) rmSync(infoFile, { force: true });
      db.close(); // the lock file itself stays: deleting it would let a newcomer lock a new file beside an old holder
    },
  };
}

/**
 * For the CLI commands that write to a SQLite ledger (`keys`, `seal`): refuses, naming the
 * migrate, while `receipts migrate` holds the ledger's serve lock to copy it. A change made now
 * would be missing from the PostgreSQL copy (a revoked key valid again after the cutover), and
 * migrate holds the file's write lock for the whole copy anyway, so the command would only wait
 * out the busy timeout and fail with "database is locked". A serve holding the lock is fine:
 * keys and seal are safe beside it. Only looks: the lock is not taken.
 */
export function refuseWhileMigrating(ledgerFile: string, what: string): void {
  if (ledgerFile === ':memory:' || /^postgres(ql)?:/i.test(ledgerFile) || !existsSync(ledgerFile)) return;
  const ledger = canonical(ledgerFile);
  const lockFile = `${ledger}.serve-lock`;
  if (!existsSync(lockFile)) return;
  let held = false;
  try {
    // The holder keeps an exclusive lock on this file (EXCLUSIVE locking mode): even a read is busy.
    const db = new Database(lockFile, { readonly: true, fileMustExist: true, timeout: 0 });
    try {
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } finally {
      db.close();
    }
  } catch (err) {
    held = (err as { code?: string }).code === 'SQLITE_BUSY';
  }
  const h = held ? readHolder(`${ledger}.serve.json`) : undefined;
  if (h?.command !== 'migrate') return;
  throw new CliError(
    'ledger_busy',
    `receipts migrate (pid ${h.pid}, since ${h.started_at}) is copying the ledger ${ledgerFile} to PostgreSQL, so ${what}: ` +
      'a change made to the file now would be missing from the copy. Once the migrate is done, run this again with --db set to the PostgreSQL URL ' +
      '(the file is then only a backup); or stop the migrate (nothing reaches PostgreSQL until it completes) and run this again on the file.',
    { holder: h },
  );
}

function readHolder(infoFile: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(infoFile, 'utf8')) as Holder;
    return Number.isSafeInteger(h.pid) ? h : undefined;
  } catch {
    return undefined;
  }
}

function busyMessage(ledgerFile: string, lockFile: string, infoFile: string): string {
  const h = readHolder(infoFile);
  if (h?.command === 'migrate') {
    return (
      `receipts migrate (pid ${h.pid}, since ${h.started_at}) is copying the ledger ${ledgerFile} to PostgreSQL, so this does not start: ` +
      'once it is done, serve the PostgreSQL database (--db postgres://…) instead.'
    );
  }
  const who = h
    ? `receipts serve pid ${h.pid}${h.port === null ? ` (starting, --host ${h.host})` : ` listening on ${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`} since ${h.started_at}`
    : `another process (see ${lockFile})`;
  return (
    `another receipts serve already runs on the ledger ${ledgerFile}: ${who}. ` +
    'Two servers on one ledger would both seal and anchor, so this one does not start. ' +
    'Use the running one, stop it first, or point --db at another file.'
  );
}
