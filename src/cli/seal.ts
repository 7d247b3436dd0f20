// `receipts seal`: seal everything waiting, now (for scripts and tests). Safe beside a running server.
import { type Command, Option } from 'commander';
import type { Ledger } from '../ledger/index.ts';
import { sealNext } from '../seal/sealer.ts';
import { refuseWhileMigrating } from './lock.ts';
import { CliError } from './errors.ts';
import { dbOption, integerIn, withLedger } from './options.ts';

export function addSealCommand(program: Command): void {
  program
    .command('seal')
    .description('seal every unsealed event into epochs now')
    .addOption(dbOption())
    .addOption(new Option('--max-events <n>', 'most events in one epoch').default(100_000).argParser(integerIn(1, 10_000_000)))
    .option('--json', 'print the sealed epochs as JSON')
    .action(async (opts: { db: string; maxEvents: number; json?: boolean }) => {
      refuseWhileMigrating(opts.db, 'nothing is sealed'); // an epoch sealed now would be missing from the copy
      const sealed = await withLedger(opts.db, async (ledger) => {
        await lead(ledger);
        const sealed = [];
        for (;;) {
          const started = performance.now();
          const epoch = await sealNext(ledger, {
            maxEvents: opts.maxEvents,
            progress: opts.json
              ? undefined
              : (phase, d) =>
                  process.stderr.write(
                    phase === 'analyze-failed'
                      ? `  epoch ${d.epoch}: sealed; ANALYZE events (seq) failed or was not allowed (this role does not own events): run ANALYZE events as its owner, or usage may read the whole table until autovacuum does\n`
                      : `  epoch ${d.epoch}: ${phase}${d.size === undefined ? '' : ` ${plural(d.size, 'event')}`}\n`,
                  ),
          });
          if (!epoch) break;
          sealed.push(epoch);
          if (!opts.json)
            process.stdout.write(
              `sealed epoch ${epoch.epoch}: ${plural(epoch.size, 'event')}, root ${epoch.root} (${Math.round(performance.now() - started)} ms)\n`,
            );
        }
        return sealed;
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(sealed)}\n`);
      else if (sealed.length === 0) process.stdout.write('nothing to seal: every event is already in an epoch\n');
    });
}

/** Only the leader seals: on PostgreSQL, take the role unless a running instance holds it. */
async function lead(ledger: Ledger): Promise<void> {
  await ledger.leadership.start(() => {});
  for (let waited = 0; ledger.leadership.role() !== 'leader' && waited < 5_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  if (ledger.leadership.role() !== 'leader') {
    throw new CliError(
      'not_leader',
      'another instance leads this ledger and seals it on its own (see role in its /healthz); run `receipts seal` when no `receipts serve` runs on it',
    );
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
