// `receipts verify FILE|-`: exit 0 valid, 1 invalid, 2 unreadable (not JSON, not a receipt, a
// malformed receipt, or a usage error), 3 not verifiable yet (pending, or not anchored for --rpc).
import { type Command, InvalidArgumentError, Option } from 'commander';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isHex64AnyCase } from '../encoding/hex.ts';
import { verifyReceipt, type VerifyResult } from '../verify/index.ts';
import { SuiChain } from '../chain/sui.ts';
import type { Network } from '../chain/config.ts';
import type { Receipt } from '../receipt/format.ts';
import { CliError } from './errors.ts';
import { integerIn } from './options.ts';

// Exit codes (also in --help and the README): 0 valid; the others are CLI_EXIT's for the CliError
// codes used here: invalid 1, usage/unreadable/chain_unreachable 2, not_yet 3.

/** A genuine receipt is a few KiB (64 proof hashes, bounded event fields): anything far larger is refused unread. */
export const MAX_RECEIPT_BYTES = 1024 * 1024;

export function addVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('verify a receipt (the JSON of GET /v1/events/:id/receipt), offline or against a trusted root')
    .argument('<file>', 'receipt file, or - for standard input')
    .addOption(
      new Option('--root <hex>', 'trusted epoch root (64 hex characters), e.g. read from the chain').argParser((v) => {
        if (!isHex64AnyCase(v)) throw new InvalidArgumentError('must be 64 hex characters');
        return v;
      }),
    )
    .addOption(new Option('--size <n>', 'trusted tree size of the epoch (with --root)').argParser(integerIn(1, Number.MAX_SAFE_INTEGER)))
    .option(
      '--rpc <url>',
      "also read the epoch's root and size from the Sui registry named in the receipt's anchor, through this full node",
    )
    .option('--onchain', 'with --rpc: also run registry::verify_event on chain (simulated, nothing executed) and report its answer')
    .option('--json', 'print the verification result as JSON')
    .addHelpText(
      'after',
      '\nExit codes:\n  0  valid\n  1  invalid: the leaf, path or root does not check out\n' +
        '  2  unreadable: not JSON, not a receipt, a malformed receipt (unknown fields, contradicting status), larger than 1 MiB, or bad flags\n' +
        '  3  not verifiable yet: the receipt is pending (its epoch is not sealed); with --rpc, also sealed but not anchored yet\n',
    )
    .action(async (file: string, opts: { root?: string; size?: number; rpc?: string; onchain?: boolean; json?: boolean }) => {
      if ((opts.root === undefined) !== (opts.size === undefined)) {
        throw new CliError('usage', '--root and --size go together: a root proves nothing without the size of its tree');
      }
      if (opts.onchain && !opts.rpc) throw new CliError('usage', '--onchain needs --rpc URL (the full node to ask)');
      if (opts.rpc && opts.root) throw new CliError('usage', '--rpc reads the trusted root from the chain: leave out --root and --size');
      const where = file === '-' ? 'standard input' : file;
      const text = readBounded(file, where);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new CliError('unreadable', `unreadable: ${where} is not JSON: ${(err as Error).message}`, { cause: err });
      }
      if (opts.rpc) return verifyOnChain(json, where, opts.rpc, opts.onchain ?? false, opts.json ?? false);
      const result = verifyReceipt(json, { ...(opts.root && { root: opts.root }), ...(opts.size && { size: opts.size }) });
      report(result, where, opts.json ?? false, result.ok && result.trusted_root ? ' (trusted root)' : " (the receipt's own root)");
    });
}

/** Reads the file or standard input, refusing anything over MAX_RECEIPT_BYTES before reading it all. */
function readBounded(file: string, where: string): string {
  let fd: number | undefined;
  try {
    fd = file === '-' ? 0 : openSync(file, 'r');
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new Error('it is a directory');
    if (stat.isFile() && stat.size > MAX_RECEIPT_BYTES) throw new TooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue; // a non-blocking stdin pipe: wait for data
        if ((err as NodeJS.ErrnoException).code === 'EOF') break;
        throw err;
      }
      if (n === 0) break;
      total += n;
      if (total > MAX_RECEIPT_BYTES) throw new TooLarge();
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof TooLarge) {
      throw new CliError(
        'unreadable',
        `unreadable: ${where} is larger than ${MAX_RECEIPT_BYTES / 1024} KiB; a receipt is a few KiB, so this is not one`,
      );
    }
    throw new CliError('unreadable', `unreadable: cannot read ${where}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined && fd !== 0) closeSync(fd);
  }
}

class TooLarge extends Error {}

/** Prints the outcome and throws the exit code of a failure: 1 invalid, 2 malformed, 3 pending. */
function report(result: VerifyResult, where: string, json: boolean, source: string, extra: Record<string, unknown> = {}): void {
  if (json) process.stdout.write(`${JSON.stringify({ ...result, ...extra })}\n`);
  if (result.ok) {
    if (!json)
      process.stdout.write(
        `valid: epoch ${result.epoch}, leaf ${result.leaf_index} of ${result.tree_size}, root ${result.root}${source}\n`,
      );
    return;
  }
  if (result.kind === 'malformed') {
    throw new CliError('unreadable', `unreadable: ${where} is not a well-formed receipt v1 (malformed): ${result.reason}`);
  }
  if (result.kind === 'pending') {
    if (!json) process.stdout.write(`not verifiable yet: ${result.reason} [${result.code}]\n`);
    throw new CliError('not_yet', '');
  }
  if (!json) process.stdout.write(`invalid: ${result.reason} [${result.code}]\n`);
  throw new CliError('invalid', '');
}

/** Checks the receipt against the root and size the registry holds, and optionally verify_event. */
async function verifyOnChain(json: unknown, where: string, rpcUrl: string, onchain: boolean, asJson: boolean): Promise<void> {
  // The shape first, offline: a malformed or pending receipt has nothing to ask the chain about.
  const offline = verifyReceipt(json);
  if (!offline.ok && offline.kind !== 'invalid') return report(offline, where, asJson, '');
  const receipt = json as Receipt & { epoch: number };
  const anchor = receipt.anchor;
  if (!anchor) {
    const reason = `the receipt is ${receipt.status ?? 'sealed'} but not anchored yet: there is no registry to read; verify it offline, or fetch it again once anchored`;
    if (asJson)
      process.stdout.write(`${JSON.stringify({ ok: false, kind: 'pending', code: 'not_anchored', reason, steps: offline.steps })}\n`);
    else process.stdout.write(`not verifiable yet: ${reason}\n`);
    throw new CliError('not_yet', '');
  }
  const chain = new SuiChain({ network: anchor.network as Network, rpcUrl, packageId: anchor.package_id, registryId: anchor.registry_id });
  let onChain: Awaited<ReturnType<SuiChain['readEpoch']>>;
  try {
    onChain = await chain.readEpoch(receipt.epoch);
  } catch (err) {
    throw new CliError(
      'chain_unreachable',
      `cannot read registry ${anchor.registry_id} through ${rpcUrl}: ${(err as Error).message}; check --rpc and the network (${anchor.network})`,
      { cause: err },
    );
  }
  if (!onChain) {
    const reason = `epoch ${receipt.epoch} is not anchored in registry ${anchor.registry_id} on ${anchor.network}`;
    if (asJson)
      process.stdout.write(`${JSON.stringify({ ok: false, kind: 'invalid', code: 'not_anchored', reason, steps: offline.steps })}\n`);
    else process.stdout.write(`invalid: ${reason} [not_anchored]\n`);
    throw new CliError('invalid', '');
  }
  const result = verifyReceipt(receipt, { root: onChain.root, size: onChain.size });
  let verdict: boolean | undefined;
  if (onchain && result.ok) {
    try {
      verdict = await chain.verifyEventOnChain(receipt);
    } catch (err) {
      throw new CliError('chain_unreachable', `cannot run registry::verify_event through ${rpcUrl}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  report(
    result,
    where,
    asJson,
    ` (root and size read from registry ${anchor.registry_id} on ${anchor.network})`,
    verdict === undefined ? {} : { verify_event: verdict },
  );
  if (verdict !== undefined && !asJson) process.stdout.write(`on chain: registry::verify_event returned ${verdict}\n`);
  if (verdict === false) throw new CliError('invalid', '');
}
