// `receipts fsck [--db FILE|URL]`: checks a ledger, SQLite or PostgreSQL, live or not, read-only.
// Exit 0: it checks out; 1: a disagreement, named (epoch, tree level, node, event); 2: bad usage,
// or the ledger cannot be read at all (nothing was checked).
import type { Command } from 'commander';
import { fsck, UnreadableLedgerError, type FsckProgress, type FsckReport } from '../fsck/index.ts';
import { openReader } from '../ledger/index.ts';
import { dbOption, describeFailure } from './options.ts';
import { CliError } from './errors.ts';
import { plural, progressLines } from './progress.ts';

/** Exit codes of `receipts fsck` and `receipts backup` (also in --help and the docs). */
export const FSCK_EXIT = { ok: 0, disagreement: 1, usage: 2 } as const;

export const FSCK_EXIT_HELP =
  '\nExit codes:\n  0  the ledger checks out\n  1  a disagreement: the first one is named (epoch, tree level and node, or event)\n' +
  '  2  bad usage, or the ledger cannot be read at all (no such file, not a ledger, database unreachable): nothing was checked\n';

export function addFsckCommand(program: Command): void {
  program
    .command('fsck')
    .description(
      "check a ledger: every epoch's root and stored tree rebuilt from its leaf hashes, every leaf hash from its event, the sequence and the epoch boundaries",
    )
    .addOption(dbOption())
    .option('--json', 'print the report as JSON')
    .addHelpText('after', FSCK_EXIT_HELP)
    .action(async (opts: { db: string; json?: boolean }) => {
      const report = await checkLedger(opts.db);
      process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : describeReport(report));
      if (!report.ok) throw new CliError('invalid', '');
    });
}

/** Opens a read-only snapshot of the ledger at location and checks it, with progress on stderr. */
export async function checkLedger(location: string, label = 'checking'): Promise<FsckReport> {
  let reader;
  try {
    reader = await openReader(location);
  } catch (err) {
    if (err instanceof UnreadableLedgerError) throw new CliError('unreadable', describeFailure(err.message));
    throw err;
  }
  try {
    return await fsck(reader, { progress: progressLine(label) });
  } finally {
    await reader.close();
  }
}

/** Progress on stderr: a line every 5 s at most, and one when each part is done. */
export function progressLine(label: string): (p: FsckProgress) => void {
  return progressLines((p: FsckProgress) => `${label} ${p.what}`);
}

export function describeReport(r: FsckReport): string {
  if (!r.ok && r.problem!.code === 'rollup') {
    // Everything else was checked first and checks out: only derived totals are wrong.
    return `${r.location}: epochs, trees and events check out, but ${r.problem!.message} [rollup]\n`;
  }
  if (!r.ok) {
    return (
      `${r.location} does not check out: ${r.problem!.message} [${r.problem!.code}]\n` +
      'Serve no receipts from it until the cause is known: compare with a backup (receipts fsck --db BACKUP), and restore the last one that checks out.\n'
    );
  }
  return (
    `${r.location} checks out: ${plural(r.epochs_checked, 'epoch')} (${plural(r.events_checked, 'event')}, ${plural(r.nodes_checked, 'tree node')}) ` +
    `rebuilt from their leaves, ${plural(r.unsealed_checked, 'event')} after the last epoch, in ${(r.ms / 1000).toFixed(1)} s\n`
  );
}
