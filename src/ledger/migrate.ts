// `receipts migrate`: a SQLite ledger copied into an empty PostgreSQL database, then checked.
// Orchestration only: the engines read and write (src/ledger/sqlite/readers.ts for the source,
// src/ledger/postgres/readers.ts and copy.ts for the target), src/fsck checks a ledger and
// copy-tables.ts compares one with another. The steps, so that a damaged source never reaches
// the target and a bad copy never passes:
//  0. the source's write lock and one snapshot of it, held until the end (nothing changes it
//     under the copy);
//  1. the source checks out (fsck): every epoch's root and stored tree rebuilt from its leaf
//     hashes, each sealed leaf hash from its event, the boundaries;
//  2. the copy (copyInto: one transaction, all or nothing), streamed a slice at a time from the
//     snapshot, each unsealed event's leaf hash recomputed from its fields on the way;
//  3. the copy matches: every table's row count, the copy checked by fsck, then every table
//     (billable classification periods, meter and limit versions, webhooks with their alerts,
//     messages and attempts too) compared row by row with the source.
// Not copied, on purpose: the usage rollups (usage_buckets, usage_caller_days, rollup_state),
// which the target's sealer rebuilds from the copied epochs (rollup_state starts at -1 there);
// checkpoints and witness cosignatures, which the target signs and gathers again.
// Memory stays bounded by a batch (and by the largest epoch's tree), whatever the ledger's size.
import { bytesToHex } from '../encoding/hex.ts';
import { fsck, leafOf, type FsckProblem } from '../fsck/check.ts';
import { UnreadableLedgerError } from '../fsck/reader.ts';
import type { Row } from '../fsck/rows.ts';
import {
  ANCHORS,
  ATTEMPTS,
  CLASSIFICATIONS,
  compareTable,
  EPOCHS,
  EVENTS,
  KEYS,
  LIMITS,
  MalformedRowError,
  METERS,
  NODES,
  TABLES,
  type TableSpec,
  WEBHOOK_ALERTS,
  WEBHOOK_ATTEMPTS,
  WEBHOOK_MESSAGES,
  WEBHOOKS,
} from './copy-tables.ts';
import { describeLocation, isPostgresUrl } from './index.ts';
import type { CopyCounts, PostgresLedger, RowSource } from './postgres/index.ts';
import { openSqliteCopySource, type SqliteCopySource } from './sqlite/readers.ts';

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

function malformed(source: string, what: string): MigrateError {
  return new MigrateError(
    `the source ledger ${source} has a malformed row, so nothing was copied: ${what}. ` +
      `The file is damaged or was changed outside sui-receipts: restore it from a backup and migrate that (\`sqlite3 ${source} 'PRAGMA integrity_check'\` shows whether SQLite finds damage too)`,
  );
}

/** What the source's reader threw, as the migration's own error. */
function sourceError(file: string, err: unknown): unknown {
  if (err instanceof MalformedRowError) return malformed(file, err.message);
  if (err instanceof UnreadableLedgerError) return new MigrateError(err.message);
  return err;
}

/** The source, locked (migrate) or in a plain snapshot (checkCopy); a database URL refused. */
function openSource(file: string, lock: boolean): SqliteCopySource {
  if (isPostgresUrl(file)) {
    throw new MigrateError(
      `--from takes a SQLite ledger file, not a database URL (${describeLocation(file)}); to copy one PostgreSQL database to another, use pg_dump`,
    );
  }
  try {
    return openSqliteCopySource(file, { lock });
  } catch (err) {
    throw sourceError(file, err);
  }
}

/** Turns an fsck disagreement into the failure of the step that found it. */
function failOn(problem: FsckProblem | undefined, fail: (message: string, epoch?: number) => never): void {
  if (problem) fail(problem.message, problem.epoch);
}

/**
 * Checks the PostgreSQL ledger against the SQLite one (both read in one snapshot each): every
 * table's row count, every epoch's tree and root rebuilt from the leaf hashes in PostgreSQL,
 * then every table row by row.
 */
async function verifyCopy(
  source: SqliteCopySource,
  ledger: PostgresLedger,
  target: string,
  progress: (p: MigrateProgress) => void,
): Promise<{ epochs_checked: number; rows_compared: number }> {
  const fail = (message: string, epoch?: number): never => {
    throw new MigrateError(
      `the copy in ${target} does not match the source: ${message}. Do not serve from it: drop that database, create it again and rerun receipts migrate (the source was not changed); if it happens again, report it`,
      epoch,
    );
  };
  const { openPostgresCopySnapshot } = await import('./postgres/readers.ts');
  const copy = await openPostgresCopySnapshot(ledger.pool, target);
  try {
    const counts = new Map<TableSpec, number>();
    for (const spec of TABLES) {
      const want = source.tables.includes(spec) ? await source.count(spec) : 0;
      const got = await copy.count(spec);
      if (got !== want) fail(`it holds ${got} ${spec.label}, the source ${want}`);
      counts.set(spec, want);
    }
    const report = await fsck(copy.reader, {
      progress: (p) => p.what === 'epochs' && progress({ step: 'check-copy', what: 'epochs', done: p.done, total: p.total }),
    });
    failOn(report.problem, fail);
    const epochs = report.epochs_checked;
    if (epochs !== counts.get(EPOCHS)) fail(`${epochs} epochs were rebuilt, the source has ${counts.get(EPOCHS)}`);
    let rows = 0;
    for (const spec of source.tables) {
      rows += await compareTable(spec, source.batches(spec), copy.batches(spec), fail, (done) =>
        progress({ step: 'check-copy', what: spec.label, done, total: counts.get(spec)! }),
      );
    }
    return { epochs_checked: epochs, rows_compared: rows };
  } catch (err) {
    throw sourceError(source.reader.location, err);
  } finally {
    await copy.close();
  }
}

/**
 * Checks an earlier copy again (what `migrate` does after copying), as long as neither side has
 * changed since: no receipts serve on the copy yet. Throws a MigrateError on the first difference.
 */
export async function checkCopy(options: MigrateOptions): Promise<{ epochs_checked: number; rows_compared: number }> {
  const source = openSource(options.from, false);
  let ledger: PostgresLedger | undefined;
  try {
    const { openPostgresLedger } = await import('./postgres/index.ts');
    ledger = await openPostgresLedger(options.to, { poolSize: 2 });
    return await verifyCopy(source, ledger, describeLocation(options.to), options.progress ?? (() => {}));
  } finally {
    await ledger?.close().catch(() => {});
    source.close();
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
    throw new MigrateError(
      `--to takes a postgres:// (or postgresql://) URL of the target database; this one ${scheme ? `is a ${scheme}: URL` : 'is not a URL'}`,
    );
  }

  // 0. One snapshot for everything below, under the write lock until the end: what is checked is
  // what is copied and compared, and what is copied is the whole ledger at the cutover.
  const source = openSource(from, true);
  let ledger: PostgresLedger | undefined;
  try {
    const { lastSealedSeq } = source;
    const { openPostgresLedger, copyInto } = await import('./postgres/index.ts');
    const { holdsLedger } = await import('./postgres/copy.ts');
    try {
      ledger = await openPostgresLedger(to, { poolSize: 2 });
    } catch (err) {
      throw new MigrateError(
        `cannot open the target ${target}: ${(err as Error).message}; check --to (the database must exist: createdb NAME)`,
      );
    }
    if (await holdsLedger(ledger.pool)) {
      throw new MigrateError(
        `the target ${target} already holds a ledger (keys, events, epochs, anchor attempts, classification periods, meters, limits or webhooks): receipts migrate copies into an empty database only; create a new one (createdb NAME) and pass its URL; nothing was copied`,
      );
    }

    // 1. The source checks out, or nothing is written.
    const sourceFail = (message: string, epoch?: number): never => {
      throw new MigrateError(
        `the source ledger ${from} does not check out: ${message}. Nothing was copied: the file is damaged or was altered; restore it from a backup`,
        epoch,
      );
    };
    // Sealed events here; the events after the last epoch are checked as they are copied.
    const checked = await fsck(source.reader, {
      sealedOnly: true,
      progress: (p) => progress({ step: 'check-source', what: 'epochs', done: p.done, total: p.total }),
    });
    if (checked.problem?.code === 'malformed_row') throw malformed(from, checked.problem.message);
    failOn(checked.problem, sourceFail);

    // 2. The copy, a slice at a time; an unsealed event whose fields do not hash to its leaf stops it.
    const checkLeaf = (r: Row): void => {
      // A correction's leaf needs the version it replaces: one missing stops the copy, named.
      if (r.kind !== 0 && r.kind !== 0n && r.kind !== undefined && !Buffer.isBuffer(r.p_leaf_hash))
        sourceFail(`event ${r.id as number} corrects event ${String(r.corrects_id)}, which is not in the source`);
      const computed = leafOf(r);
      const stored = r.leaf_hash as Buffer;
      if (!stored.equals(computed))
        sourceFail(
          `event ${r.id as number}: its stored leaf hash ${stored.toString('hex')} is not the hash of its fields (${bytesToHex(computed)})`,
        );
    };
    // The rows are the SQLite tables' own columns (events with their id), which is what copyInto takes.
    const rows = (spec: TableSpec) =>
      source.rows(spec, (read, done, total) => {
        if (spec === EVENTS) for (const r of read) if (r.seq === null) checkLeaf(r);
        progress({ step: 'copy', what: spec.label, done, total });
      }) as unknown as RowSource<never>;
    let copied: CopyCounts;
    try {
      copied = await copyInto(ledger, {
        keys: rows(KEYS),
        events: rows(EVENTS),
        epochs: rows(EPOCHS),
        nodes: rows(NODES),
        attempts: rows(ATTEMPTS),
        anchors: rows(ANCHORS),
        classifications: source.tables.includes(CLASSIFICATIONS) ? rows(CLASSIFICATIONS) : [],
        meters: source.tables.includes(METERS) ? rows(METERS) : [],
        // Limits and webhooks (schema 011, 012): a source from before has none.
        limits: source.tables.includes(LIMITS) ? rows(LIMITS) : [],
        webhooks: source.tables.includes(WEBHOOKS) ? rows(WEBHOOKS) : [],
        webhookAlerts: source.tables.includes(WEBHOOK_ALERTS) ? rows(WEBHOOK_ALERTS) : [],
        webhookMessages: source.tables.includes(WEBHOOK_MESSAGES) ? rows(WEBHOOK_MESSAGES) : [],
        webhookAttempts: source.tables.includes(WEBHOOK_ATTEMPTS) ? rows(WEBHOOK_ATTEMPTS) : [],
      });
    } catch (err) {
      if (err instanceof MigrateError) throw err;
      if (err instanceof MalformedRowError) throw malformed(from, err.message);
      throw new MigrateError(`copying into ${target} failed, nothing was written there: ${(err as Error).message}`);
    }

    // 3. The copy matches the source, and every epoch's root is the root of its copied leaves.
    const compared = await verifyCopy(source, ledger, target, progress);
    const unsealed = await source.reader.unsealedCount(lastSealedSeq);
    return {
      from,
      to: target,
      copied,
      unsealed,
      ...compared,
      ms: Math.round(performance.now() - started),
    };
  } finally {
    await ledger?.close().catch(() => {});
    source.close();
  }
}
