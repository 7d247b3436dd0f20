// `receipts migrate`: a SQLite ledger copied into an empty PostgreSQL database, then checked.
// Three steps, so that a damaged source never reaches the target and a bad copy never passes:
//  1. the source checks out (src/fsck, through the SQLite reader): every epoch's root and stored
//     tree rebuilt from its leaf hashes, each sealed leaf hash from its event, the boundaries;
//  2. the copy (copyInto: one transaction, all or nothing), streamed a slice at a time from one
//     read snapshot of the file, each event's leaf hash recomputed from its fields on the way;
//  3. the copy matches: every table (billable classification periods too) compared row by row with
//     the source, and the copy checked by fsck through the PostgreSQL reader.
// Memory stays bounded by a batch (and by the largest epoch's tree), whatever the ledger's size.
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type pg from 'pg';
import { bytesToHex } from '../encoding/hex.ts';
import { leafHash } from '../event/leaf.ts';
import { fsck, type FsckProblem } from '../fsck/check.ts';
import { describeValue, kindProblem, type Kind } from '../fsck/rows.ts';
import { describeLocation, isPostgresUrl } from './index.ts';
import type { CopyCounts, PostgresLedger, RowSource } from './postgres/index.ts';
import { loadMigrations, openDb, type Db } from './sqlite/db.ts';
import { postgresReader } from './postgres/readers.ts';
import { sqliteReader } from './sqlite/readers.ts';

export type MigrateStep = 'check-source' | 'copy' | 'check-copy';

export interface MigrateProgress {
  step: MigrateStep;
  /** What is being counted: a table, or 'epochs'. */
  what: string;
  done: number;
  total: number;
}

export interface MigrateOptions {
  /** The SQLite ledger file (opened read-only). */
  from: string;
  /** postgres:// URL of an empty database (its schema is created if missing). */
  to: string;
  progress?: (p: MigrateProgress) => void;
}

export interface MigrateSummary {
  from: string;
  /** The target, password hidden. */
  to: string;
  copied: CopyCounts;
  /** Events after the last epoch: copied unsealed, sealed on PostgreSQL later in the same order. */
  unsealed: number;
  /** Epochs whose root and tree were rebuilt from their leaves, in the source and in the copy. */
  epochs_checked: number;
  /** Rows compared one by one between the source and the copy, all tables. */
  rows_compared: number;
  ms: number;
}

/** The migration cannot go on, or its check failed: the message says what and what to do. */
export class MigrateError extends Error {
  /** The epoch a check failed on, when there is one. */
  readonly epoch: number | undefined;
  constructor(message: string, epoch?: number) {
    super(message);
    this.name = 'MigrateError';
    this.epoch = epoch;
  }
}

/** Rows per read from either database, and per insert. */
const BATCH = 5000;
/** The schema version from which the SQLite ledger has every table copied here (003: anchors). */
const MIN_SOURCE_VERSION = 3;
/** How long migrate waits for a write already in flight on the source before it gives up. */
const WRITER_WAIT_MS = 5000;

type Cell = string | number | boolean | null | Buffer;
type Raw = Record<string, unknown>;

function num(v: unknown, what: string): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new MigrateError(`${what}: ${String(v)} is not an integer in 0 … 2^53−1; nothing was copied`);
  return n;
}
const numOrNull = (v: unknown, what: string): number | null => (v === null ? null : num(v, what));
const buf = (v: unknown): Buffer | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

// ── The tables: columns, keyset order, and one comparable form for both engines ─────────────────

interface TableSpec {
  table: string;
  /** In messages and progress. */
  label: string;
  /** The primary key: order and keyset of every read. */
  key: string[];
  /** Columns of the SQLite table, as copyInto takes them. */
  columns: string[];
  /** What each column must hold in the source (checkRow), in the order of columns. */
  kinds: Kind[];
  /** Names the row in a message. */
  name: (row: Cell[]) => string;
}

const KEYS: TableSpec = {
  table: 'api_keys', label: 'keys', key: ['id'],
  columns: ['id', 'owner', 'namespaces', 'key_hash', 'created_at', 'revoked_at'],
  kinds: ['text', 'text', 'text', 'hash', 'int', 'int?'],
  name: (r) => `key ${String(r[0])}`,
};
const EVENTS: TableSpec = {
  table: 'events', label: 'events', key: ['seq'],
  columns: ['seq', 'namespace', 'request_id', 'owner', 'key_id', 'caller', 'action', 'units', 'artifact_digest', 'ts', 'ts_explicit', 'received_at', 'source', 'metadata', 'leaf_hash'],
  kinds: ['int', 'text', 'text', 'text', 'text', 'text', 'text', 'int', 'hash?', 'int', 'int', 'int', 'text?', 'text?', 'hash'],
  name: (r) => `event ${String(r[0])}`,
};
const EPOCHS: TableSpec = {
  table: 'epochs', label: 'epochs', key: ['epoch'],
  columns: ['epoch', 'first_seq', 'last_seq', 'size', 'root', 'first_ts', 'last_ts', 'sealed_at'],
  kinds: ['int', 'int', 'int', 'int', 'hash', 'int', 'int', 'int'],
  name: (r) => `epoch ${String(r[0])}`,
};
const NODES: TableSpec = {
  table: 'epoch_nodes', label: 'tree nodes', key: ['epoch', 'level', 'chunk'],
  columns: ['epoch', 'level', 'chunk', 'hashes'],
  kinds: ['int', 'int', 'int', 'nodes'],
  name: (r) => `epoch ${String(r[0])} (tree level ${String(r[1])}, chunk ${String(r[2])})`,
};
const ATTEMPTS: TableSpec = {
  table: 'anchor_attempts', label: 'anchor attempts', key: ['tx_digest'],
  columns: ['tx_digest', 'first_epoch', 'last_epoch', 'created_at'],
  kinds: ['text', 'int', 'int', 'int'],
  name: (r) => `anchor attempt ${String(r[0])}`,
};
const ANCHORS: TableSpec = {
  table: 'anchors', label: 'anchors', key: ['epoch'],
  columns: ['epoch', 'network', 'package_id', 'registry_id', 'tx_digest', 'checkpoint', 'anchored_at'],
  kinds: ['int', 'text', 'text', 'text', 'text?', 'text?', 'int'],
  name: (r) => `anchor of epoch ${String(r[0])}`,
};
const CLASSIFICATIONS: TableSpec = {
  table: 'classifications', label: 'classification periods', key: ['from_ms'],
  columns: ['from_ms', 'billable', 'non_billable', 'other', 'created_at'],
  kinds: ['int', 'text', 'text', 'text', 'int'],
  name: (r) => `classification period from ${String(r[0])}`,
};
const TABLES = [KEYS, EVENTS, EPOCHS, NODES, ATTEMPTS, ANCHORS, CLASSIFICATIONS];

/** The tables the source has (a ledger from before billable classification has no classifications). */
function tablesOf(db: Db): TableSpec[] {
  const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'classifications'").get() !== undefined;
  return has ? TABLES : TABLES.filter((t) => t !== CLASSIFICATIONS);
}

/**
 * A row of either engine in one comparable form: integers as numbers, blobs as Buffers,
 * ts_explicit as a boolean; events as SQLite has them (seq is the id) plus the seq PostgreSQL
 * must hold (the same for a sealed event, null for one after the last epoch).
 */
function cells(spec: TableSpec, r: Raw, lastSealed: number, engine: 'sqlite' | 'postgres'): Cell[] {
  const what = (c: string) => `${spec.table}.${c}`;
  switch (spec) {
    case EVENTS: {
      const id = num(engine === 'sqlite' ? r.seq : r.id, what('id'));
      const seq = engine === 'sqlite' ? (id <= lastSealed ? id : null) : numOrNull(r.seq, what('seq'));
      return [
        id, seq, str(r.namespace), str(r.request_id), str(r.owner), str(r.key_id), str(r.caller), str(r.action), num(r.units, what('units')),
        buf(r.artifact_digest), num(r.ts, what('ts')), r.ts_explicit === true || r.ts_explicit === 1 || r.ts_explicit === 1n,
        num(r.received_at, what('received_at')), str(r.source), str(r.metadata), buf(r.leaf_hash),
      ];
    }
    case KEYS:
      return [str(r.id), str(r.owner), str(r.namespaces), buf(r.key_hash), num(r.created_at, what('created_at')), numOrNull(r.revoked_at, what('revoked_at'))];
    case EPOCHS:
      return [num(r.epoch, what('epoch')), num(r.first_seq, what('first_seq')), num(r.last_seq, what('last_seq')), num(r.size, what('size')),
        buf(r.root), num(r.first_ts, what('first_ts')), num(r.last_ts, what('last_ts')), num(r.sealed_at, what('sealed_at'))];
    case NODES:
      return [num(r.epoch, what('epoch')), num(r.level, what('level')), num(r.chunk, what('chunk')), buf(r.hashes)];
    case ATTEMPTS:
      return [str(r.tx_digest), num(r.first_epoch, what('first_epoch')), num(r.last_epoch, what('last_epoch')), num(r.created_at, what('created_at'))];
    case CLASSIFICATIONS:
      return [num(r.from_ms, what('from_ms')), str(r.billable), str(r.non_billable), str(r.other), num(r.created_at, what('created_at'))];
    default:
      return [num(r.epoch, what('epoch')), str(r.network), str(r.package_id), str(r.registry_id), str(r.tx_digest), str(r.checkpoint), num(r.anchored_at, what('anchored_at'))];
  }
}
/**
 * Checks a row read from the SQLite source against what its table must hold, before anything
 * uses it (a wrong-length blob would otherwise surface as a TypeError, or a RangeError deep in
 * the tree code), and turns its integers into numbers. Checks only the columns the row has.
 */
function checkRow(source: string, spec: TableSpec, r: Raw): void {
  for (const c in r) {
    const i = spec.columns.indexOf(c);
    if (i < 0) continue;
    const problem = kindProblem(spec.kinds[i]!, r[c]);
    if (problem) {
      const row = spec.key.map((k) => `${k} ${describeValue(r[k]).replace(/^the text /, '')}`).join(', ');
      throw malformed(source, `${spec.table} row (${row}): ${c} is ${describeValue(r[c])}, ${problem}`);
    }
    if (typeof r[c] === 'bigint') r[c] = Number(r[c]);
  }
}

function malformed(source: string, what: string): MigrateError {
  return new MigrateError(
    `the source ledger ${source} has a malformed row, so nothing was copied: ${what}. ` +
      `The file is damaged or was changed outside sui-receipts: restore it from a backup and migrate that (\`sqlite3 ${source} 'PRAGMA integrity_check'\` shows whether SQLite finds damage too)`,
  );
}

const CELL_NAMES = new Map<TableSpec, string[]>(TABLES.map((t) => [t, t === EVENTS ? ['id', ...t.columns] : t.columns]));

// ── The source: one read snapshot of the file, read a slice at a time in key order ──────────────

/** A SQLite table read on demand, in key order (keyset pages, so each slice costs the same). */
class SqliteRows implements RowSource<Raw> {
  readonly length: number;
  readonly spec: TableSpec;
  private readonly first;
  private readonly after;
  private readonly offset;
  private readonly onSlice: ((rows: Raw[], done: number, total: number) => void) | undefined;
  private nextStart = 0;
  private lastKey: unknown[] | undefined;

  private readonly source: string;

  constructor(db: Db, spec: TableSpec, onSlice?: (rows: Raw[], done: number, total: number) => void) {
    this.spec = spec;
    this.source = db.name;
    this.onSlice = onSlice;
    const order = spec.key.join(', ');
    const select = `SELECT ${spec.columns.join(', ')} FROM ${spec.table}`;
    this.length = num(db.prepare(`SELECT count(*) FROM ${spec.table}`).pluck().get(), `${spec.table} count`);
    // safeIntegers: an integer beyond 2^53 is refused (num), never rounded.
    this.first = db.prepare(`${select} ORDER BY ${order} LIMIT ?`).safeIntegers(true);
    this.after = db.prepare(`${select} WHERE (${order}) > (${spec.key.map(() => '?').join(', ')}) ORDER BY ${order} LIMIT ?`).safeIntegers(true);
    this.offset = db.prepare(`${select} ORDER BY ${order} LIMIT ? OFFSET ?`).safeIntegers(true);
  }

  slice(start = 0, end = this.length): Raw[] {
    const limit = Math.min(end, this.length) - start;
    if (limit <= 0) return [];
    const rows = (start === 0 ? this.first.all(limit)
      : start === this.nextStart && this.lastKey ? this.after.all(...this.lastKey, limit)
      : this.offset.all(limit, start)) as Raw[];
    for (const r of rows) checkRow(this.source, this.spec, r);
    const last = rows.at(-1);
    if (last) this.lastKey = this.spec.key.map((k) => last[k]);
    this.nextStart = start + rows.length;
    this.onSlice?.(rows, this.nextStart, this.length);
    return rows;
  }

  *batches(): Generator<Raw[]> {
    for (let start = 0; start < this.length; start += BATCH) yield this.slice(start, start + BATCH);
  }
}

/**
 * Opens the source. With `lock`, read-write (it writes nothing) so that it can hold SQLite's
 * write lock: BEGIN IMMEDIATE on a read-only connection takes no lock at all. A file this user
 * cannot write (a read-only backup) is read in a plain snapshot: nothing of ours writes it.
 */
function openSource(file: string, lock = false): Db {
  if (isPostgresUrl(file)) {
    throw new MigrateError(`--from takes a SQLite ledger file, not a database URL (${describeLocation(file)}); to copy one PostgreSQL database to another, use pg_dump`);
  }
  if (!existsSync(file)) throw new MigrateError(`no SQLite ledger at ${file} (${resolve(file)}): check --from; nothing was copied`);
  if (!statSync(file).isFile()) throw new MigrateError(`${file} (${resolve(file)}) is not a file: --from takes the SQLite ledger file (serve's --db)`);
  let db: Db | undefined;
  try {
    // Not openDb: that would apply this build's schema migrations to the source.
    db = lock && writable(file) ? new Database(file, { fileMustExist: true, timeout: WRITER_WAIT_MS }) : openDb(file, { readonly: true });
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    const version = hasTable ? Number(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get() ?? 0) : 0;
    const known = loadMigrations().at(-1)?.version ?? 0;
    if (version > known) {
      throw new MigrateError(`${file} has schema version ${version}, newer than this build of sui-receipts knows (${known}): migrate with the version that wrote it`);
    }
    if (version < MIN_SOURCE_VERSION) {
      throw new MigrateError(
        version === 0 ? `${file} is not a sui-receipts ledger (it has no schema_migrations table): check --from`
          : `${file} has the old schema version ${version}: open it once with this build to upgrade it (\`receipts keys list --db ${file}\`), then migrate`,
      );
    }
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof MigrateError) throw err;
    throw new MigrateError(`cannot read ${file} as a SQLite ledger: ${(err as Error).message}; check --from`);
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

/**
 * Takes the source's write lock for the whole migration, and with it the snapshot everything is
 * read from: any process that writes the file (keys create/revoke, seal, a serve without its
 * lock) then waits and fails instead of changing it under the copy, where its change would be
 * missing from PostgreSQL: a revoked key valid again, an epoch sealed twice. Waits a little for
 * a writer already in flight.
 */
function lockSource(db: Db, file: string): void {
  try {
    db.exec('BEGIN IMMEDIATE');
  } catch (err) {
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    throw new MigrateError(
      `another process kept writing to ${file} for ${WRITER_WAIT_MS / 1000} s (a receipts seal or keys command, or a receipts serve started without its lock), ` +
        'so nothing was copied: a change made during the copy would be missing from PostgreSQL. Let it finish (or stop it) and run receipts migrate again',
    );
  }
}

// ── The target: a read-only snapshot, read through server-side cursors ──────────────────────────

async function* pgBatches(client: pg.PoolClient, spec: TableSpec): AsyncGenerator<Raw[]> {
  const columns = spec === EVENTS ? ['id', ...spec.columns] : spec.columns;
  // COLLATE "C": text keys in byte order, as SQLite orders them, whatever the database's collation.
  const order = spec.key.map((k) => (k === 'id' || k === 'tx_digest' ? `${k} COLLATE "C"` : k)).join(', ');
  const cursor = `migrate_${spec.table}`;
  await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${columns.join(', ')} FROM ${spec.table} ORDER BY ${spec === EVENTS ? 'id' : order}`);
  for (;;) {
    const { rows } = await client.query<Raw>(`FETCH FORWARD ${BATCH} FROM ${cursor}`);
    if (rows.length === 0) break;
    yield rows;
  }
  await client.query(`CLOSE ${cursor}`);
}

// ── Checks ────────────────────────────────────────────────────────────────────────────────────────

function same(a: Cell, b: Cell): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  return a === b;
}
const show = (v: Cell): string => (Buffer.isBuffer(v) ? (v.length <= 32 ? v.toString('hex') : `${v.length} bytes ${v.subarray(0, 8).toString('hex')}…`) : JSON.stringify(v));

/** Compares a table row by row, in key order; returns how many rows matched. */
async function compareTable(
  spec: TableSpec, source: Iterable<Raw[]>, target: AsyncIterable<Raw[]>, lastSealed: number, fail: (message: string, epoch?: number) => never,
  tick: (done: number) => void,
): Promise<number> {
  const names = CELL_NAMES.get(spec)!;
  const epochOf = (row: Cell[]) => (spec === NODES || spec === EPOCHS || spec === ANCHORS ? (row[0] as number) : undefined);
  const src = (function* () {
    for (const batch of source) for (const r of batch) yield cells(spec, r, lastSealed, 'sqlite');
  })();
  let n = 0;
  for await (const batch of target) {
    for (const r of batch) {
      const t = cells(spec, r, lastSealed, 'postgres');
      const s = src.next();
      if (s.done) fail(`${spec.label}: the copy holds ${spec.name(t)}, which the source does not have`, epochOf(t));
      const i = s.value.findIndex((v, k) => !same(v, t[k]!));
      if (i >= 0) fail(`${spec.name(s.value)}: ${names[i]} is ${show(t[i]!)} in the copy but ${show(s.value[i]!)} in the source`, epochOf(s.value));
      n++;
    }
    tick(n);
  }
  const rest = src.next();
  if (!rest.done) fail(`${spec.name(rest.value)} of the source is missing from the copy`, epochOf(rest.value));
  return n;
}

/** Turns an fsck disagreement into the failure of the step that found it. */
function failOn(problem: FsckProblem | undefined, fail: (message: string, epoch?: number) => never): void {
  if (problem) fail(problem.message, problem.epoch);
}

/**
 * Checks the PostgreSQL ledger against the SQLite one (both read in one snapshot each): every
 * table row by row, then every epoch's tree and root rebuilt from the leaf hashes in PostgreSQL.
 */
async function verifyCopy(db: Db, ledger: PostgresLedger, target: string, progress: (p: MigrateProgress) => void): Promise<{ epochs_checked: number; rows_compared: number }> {
  const fail = (message: string, epoch?: number): never => {
    throw new MigrateError(
      `the copy in ${target} does not match the source: ${message}. Do not serve from it: drop that database, create it again and rerun receipts migrate (the source was not changed); if it happens again, report it`,
      epoch,
    );
  };
  const lastSealed = num(db.prepare('SELECT coalesce(max(last_seq), 0) FROM epochs').pluck().get(), 'epochs.last_seq');
  const client = await ledger.pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const sources = tablesOf(db).map((spec) => new SqliteRows(db, spec));
    for (const spec of TABLES) {
      const want = sources.find((s) => s.spec === spec)?.length ?? 0;
      const { rows } = await client.query<{ n: number }>(`SELECT count(*) AS n FROM ${spec.table}`);
      if (rows[0]!.n !== want) fail(`it holds ${plural(rows[0]!.n, spec.label)}, the source ${want}`);
    }
    const epochCount = sources[TABLES.indexOf(EPOCHS)]!.length;
    const report = await fsck(postgresReader(client, target), {
      progress: (p) => p.what === 'epochs' && progress({ step: 'check-copy', what: 'epochs', done: p.done, total: p.total }),
    });
    failOn(report.problem, fail);
    const epochs = report.epochs_checked;
    if (epochs !== epochCount) fail(`${epochs} epochs were rebuilt, the source has ${epochCount}`);
    let rows = 0;
    for (const source of sources) {
      rows += await compareTable(source.spec, source.batches(), pgBatches(client, source.spec), lastSealed, fail,
        (done) => progress({ step: 'check-copy', what: source.spec.label, done, total: source.length }));
    }
    return { epochs_checked: epochs, rows_compared: rows };
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}

const plural = (n: number, label: string) => `${n} ${label}`;

/**
 * Checks an earlier copy again (what `migrate` does after copying), as long as neither side has
 * changed since: no receipts serve on the copy yet. Throws a MigrateError on the first difference.
 */
export async function checkCopy(options: MigrateOptions): Promise<{ epochs_checked: number; rows_compared: number }> {
  const db = openSource(options.from);
  let ledger: PostgresLedger | undefined;
  try {
    db.exec('BEGIN');
    const { openPostgresLedger } = await import('./postgres/index.ts');
    ledger = await openPostgresLedger(options.to, { poolSize: 2 });
    return await verifyCopy(db, ledger, describeLocation(options.to), options.progress ?? (() => {}));
  } finally {
    await ledger?.close().catch(() => {});
    db.close();
  }
}

// ── The migration ─────────────────────────────────────────────────────────────────────────────────

/**
 * Copies the SQLite ledger `from` into the empty PostgreSQL database `to`, then checks the copy.
 * Throws a MigrateError naming what failed (and the epoch, for a tree or root) and what to do.
 */
export async function migrateToPostgres(options: MigrateOptions): Promise<MigrateSummary> {
  const started = performance.now();
  const { from, to } = options;
  const target = describeLocation(to);
  const progress = options.progress ?? (() => {});
  if (!isPostgresUrl(to)) {
    // Not echoed: a mistyped URL may still hold a password.
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(to)?.[1];
    throw new MigrateError(`--to takes a postgres:// (or postgresql://) URL of the target database; this one ${scheme ? `is a ${scheme}: URL` : 'is not a URL'}`);
  }

  const db = openSource(from, true);
  let ledger: PostgresLedger | undefined;
  try {
    // One snapshot for everything below, under the write lock until the end: what is checked is
    // what is copied and compared, and what is copied is the whole ledger at the cutover.
    if (db.readonly) db.exec('BEGIN');
    else lockSource(db, from);
    const count = (table: string) => num(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get(), `${table} count`);
    const lastSealed = num(db.prepare('SELECT coalesce(max(last_seq), 0) FROM epochs').pluck().get(), 'epochs.last_seq');
    const epochCount = count('epochs');

    const { openPostgresLedger, copyInto } = await import('./postgres/index.ts');
    try {
      ledger = await openPostgresLedger(to, { poolSize: 2 });
    } catch (err) {
      throw new MigrateError(`cannot open the target ${target}: ${(err as Error).message}; check --to (the database must exist: createdb NAME)`);
    }
    const holds = await ledger.pool.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM events)
      OR EXISTS (SELECT 1 FROM epochs) OR EXISTS (SELECT 1 FROM anchor_attempts) OR EXISTS (SELECT 1 FROM classifications) AS any`);
    if (holds.rows[0]!.any) {
      throw new MigrateError(`the target ${target} already holds a ledger (keys, events, epochs, anchor attempts or classification periods): receipts migrate copies into an empty database only; create a new one (createdb NAME) and pass its URL; nothing was copied`);
    }

    // 1. The source checks out, or nothing is written.
    const sourceFail = (message: string, epoch?: number): never => {
      throw new MigrateError(`the source ledger ${from} does not check out: ${message}. Nothing was copied: the file is damaged or was altered; restore it from a backup`, epoch);
    };
    // Sealed events here; the events after the last epoch are checked as they are copied.
    const source = await fsck(sqliteReader(db, from), {
      sealedOnly: true,
      progress: (p) => progress({ step: 'check-source', what: 'epochs', done: p.done, total: p.total }),
    });
    if (source.problem?.code === 'malformed_row') throw malformed(from, source.problem.message);
    failOn(source.problem, sourceFail);

    // 2. The copy, a slice at a time; an event whose fields do not hash to its leaf stops it.
    const epochOfSeq = db.prepare('SELECT epoch FROM epochs WHERE last_seq >= ? ORDER BY last_seq LIMIT 1').pluck();
    const sources = new Map(tablesOf(db).map((spec) => [spec, new SqliteRows(db, spec, (rows, done, total) => {
      if (spec === EVENTS) for (const r of rows) if (num(r.seq, 'events.seq') > lastSealed) checkLeaf(r);
      progress({ step: 'copy', what: spec.label, done, total });
    })]));
    function checkLeaf(r: Raw): void {
      const seq = num(r.seq, 'events.seq');
      const digest = buf(r.artifact_digest);
      const fields = {
        namespace: String(r.namespace), request_id: String(r.request_id), caller: String(r.caller), action: String(r.action),
        units: num(r.units, `event ${seq}: units`), artifact_digest: digest ? digest.toString('hex') : '', ts_ms: num(r.ts, `event ${seq}: ts`),
      };
      const stored = buf(r.leaf_hash)!;
      const computed = leafHash(fields);
      if (!stored.equals(computed)) {
        const epoch = seq <= lastSealed ? num(epochOfSeq.get(seq), 'epoch') : undefined;
        sourceFail(`event ${seq}${epoch === undefined ? '' : ` (epoch ${epoch})`}: its stored leaf hash ${stored.toString('hex')} is not the hash of its fields (${bytesToHex(computed)})`, epoch);
      }
    }
    // The rows are the SQLite tables' own columns, which is what copyInto takes.
    const s = (spec: TableSpec) => sources.get(spec)! as unknown as RowSource<never>;
    let copied: CopyCounts;
    try {
      copied = await copyInto(ledger, {
        keys: s(KEYS), events: s(EVENTS), epochs: s(EPOCHS), nodes: s(NODES), attempts: s(ATTEMPTS), anchors: s(ANCHORS),
        classifications: sources.has(CLASSIFICATIONS) ? s(CLASSIFICATIONS) : [],
      });
    } catch (err) {
      if (err instanceof MigrateError) throw err;
      throw new MigrateError(`copying into ${target} failed, nothing was written there: ${(err as Error).message}`);
    }

    // 3. The copy matches the source, and every epoch's root is the root of its copied leaves.
    const checked = await verifyCopy(db, ledger, target, progress);
    const unsealed = num(db.prepare('SELECT count(*) FROM events WHERE seq > ?').pluck().get(lastSealed), 'unsealed count');
    db.exec('COMMIT');
    return {
      from, to: target, copied, unsealed,
      ...checked, ms: Math.round(performance.now() - started),
    };
  } finally {
    await ledger?.close().catch(() => {});
    db.close();
  }
}
