// `receipts verify FILE|-`: exit 0 valid, 1 invalid, 2 unreadable input.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { verifyReceipt, type VerifyResult } from '../verify/index.ts';
import { SuiChain } from '../chain/sui.ts';
import type { Network } from '../chain/config.ts';
import type { Receipt } from '../receipt/format.ts';
import { integerIn } from './options.ts';

export class ExitCode extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export function addVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('verify a receipt (the JSON of GET /v1/events/:id/receipt), offline or against a trusted root')
    .argument('<file>', 'receipt file, or - for standard input')
    .addOption(new Option('--root <hex>', 'trusted epoch root (64 hex characters), e.g. read from the chain').argParser((v) => {
      if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new InvalidArgumentError('must be 64 hex characters');
      return v;
    }))
    .addOption(new Option('--size <n>', 'trusted tree size of the epoch (with --root)').argParser(integerIn(1, Number.MAX_SAFE_INTEGER)))
    .option('--rpc <url>', "also read the epoch's root and size from the Sui registry named in the receipt's anchor, through this full node")
    .option('--onchain', 'with --rpc: also run registry::verify_event on chain (simulated, nothing executed) and report its answer')
    .option('--json', 'print the verification result as JSON')
    .action(async (file: string, opts: { root?: string; size?: number; rpc?: string; onchain?: boolean; json?: boolean }) => {
      if ((opts.root === undefined) !== (opts.size === undefined)) {
        throw new ExitCode(2, '--root and --size go together: a root proves nothing without the size of its tree');
      }
      if (opts.onchain && !opts.rpc) throw new ExitCode(2, '--onchain needs --rpc URL (the full node to ask)');
      if (opts.rpc && opts.root) throw new ExitCode(2, '--rpc reads the trusted root from the chain: leave out --root and --size');
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch (err) {
        throw new ExitCode(2, `cannot read ${file === '-' ? 'standard input' : file}: ${(err as Error).message}`);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new ExitCode(2, `${file === '-' ? 'standard input' : file} is not JSON: ${(err as Error).message}`);
      }
      if (opts.rpc) return verifyOnChain(json, opts.rpc, opts.onchain ?? false, opts.json ?? false);
      const result = verifyReceipt(json, { ...(opts.root && { root: opts.root }), ...(opts.size && { size: opts.size }) });
      report(result, opts.json ?? false, result.ok && result.trusted_root ? ' (trusted root)' : " (the receipt's own root)");
    });
}

function report(result: VerifyResult, json: boolean, source: string, extra: Record<string, unknown> = {}): void {
  if (json) process.stdout.write(`${JSON.stringify({ ...result, ...extra })}\n`);
  else if (result.ok) process.stdout.write(`valid: epoch ${result.epoch}, leaf ${result.leaf_index} of ${result.tree_size}, root ${result.root}${source}\n`);
  else process.stdout.write(`invalid: ${result.reason}\n`);
  if (!result.ok) throw new ExitCode(1, '');
}

/** Checks the receipt against the root and size the registry holds, and optionally verify_event. */
async function verifyOnChain(json: unknown, rpcUrl: string, onchain: boolean, asJson: boolean): Promise<void> {
  const receipt = json as Receipt;
  const anchor = receipt?.anchor;
  if (!anchor || typeof anchor.registry_id !== 'string' || typeof anchor.package_id !== 'string' || typeof receipt.epoch !== 'number') {
    process.stdout.write(`invalid: the receipt is not anchored (status ${String(receipt?.status)}): there is no registry to read; verify it offline, or fetch it again once anchored\n`);
    throw new ExitCode(1, '');
  }
  const chain = new SuiChain({ network: anchor.network as Network, rpcUrl, packageId: anchor.package_id, registryId: anchor.registry_id });
  let onChain: Awaited<ReturnType<SuiChain['readEpoch']>>;
  try {
    onChain = await chain.readEpoch(receipt.epoch);
  } catch (err) {
    throw new ExitCode(2, `cannot read registry ${anchor.registry_id} through ${rpcUrl}: ${(err as Error).message}; check --rpc and the network (${anchor.network})`);
  }
  if (!onChain) {
    process.stdout.write(`invalid: epoch ${receipt.epoch} is not anchored in registry ${anchor.registry_id} on ${anchor.network}\n`);
    throw new ExitCode(1, '');
  }
  const result = verifyReceipt(receipt, { root: onChain.root, size: onChain.size });
  let verdict: boolean | undefined;
  if (onchain && result.ok) {
    try {
      verdict = await chain.verifyEventOnChain(receipt);
    } catch (err) {
      throw new ExitCode(2, `cannot run registry::verify_event through ${rpcUrl}: ${(err as Error).message}`);
    }
  }
  report(result, asJson, ` (root and size read from registry ${anchor.registry_id} on ${anchor.network})`, verdict === undefined ? {} : { verify_event: verdict });
  if (verdict !== undefined && !asJson) process.stdout.write(`on chain: registry::verify_event returned ${verdict}\n`);
  if (verdict === false) throw new ExitCode(1, '');
}
