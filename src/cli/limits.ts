// `receipts limits create|list|delete`: an operator's view of the owners' limits (docs/api.md
// "Limits"), safe while servers run on the same ledger: a change is a new version, as over HTTP,
// checked by the same rules (checkLimitInput), and takes effect at the next check of any server.
import { type Command, Option } from 'commander';
import { checkLimitId, checkLimitInput, type Ledger, LimitError, type LimitVersion, MEASURES } from '../ledger/index.ts';
import { PERIODS } from '../limits/period.ts';
import { CliError } from './errors.ts';
import { refuseWhileMigrating } from './lock.ts';
import { dbOption, listOf, withLedger } from './options.ts';

const withLimits = <T>(db: string, fn: (ledger: Ledger) => Promise<T>): Promise<T> => {
  refuseWhileMigrating(db, 'the limits are not touched');
  return withLedger(db, fn);
};

/** A flag's refusal: the flag named, the rule said. */
const flagError = (e: LimitError) =>
  new CliError('usage', `--${e.field.replace(/\..*$/, '').replace('_', '-')}: ${e.message} (rule ${e.rule})`);

const numbers = (flag: string, values: string[] | undefined): number[] | undefined =>
  values?.map((v) => {
    if (!/^\d{1,16}$/.test(v)) throw new CliError('usage', `--${flag}: ${JSON.stringify(v)} is not a whole number`);
    return Number(v);
  });

const shown = (v: LimitVersion) => ({
  id: v.id,
  version: v.version,
  namespace: v.namespace,
  meter: v.meter,
  actions: v.actions,
  measure: v.measure,
  period: v.period,
  tz: v.tz,
  hard: v.hard,
  soft: v.soft,
  soft_units: v.soft_units,
  deleted: v.deleted,
  from: new Date(v.from_ms).toISOString(),
  created_at: new Date(v.created_at).toISOString(),
});

function line(v: LimitVersion): string {
  const what = v.meter !== null ? `meter ${v.meter}` : `${v.measure} of ${v.actions?.join(',') ?? 'every action'}`;
  const thresholds = [
    v.hard !== null ? `hard ${v.hard}` : null,
    v.soft ? `soft ${v.soft.map((p) => `${p}%`).join(',')}` : null,
    v.soft_units ? `soft ${v.soft_units.join(',')}` : null,
  ].filter(Boolean);
  return `${v.id}  v${v.version}  ${v.namespace}  ${what}  per ${v.period}${v.period === 'total' ? '' : ` (${v.tz})`}  ${thresholds.join('  ')}  from ${new Date(v.from_ms).toISOString()}\n`;
}

export function addLimitsCommands(program: Command): void {
  const limits = program.command('limits').description("create, list and delete the owners' usage limits");

  limits
    .command('create')
    .description('define a limit of an owner, or a new version of it from now')
    .argument('<id>', 'the limit id: 1 to 64 of a-z 0-9 _ . - (starting with a letter or digit)')
    .addOption(dbOption())
    .requiredOption('--owner <name>', 'whose limit it is (the owner of the keys that check it)')
    .requiredOption('--namespace <namespace>', 'the namespace whose usage it counts')
    .option('--meter <name>', 'count this sum or count meter of the owner (instead of --action and --measure)')
    .addOption(new Option('--action <action>', 'an action it counts (repeatable; default every action)').argParser(listOf))
    .addOption(new Option('--measure <what>', 'what it counts of those actions').choices([...MEASURES]))
    .addOption(new Option('--period <period>', 'the period: a day or month of --tz, or total').choices([...PERIODS]).makeOptionMandatory())
    .option('--tz <zone>', 'IANA time zone of the period', 'UTC')
    .option('--hard <n>', 'checks refuse work past this')
    .addOption(new Option('--soft <percent>', 'alert threshold, percent of --hard (repeatable)').argParser(listOf))
    .addOption(new Option('--soft-units <n>', 'alert threshold, absolute (repeatable)').argParser(listOf))
    .option('--json', 'print JSON')
    .action(
      async (
        id: string,
        opts: {
          db: string;
          owner: string;
          namespace: string;
          meter?: string;
          action?: string[];
          measure?: string;
          period: string;
          tz: string;
          hard?: string;
          soft?: string[];
          softUnits?: string[];
          json?: boolean;
        },
      ) => {
        let input: ReturnType<typeof checkLimitInput>;
        try {
          checkLimitId(id);
          input = checkLimitInput({
            namespace: opts.namespace,
            ...(opts.meter !== undefined && { meter: opts.meter }),
            ...(opts.action !== undefined && { actions: opts.action }),
            ...(opts.measure !== undefined && { measure: opts.measure }),
            period: opts.period,
            tz: opts.tz,
            ...(opts.hard !== undefined && { hard: numbers('hard', [opts.hard])![0]! }),
            ...(opts.soft !== undefined && { soft: numbers('soft', opts.soft)! }),
            ...(opts.softUnits !== undefined && { soft_units: numbers('soft-units', opts.softUnits)! }),
          });
        } catch (err) {
          if (err instanceof LimitError) throw err.field === 'id' ? new CliError('usage', `<id>: ${err.message}`) : flagError(err);
          throw err;
        }
        const { version, created } = await withLimits(opts.db, async (ledger) => {
          if (input.meter !== null) {
            const versions = await ledger.meters.versions(opts.owner, input.meter);
            const agg = versions[0]?.aggregation;
            if (agg !== 'sum' && agg !== 'count')
              throw new CliError(
                'usage',
                `--meter: ${agg === undefined ? `owner ${opts.owner} has no meter ${input.meter}` : `meter ${input.meter} is a ${agg} meter; a limit counts a sum or count meter`}`,
              );
          }
          try {
            return await ledger.limits.define(opts.owner, id, input, Date.now());
          } catch (err) {
            if (err instanceof LimitError) throw flagError(err);
            throw err;
          }
        });
        if (opts.json) process.stdout.write(`${JSON.stringify({ ...shown(version), created })}\n`);
        else process.stdout.write(`${created ? 'defined' : 'unchanged (this definition is in force)'}: ${line(version)}`);
      },
    );

  limits
    .command('list')
    .description("list an owner's limits (the latest version of each; deleted ones left out)")
    .addOption(dbOption())
    .requiredOption('--owner <name>', 'whose limits')
    .option('--namespace <namespace>', 'only the limits of this namespace')
    .option('--json', 'print JSON')
    .action(async (opts: { db: string; owner: string; namespace?: string; json?: boolean }) => {
      const list = await withLimits(opts.db, (ledger) => ledger.limits.list(opts.owner, opts.namespace));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(list.map(shown))}\n`);
        return;
      }
      if (list.length === 0) process.stdout.write(`no limits of ${opts.owner}; define one with \`receipts limits create\`\n`);
      for (const v of list) process.stdout.write(line(v));
    });

  limits
    .command('delete')
    .description('delete a limit from now on (a deletion version; its history is kept)')
    .argument('<id>', 'the limit id')
    .addOption(dbOption())
    .requiredOption('--owner <name>', 'whose limit')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { db: string; owner: string; json?: boolean }) => {
      const v = await withLimits(opts.db, (ledger) => ledger.limits.remove(opts.owner, id, Date.now()));
      if (!v) throw new CliError('not_found', `owner ${opts.owner} has no limit ${id}; see \`receipts limits list --owner ${opts.owner}\``);
      if (opts.json) process.stdout.write(`${JSON.stringify(shown(v))}\n`);
      else process.stdout.write(`deleted ${id} (version ${v.version}, from ${new Date(v.from_ms).toISOString()})\n`);
    });
}
