// `receipts verify FILE|-`: exit 0 valid, 1 invalid, 2 unreadable (not JSON, not a receipt, a
// malformed receipt, or a usage error), 3 not verifiable yet (pending, or not anchored for --rpc).
// The file is a receipt, a proof bundle (GET /v1/events/:id/proof: receipt → epoch header → epoch
// log → checkpoint, signed by --log-key when given) or a page of GET /v1/usage?receipts=true.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isHex64AnyCase } from '../encoding/hex.ts';
import { verifyProofBundle, verifyReceipt, type BundleResult, type VerifyResult } from '../verify/index.ts';
import { SuiChain } from '../chain/sui.ts';
import type { Network } from '../chain/config.ts';
import type { AnyReceipt } from '../receipt/format.ts';
import { verifyFunctionOf } from '../chain/ptb.ts';
import { CliError } from './errors.ts';
import { integerIn } from './options.ts';
import { netTotals, receiptsOfPageSet } from '../verify/totals.ts';
import { VerificationError } from '../verify/error.ts';

// Exit codes (also in --help and the README): 0 valid; the others are CLI_EXIT's for the CliError
// codes used here: invalid 1, usage/unreadable/chain_unreachable 2, not_yet 3.

/** A genuine receipt is a few KiB (64 proof hashes, bounded event fields): anything far larger is refused. */
export const MAX_RECEIPT_BYTES = 1024 * 1024;
/** A usage page holds at most 1,000 receipts (about 5 MiB at their largest): larger input is refused unread. */
export const MAX_INPUT_BYTES = 8 * 1024 * 1024;

export function addVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      'verify a receipt (GET /v1/events/:id/receipt), a proof bundle (GET /v1/events/:id/proof) or a usage page (GET /v1/usage?receipts=true), offline or against a trusted root',
    )
    .argument('<file>', 'receipt, proof bundle or usage page file, or - for standard input')
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
    .option(
      '--onchain',
      'with --rpc: also run registry::verify_event (verify_correction for a correction) on chain (simulated, nothing executed) and report its answer',
    )
    .option(
      '--log-key <vkey>',
      "proof bundle: the log's verifier key (name+hex8+base64) the checkpoint must be signed by; repeat for a rotated key",
      collect,
    )
    .option('--witness <vkey>', 'proof bundle: a witness verifier key whose cosignature counts; repeatable', collect)
    .addOption(
      new Option('--min-witnesses <k>', 'proof bundle: cosignatures the checkpoint needs (default: every --witness)').argParser(
        integerIn(0, 100),
      ),
    )
    .option(
      '--totals',
      'FILE is a page set (a JSON array of receipts, a usage page, or an array of pages): verify every receipt and print the net totals per action, corrections applied',
    )
    .option('--json', 'print the verification result as JSON')
    .addHelpText(
      'after',
      '\nExit codes:\n  0  valid\n  1  invalid: the leaf, path or root does not check out\n' +
        '  2  unreadable: not JSON, not a receipt, a malformed receipt (unknown fields, contradicting status), larger than 1 MiB, or bad flags\n' +
        '  3  not verifiable yet: the receipt is pending (its epoch is not sealed); with --rpc, also sealed but not anchored yet\n' +
        'A usage page exits 1 when any receipt in it is invalid or malformed, else 3 when any is pending.\n',
    )
    .action(async (file: string, opts: VerifyFlags) => {
      if (opts.totals) return verifyTotals(file, opts);
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
      const kind = kindOfInput(json);
      if (kind !== 'receipt' && (opts.root || opts.rpc))
        throw new CliError(
          'usage',
          `--root, --size and --rpc verify one receipt; ${where} is a ${kind === 'bundle' ? 'proof bundle' : 'usage page'}`,
        );
      if (kind !== 'bundle' && (opts.logKey || opts.witness || opts.minWitnesses !== undefined))
        throw new CliError(
          'usage',
          `--log-key, --witness and --min-witnesses check a proof bundle's checkpoint; ${where} has none: fetch GET /v1/events/:id/proof (or run receipts audit)`,
        );
      if (kind === 'page') return verifyPage(json as { events: unknown[] }, where, opts.json ?? false);
      if (kind === 'bundle') return verifyBundle(json, where, opts);
      if (text.length > MAX_RECEIPT_BYTES) throw tooLarge(where, MAX_RECEIPT_BYTES);
      if (opts.rpc) return verifyOnChain(json, where, opts.rpc, opts.onchain ?? false, opts.json ?? false);
      const result = verifyReceipt(json, { ...(opts.root && { root: opts.root }), ...(opts.size && { size: opts.size }) });
      report(result, where, opts.json ?? false, result.ok && result.trusted_root ? ' (trusted root)' : " (the receipt's own root)");
    });
}

/** Reads the file or standard input, refusing anything over MAX_RECEIPT_BYTES before reading it all. */
function readBounded(file: string, where: string, max = MAX_INPUT_BYTES): string {
  let fd: number | undefined;
  try {
    fd = file === '-' ? 0 : openSync(file, 'r');
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new Error('it is a directory');
    if (stat.isFile() && stat.size > max) throw new TooLarge();
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
      if (total > max) throw new TooLarge();
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof TooLarge) throw tooLarge(where, max);
    throw new CliError('unreadable', `unreadable: cannot read ${where}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined && fd !== 0) closeSync(fd);
  }
}

class TooLarge extends Error {}

function tooLarge(where: string, max: number): CliError {
  return new CliError(
    'unreadable',
    `unreadable: ${where} is larger than ${max / 1024} KiB; a receipt is a few KiB${max > MAX_RECEIPT_BYTES ? ' and a usage page at most a few MiB' : ''}, so this is not one`,
  );
}

interface VerifyFlags {
  root?: string;
  size?: number;
  rpc?: string;
  onchain?: boolean;
  json?: boolean;
  logKey?: string[];
  witness?: string[];
  minWitnesses?: number;
  totals?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A proof bundle has receipt and epoch_header; a usage page has an events list; anything else is read as a receipt. */
function kindOfInput(json: unknown): 'receipt' | 'bundle' | 'page' {
  if (isObject(json) && 'receipt' in json && 'epoch_header' in json) return 'bundle';
  if (isObject(json) && Array.isArray(json.events) && !('version' in json)) return 'page';
  return 'receipt';
}

/** A proof bundle: receipt → epoch header → epoch log → checkpoint (signed by --log-key when given). */
function verifyBundle(json: unknown, where: string, opts: VerifyFlags): void {
  const witnesses = opts.witness ?? [];
  if (opts.minWitnesses !== undefined && opts.minWitnesses > witnesses.length)
    throw new CliError('usage', `--min-witnesses ${opts.minWitnesses} needs at least as many --witness keys (${witnesses.length} given)`);
  if (witnesses.length > 0 && !opts.logKey)
    throw new CliError('usage', '--witness counts cosignatures of a checkpoint signed by --log-key: give the log key too');
  let result: BundleResult;
  try {
    result = verifyProofBundle(json, {
      logKeys: opts.logKey ?? [],
      witnesses,
      ...(opts.minWitnesses !== undefined && { minWitnesses: opts.minWitnesses }),
    });
  } catch (err) {
    if (err instanceof TypeError)
      throw new CliError('usage', err.message.replace(/^logKeys\[\d+\]/, '--log-key').replace(/^witnesses\[\d+\]/, '--witness'));
    throw err;
  }
  if (opts.json)
    process.stdout.write(`${JSON.stringify({ ...result, checked: result.ok && result.signed_by ? 'signed' : 'bundle_only' })}\n`);
  if (result.ok) {
    if (!opts.json)
      process.stdout.write(
        result.signed_by
          ? `valid: ${result.reason}\n`
          : `consistent with the bundle only: ${result.reason}\ngive --log-key VKEY (from a source you trust) to check the checkpoint's signature\n`,
      );
    return;
  }
  if (result.code === 'server_error')
    throw new CliError('unreadable', `unreadable: ${where} is not a well-formed proof bundle: ${result.reason}`);
  if (!opts.json)
    process.stdout.write(`${result.code === 'not_sealed' ? 'not verifiable yet' : 'invalid'}: ${result.reason} [${result.code}]\n`);
  throw new CliError(result.code === 'not_sealed' ? 'not_yet' : 'invalid', '');
}

/** A page of GET /v1/usage?receipts=true: every receipt in it, each to its own root. */
function verifyPage(page: { events: unknown[] }, where: string, json: boolean): void {
  if (page.events.length > 1000)
    throw new CliError('unreadable', `unreadable: ${where} holds ${page.events.length} receipts; a usage page holds at most 1,000`);
  let valid = 0;
  let pending = 0;
  let units = 0n;
  const failures: Array<{ index: number; id: unknown; request_id: unknown; code: string; reason: string }> = [];
  for (const [index, receipt] of page.events.entries()) {
    const r = verifyReceipt(receipt);
    const e = isObject(receipt) && isObject(receipt.event) ? receipt.event : {};
    if (r.ok) {
      valid++;
      units += BigInt(e.units as number);
    } else if (r.code === 'not_sealed') pending++;
    else failures.push({ index, id: isObject(receipt) ? receipt.id : undefined, request_id: e.request_id, code: r.code, reason: r.reason });
  }
  const n = page.events.length;
  const ok = failures.length === 0 && pending === 0;
  if (json)
    process.stdout.write(
      `${JSON.stringify({ ok, receipts: n, valid, invalid: failures.length, pending, valid_units: units.toString(), failures })}\n`,
    );
  else {
    for (const f of failures)
      process.stdout.write(
        `invalid: receipt ${f.index}${f.id !== undefined ? ` (event ${String(f.id)}` : ' ('}${typeof f.request_id === 'string' ? ` ${f.request_id})` : ')'}: ${f.reason} [${f.code}]\n`,
      );
    process.stdout.write(
      `${ok ? 'valid' : failures.length > 0 ? 'invalid' : 'not verifiable yet'}: ${n} receipt${n === 1 ? '' : 's'} in the page: ${valid} valid (${units} units), ${failures.length} invalid, ${pending} pending; each checked against its own root only: receipts audit checks the roots against the signed log and the totals\n`,
    );
  }
  if (failures.length > 0) throw new CliError('invalid', '');
  if (pending > 0) throw new CliError('not_yet', '');
}

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

/** Checks the receipt against the root and size the registry holds, and optionally verify_event (verify_correction for a v2). */
async function verifyOnChain(json: unknown, where: string, rpcUrl: string, onchain: boolean, asJson: boolean): Promise<void> {
  // The shape first, offline: a malformed or pending receipt has nothing to ask the chain about.
  const offline = verifyReceipt(json);
  if (!offline.ok && offline.kind !== 'invalid') return report(offline, where, asJson, '');
  const receipt = json as AnyReceipt & { epoch: number };
  const fn = verifyFunctionOf(receipt);
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
      throw new CliError('chain_unreachable', `cannot run registry::${fn} through ${rpcUrl}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  report(
    result,
    where,
    asJson,
    ` (root and size read from registry ${anchor.registry_id} on ${anchor.network})`,
    verdict === undefined ? {} : { [fn]: verdict },
  );
  if (verdict !== undefined && !asJson) process.stdout.write(`on chain: registry::${fn} returned ${verdict}\n`);
  if (verdict === false) throw new CliError('invalid', '');
}

/** A page set is many usage pages: up to 64 MiB (some 10,000 receipts at their largest) is read. */
export const MAX_TOTALS_BYTES = 64 * 1024 * 1024;

/**
 * `--totals`: every receipt of a page set verified against its own root, then the net totals per
 * namespace and action (the head of each correction chain counts). Exit 0 totals printed; 1 a
 * receipt invalid or the set inconsistent (a correction's target missing, two heads); 2
 * unreadable; 3 totals printed but some receipts pending (counted without a proof).
 */
function verifyTotals(file: string, opts: VerifyFlags): void {
  if (opts.root || opts.size || opts.rpc || opts.onchain || opts.logKey || opts.witness || opts.minWitnesses !== undefined)
    throw new CliError(
      'usage',
      '--totals checks each receipt against its own root: leave out --root, --size, --rpc and the checkpoint flags',
    );
  const where = file === '-' ? 'standard input' : file;
  let json: unknown;
  try {
    json = JSON.parse(readBounded(file, where, MAX_TOTALS_BYTES));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError('unreadable', `unreadable: ${where} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  let totals: ReturnType<typeof netTotals>;
  try {
    totals = netTotals(receiptsOfPageSet(json), { allowPending: true });
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err;
    if (err.kind === 'malformed') throw new CliError('unreadable', `unreadable: ${where}: ${err.message}`);
    if (opts.json) process.stdout.write(`${JSON.stringify({ ok: false, code: err.code, reason: err.message })}\n`);
    else process.stdout.write(`invalid: ${err.message} [${err.code}]\n`);
    throw new CliError('invalid', '');
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ ok: totals.pending === 0, ...totals })}\n`);
  else {
    const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
    for (const g of totals.groups) process.stdout.write(`${g.namespace}\t${g.action}\t${plural(g.events, 'event')}\t${g.units} units\n`);
    process.stdout.write(
      `net: ${plural(totals.totals.events, 'event')}, ${totals.totals.units} units, from ${plural(totals.receipts, 'receipt')} ` +
        `(${plural(totals.chains, 'recorded event')}, ${totals.corrected} corrected, ${totals.voided} voided` +
        `${totals.duplicates > 0 ? `, ${plural(totals.duplicates, 'duplicate')} counted once` : ''}); ` +
        'each receipt checked against its own root only: receipts audit checks the roots against the signed log\n',
    );
    if (totals.pending > 0)
      process.stdout.write(
        `not verifiable yet: ${plural(totals.pending, 'receipt')} pending (epoch not sealed) counted without a proof; fetch the pages again after the next seal\n`,
      );
  }
  if (totals.pending > 0) throw new CliError('not_yet', '');
}
