// `receipts backup --db FILE --to FILE`: a consistent copy of a live SQLite ledger, checked.
// SQLite's online backup, run from a connection that holds one read snapshot for the whole copy:
// a serve writing meanwhile neither waits nor restarts the copy, and the copy holds the ledger as
// of that snapshot (a prefix of what the serve goes on writing). The copy is written beside --to
// under a temporary name, checked with fsck, and only then takes the name --to, which is never
// overwritten. PostgreSQL is refused: pg_dump does that job (docs/operations.md).
import Database from 'better-sqlite3';
import { type Command, Option } from 'commander';
import { existsSync, linkSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { describeLocation, isPostgresUrl } from '../ledger/index.ts';
import { checkLedger, describeReport, FSCK_EXIT_HELP } from './fsck.ts';
import { dbOption } from './options.ts';
import { CliError } from './errors.ts';

/** Pages copied per step (4 KiB each: 16 MiB), between progress lines. */
const PAGES_PER_STEP = 4096;

export function addBackupCommand(program: Command): void {
  program
    .command('backup')
    .description('copy a SQLite ledger, live or not, into a new file consistently (SQLite online backup), then check the copy with fsck')
    .addOption(dbOption())
    .addOption(new Option('--to <file>', 'the new file (never overwritten; its directory must exist)').makeOptionMandatory())
    .option('--json', 'print the summary (and the check of the copy) as JSON')
    .addHelpText(
      'after',
      FSCK_EXIT_HELP.replace('the ledger checks out', 'the copy is written and checks out').replace(
        'a disagreement',
        'the copy does not check out (and is not kept)',
      ),
    )
    .action(async (opts: { db: string; to: string; json?: boolean }) => {
      const { db, to } = opts;
      if (isPostgresUrl(db)) {
        throw new CliError(
          'usage',
          `receipts backup copies a SQLite ledger; ${describeLocation(db)} is PostgreSQL: back it up with pg_dump (docs/operations.md, "Backing up PostgreSQL")`,
        );
      }
      if (isPostgresUrl(to)) throw new CliError('usage', '--to takes the path of a new SQLite file, not a database URL');
      if (existsSync(to))
        throw new CliError(
          'usage',
          `${to} (${resolve(to)}) already exists: receipts backup never overwrites a file; choose a new name, or remove it first`,
        );
      if (!existsSync(dirname(resolve(to))) || !statSync(dirname(resolve(to))).isDirectory()) {
        throw new CliError('usage', `${dirname(resolve(to))} is not a directory: --to must name a file in an existing directory`);
      }
      const started = performance.now();
      const partial = join(dirname(resolve(to)), `.${basename(to)}.partial-${process.pid}`);
      let pages = 0;
      try {
        pages = await copy(db, partial);
        const check = await checkLedger(partial, 'checking the copy:');
        if (!check.ok) {
          // The copy is the source as it was: the source most likely has the same damage.
          throw new CliError(
            'invalid',
            `the copy does not check out, so it was not kept: ${check.problem!.message} [${check.problem!.code}]. ` +
              `The source likely has the same damage: run receipts fsck --db ${db}`,
          );
        }
        try {
          linkSync(partial, to); // fails if --to appeared meanwhile: never overwritten
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST')
            throw new CliError(
              'usage',
              `${to} appeared during the copy: receipts backup never overwrites a file; nothing was written there`,
            );
          throw err;
        }
        const summary = {
          from: db,
          to,
          pages,
          bytes: statSync(to).size,
          ms: Math.round(performance.now() - started),
          check: { ...check, location: to },
        };
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(summary)}\n`
            : `backed up ${db} to ${to}: ${(summary.bytes / 1024 / 1024).toFixed(1)} MiB in ${(summary.ms / 1000).toFixed(1)} s\n${describeReport(summary.check)}`,
        );
      } finally {
        for (const f of [partial, `${partial}-wal`, `${partial}-shm`, `${partial}-journal`]) rmSync(f, { force: true });
      }
    });
}

/** Copies the ledger `file` into `dest` from one read snapshot; returns the pages copied. */
async function copy(file: string, dest: string): Promise<number> {
  if (!existsSync(file)) throw new CliError('usage', `no SQLite ledger at ${file} (${resolve(file)}): check --db`);
  if (!statSync(file).isFile())
    throw new CliError('usage', `${file} (${resolve(file)}) is not a file: --db takes the SQLite ledger file (serve's --db)`);
  let src: Database.Database;
  try {
    src = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
    const tables = new Set(src.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
    if (!['events', 'epochs', 'epoch_nodes'].every((t) => tables.has(t))) {
      src.close();
      throw new CliError(
        'unreadable',
        `${file} is not a sui-receipts ledger (it has no events, epochs and epoch_nodes tables): check --db`,
      );
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError('unreadable', `cannot read ${file} as a SQLite ledger: ${(err as Error).message}; check --db`);
  }
  try {
    // One snapshot for the whole copy: the backup steps run inside this read transaction.
    src.exec('BEGIN');
    src.prepare('SELECT count(*) FROM epochs').get();
    let last = performance.now();
    const line = (done: number, total: number) =>
      process.stderr.write(`copying pages: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}\n`);
    const result = await src.backup(dest, {
      // Called between steps only: a line every 5 s at most; the last one below.
      progress: ({ totalPages, remainingPages }) => {
        if (performance.now() - last >= 5000) {
          last = performance.now();
          line(totalPages - remainingPages, totalPages);
        }
        return PAGES_PER_STEP;
      },
    });
    line(result.totalPages, result.totalPages);
    return result.totalPages;
  } finally {
    if (src.inTransaction) src.exec('ROLLBACK');
    src.close();
  }
}
