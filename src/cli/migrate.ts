// `receipts migrate --from FILE --to URL`: moves a SQLite ledger to PostgreSQL. The copy and its
// check live in the ledger (src/ledger/migrate.ts); here: the serve lock, progress and summary.
import { type Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { isPostgresUrl } from '../ledger/index.ts';
import { MigrateError, migrateToPostgres, type MigrateProgress, type MigrateSummary } from '../ledger/migrate.ts';
import { CliError } from './errors.ts';
import { acquireServeLock, type ServeLock } from './lock.ts';
import { plural, progressLines } from './progress.ts';

export function addMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('copy a SQLite ledger into an empty PostgreSQL database, then check the copy and every epoch root in it')
    .requiredOption('--from <file>', "the SQLite ledger file (serve's --db), read only; stop receipts serve on it first")
    .addOption(
      new Option('--to <url>', 'postgres://user@host/db: an empty database (its tables are created)')
        .env('RECEIPTS_DATABASE_URL')
        .makeOptionMandatory(),
    )
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { from: string; to: string; json?: boolean }) => {
      const lock = holdSource(opts.from);
      let summary: MigrateSummary;
      try {
        summary = await migrateToPostgres({ from: opts.from, to: opts.to, progress: progressLine() });
      } catch (err) {
        throw err instanceof MigrateError ? new CliError('migrate_refused', err.message, { cause: err }) : err;
      } finally {
        lock?.release();
      }
      process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : describe(summary));
    });
}

/**
 * Refuses while a `receipts serve` runs on the source: events it accepted after the copy's
 * snapshot would be acknowledged to clients and never reach PostgreSQL. A warning would not do,
 * the loss is silent. The lock is then held for the whole copy, so no serve starts meanwhile.
 */
function holdSource(file: string): ServeLock | undefined {
  if (isPostgresUrl(file) || !existsSync(file)) return undefined; // migrate says what is wrong with it
  try {
    return acquireServeLock(file, 'migrate', 'migrate');
  } catch (err) {
    if (err instanceof CliError && err.code === 'ledger_busy') {
      const h = err.holder;
      const who = !h
        ? 'another process holds its serve lock'
        : h.command === 'migrate'
          ? `receipts migrate (pid ${h.pid}) is already copying it`
          : `receipts serve (pid ${h.pid}${h.port === null ? '' : `, listening on ${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`}) runs on it`;
      throw new CliError(
        'ledger_busy',
        `${who}: events it accepts during the copy would never reach PostgreSQL, so nothing was copied. ` +
          `Stop it, run receipts migrate again, then start receipts serve with --db set to the PostgreSQL URL.`,
        { holder: h, cause: err },
      );
    }
    // No lock file beside it (a read-only directory, say): no serve can be writing there either.
    process.stderr.write(
      `warning: could not take the serve lock beside ${file} (${(err as Error).message}); make sure no receipts serve runs on it until the copy is done\n`,
    );
    return undefined;
  }
}

/** Progress on stderr: a line every 5 s at most, and one when each part is done. */
function progressLine(): (p: MigrateProgress) => void {
  return progressLines((p: MigrateProgress) =>
    p.step === 'copy'
      ? `copying ${p.what}`
      : p.step === 'check-source'
        ? `checking source ${p.what}`
        : p.what === 'epochs'
          ? 'checking copied epochs'
          : `comparing copied ${p.what}`,
  );
}

function describe(s: MigrateSummary): string {
  const c = s.copied;
  const unsealed =
    s.unsealed > 0 ? ` (${plural(s.unsealed, 'event')} after the last epoch, sealed next on PostgreSQL in the same order)` : '';
  const parts = [
    plural(c.keys, 'key'),
    `${plural(c.events, 'event')}${unsealed}`,
    plural(c.epochs, 'epoch'),
    plural(c.nodes, 'tree-node chunk'),
    plural(c.attempts, 'anchor attempt'),
    plural(c.anchors, 'anchor'),
    ...(c.classifications ? [plural(c.classifications, 'classification period')] : []),
    ...(c.meters ? [plural(c.meters, 'meter version')] : []),
    ...(c.limits ? [plural(c.limits, 'limit version')] : []),
    ...(c.webhooks ? [plural(c.webhooks, 'webhook')] : []),
    ...(c.webhook_alerts ? [plural(c.webhook_alerts, 'webhook alert')] : []),
    ...(c.webhook_messages ? [plural(c.webhook_messages, 'webhook message')] : []),
    ...(c.webhook_attempts ? [plural(c.webhook_attempts, 'webhook delivery attempt')] : []),
  ];
  return (
    `copied ${parts.slice(0, -1).join(', ')} and ${parts.at(-1)} ` +
    `from ${s.from} to ${s.to} in ${(s.ms / 1000).toFixed(1)} s; ` +
    `every epoch root checked (${plural(s.epochs_checked, 'epoch')} rebuilt from the copied leaves, ${plural(s.rows_compared, 'row')} compared with the source).\n` +
    'Next: start receipts serve with --db set to that URL (any number of instances); keep the SQLite file as a backup and do not serve it again.\n'
  );
}
