// `receipts audit`: checks a period's bill without trusting the server (auditPeriod): every
// receipt to its epoch root, every epoch root to a checkpoint signed by the pinned log key and
// cosigned by enough pinned witnesses (and, with --rpc, on chain), the totals recomputed per
// action. Exit 0 only when every number is backed; 1 when a problem is found; 2 for bad usage.
import { type Command, Option } from 'commander';
import type { Network } from '../chain/config.ts';
import { SuiChain } from '../chain/sui.ts';
import { auditPeriod, type AnchorReader, type AuditReport } from '../verify/audit.ts';
import { CliError } from './errors.ts';
import { integerIn, listOf } from './options.ts';
import { plural } from './progress.ts';

interface AuditFlags {
  url: string;
  key?: string;
  namespace: string;
  from: string;
  to: string;
  logKey?: string[];
  witness?: string[];
  minWitnesses?: number;
  rpc?: string;
  trustServer?: boolean;
  json?: boolean;
}

export function addAuditCommand(program: Command): void {
  program
    .command('audit')
    .description("check every unit of a period's bill against the signed epoch log, without trusting the server")
    .requiredOption('--url <url>', 'the service, e.g. https://receipts.example.com')
    .addOption(
      new Option('--key <key>', 'an API key that may read the namespace (better in RECEIPTS_API_KEY: ps shows arguments)').env(
        'RECEIPTS_API_KEY',
      ),
    )
    .requiredOption('--namespace <ns>', 'the namespace billed')
    .requiredOption('--from <time>', 'start of the period (epoch ms or RFC 3339), included')
    .requiredOption('--to <time>', 'end of the period (epoch ms or RFC 3339), excluded')
    .option(
      '--log-key <vkey>',
      "the log's verifier key (name+hex8+base64), pinned from a source you trust; repeat for a rotated key",
      listOf,
    )
    .option('--witness <vkey>', 'a witness verifier key whose cosignature counts; repeatable', (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .addOption(
      new Option('--min-witnesses <k>', 'cosignatures each checkpoint needs (default: every --witness)').argParser(integerIn(0, 100)),
    )
    .option('--rpc <url>', 'also check anchored epoch roots in the Sui registry through this full node')
    .option('--trust-server', 'take epoch roots from the server itself (no --log-key): checks nothing outside the server')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExit codes:\n  0  every number is backed\n  1  a problem was found (each with its code), or the server could not be audited\n  2  bad usage\n',
    )
    .action(async (opts: AuditFlags) => {
      if (!opts.key) throw new CliError('usage', '--key (or RECEIPTS_API_KEY) is required: an API key that may read the namespace');
      const logKeys = opts.logKey ?? [];
      if (logKeys.length === 0 && !opts.trustServer)
        throw new CliError(
          'usage',
          "--log-key VKEY is required: the log's verifier key from a source you trust (or --trust-server, which checks nothing outside the server)",
        );
      if (logKeys.length > 0 && opts.trustServer) throw new CliError('usage', '--trust-server and --log-key do not go together');
      const witnesses = opts.witness ?? [];
      if (opts.minWitnesses !== undefined && opts.minWitnesses > witnesses.length)
        throw new CliError(
          'usage',
          `--min-witnesses ${opts.minWitnesses} needs at least as many --witness keys (${witnesses.length} given)`,
        );
      const tty = process.stderr.isTTY === true;
      let report: AuditReport;
      try {
        report = await auditPeriod({
          url: opts.url,
          key: opts.key,
          namespace: opts.namespace,
          from: opts.from,
          to: opts.to,
          logKeys,
          witnesses,
          ...(opts.minWitnesses !== undefined && { minWitnesses: opts.minWitnesses }),
          trustServer: opts.trustServer ?? false,
          ...(opts.rpc && { readAnchor: chainReader(opts.rpc) }),
          ...(tty && {
            onProgress: (p) => process.stderr.write(`\rauditing: ${plural(p.pages, 'page')}, ${plural(p.events, 'receipt')}`),
          }),
        });
      } catch (err) {
        if (err instanceof TypeError) throw new CliError('usage', err.message, { cause: err });
        throw err;
      } finally {
        if (tty) process.stderr.write('\n');
      }
      for (const w of report.warnings) process.stderr.write(`WARNING: ${w}\n`);
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(summary(report, opts.rpc !== undefined));
      if (!report.ok) throw new CliError('invalid', '');
    });
}

/** Reads an anchored epoch through the registry the receipt names, over --rpc. */
function chainReader(rpcUrl: string): AnchorReader {
  const chains = new Map<string, SuiChain>();
  return async (anchor, epoch) => {
    const k = `${anchor.network} ${anchor.package_id} ${anchor.registry_id}`;
    let chain = chains.get(k);
    if (!chain) {
      chain = new SuiChain({ network: anchor.network as Network, rpcUrl, packageId: anchor.package_id, registryId: anchor.registry_id });
      chains.set(k, chain);
    }
    try {
      return await chain.readEpoch(epoch);
    } catch (err) {
      throw new CliError(
        'chain_unreachable',
        `cannot read registry ${anchor.registry_id} through ${rpcUrl}: ${(err as Error).message}; check --rpc and the network (${anchor.network})`,
        { cause: err },
      );
    }
  };
}

function summary(r: AuditReport, rpc: boolean): string {
  const n = (x: number | string) => (typeof x === 'number' ? x.toLocaleString('en-US') : x);
  const lines = [
    `${r.ok ? 'backed' : 'NOT BACKED'}: ${r.namespace} over [${new Date(r.from).toISOString()}, ${new Date(r.to).toISOString()})`,
    `  events          ${n(r.events)}`,
    `  units           ${n(r.units)}`,
    `  billable units  ${n(r.billable_units)} (${plural(r.billable_events, 'billable event')})`,
    `  epochs          ${n(r.epochs)}`,
    r.trust === 'server'
      ? '  checkpoints     none checked: roots taken from the server (--trust-server)'
      : `  checkpoints     ${n(r.checkpoints)} signed by ${r.log_key ?? 'no given log key'}`,
    `  witnesses       ${r.witnesses} cosigned each checkpoint`,
  ];
  if (rpc && r.chain) lines.push(`  on chain        ${plural(r.chain.checked, 'epoch')} checked, ${r.chain.unanchored} not anchored`);
  for (const [action, t] of Object.entries(r.by_action))
    lines.push(`  ${action}: ${plural(t.events, 'event')}, ${n(t.units)} units, ${n(t.billable_units)} billable`);
  if (r.server_totals && !r.ok) {
    const s = r.server_totals;
    lines.push(`  the server said: ${plural(s.events, 'event')}, ${n(s.units)} units, ${n(s.billable_units)} billable units`);
  }
  for (const p of r.problems) lines.push(`problem [${p.code}]: ${p.message}`);
  if (r.problems_left_off > 0) lines.push(`… and ${plural(r.problems_left_off, 'more problem')} (see --json)`);
  return `${lines.join('\n')}\n`;
}
