// `receipts rollups rebuild [--db FILE|URL]`: drops the usage rollups and builds them again from
// the events (after `receipts fsck` named a rollup row that differs from its events). Usage stays
// exact meanwhile: whatever is not rolled up is read from the events.
import type { Command } from 'commander';
import type { Ledger } from '../ledger/index.ts';
import { refuseWhileMigrating } from './lock.ts';
import { dbOption, withLedger } from './options.ts';

export function addRollupsCommands(program: Command): void {
  const rollups = program.command('rollups').description('usage rollups: the aggregates of sealed epochs that usage queries read');
  rollups
    .command('rebuild')
    .description('drop the usage rollups and build them again from the events (one epoch per transaction, with progress)')
    .addOption(dbOption())
    .option('--json', 'print the result as JSON')
    .action(async (opts: { db: string; json?: boolean }) => {
      refuseWhileMigrating(opts.db, 'nothing is rebuilt');
      const result = await withLedger(opts.db, async (ledger) => rebuild(ledger, opts.json === true));
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else if (result.rebuilt_by === 'this command')
        process.stdout.write(`rebuilt the usage rollups of ${result.epochs} epochs from their events\n`);
      else
        process.stdout.write(
          'dropped the usage rollups; the running leader rebuilds them from the events before its next seal (its log shows the progress). Usage stays exact meanwhile, read from the events.\n',
        );
    });
}

async function rebuild(ledger: Ledger, quiet: boolean): Promise<{ epochs: number; rebuilt_by: 'this command' | 'the leader' }> {
  // PostgreSQL: only the leader writes rollups. Take the role unless a running instance holds it.
  await ledger.leadership.start(() => {});
  for (let waited = 0; ledger.leadership.role() !== 'leader' && waited < 3_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  await ledger.epochs.clearRollups();
  if (ledger.leadership.role() !== 'leader') return { epochs: 0, rebuilt_by: 'the leader' };
  let last = 0;
  const epochs = await ledger.epochs.catchUpRollups((p) => {
    const now = Date.now();
    if (!quiet && (now - last > 2_000 || p.done === p.of)) {
      last = now;
      process.stderr.write(`rolling up epoch ${p.epoch}: ${p.done} of ${p.of} epochs\n`);
    }
  });
  return { epochs, rebuilt_by: 'this command' };
}
