// `receipts seal`: seal everything waiting, now (for scripts and tests). Safe beside a running server.
import { Command, Option } from 'commander';
import { sealNext } from '../seal/sealer.ts';
import { dbOption, integerIn, openLedger } from './options.ts';

export function addSealCommand(program: Command): void {
  program
    .command('seal')
    .description('seal every unsealed event into epochs now')
    .addOption(dbOption())
    .addOption(new Option('--max-events <n>', 'most events in one epoch').default(100_000).argParser(integerIn(1, 10_000_000)))
    .option('--json', 'print the sealed epochs as JSON')
    .action((opts: { db: string; maxEvents: number; json?: boolean }) => {
      const { db } = openLedger(opts.db);
      const sealed = [];
      try {
        for (;;) {
          const started = performance.now();
          const epoch = sealNext(db, {
            maxEvents: opts.maxEvents,
            progress: opts.json ? undefined : (phase, d) => process.stderr.write(`  epoch ${d.epoch}: ${phase} ${plural(d.size!, 'event')}\n`),
          });
          if (!epoch) break;
          sealed.push(epoch);
          if (!opts.json) process.stdout.write(`sealed epoch ${epoch.epoch}: ${plural(epoch.size, 'event')}, root ${epoch.root} (${Math.round(performance.now() - started)} ms)\n`);
        }
      } finally {
        db.close();
      }
      if (opts.json) process.stdout.write(`${JSON.stringify(sealed)}\n`);
      else if (sealed.length === 0) process.stdout.write('nothing to seal: every event is already in an epoch\n');
    });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
