// `receipts verify FILE|-`: exit 0 valid, 1 invalid, 2 unreadable input.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { verifyReceipt } from '../verify/index.ts';
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
    .option('--json', 'print the verification result as JSON')
    .action((file: string, opts: { root?: string; size?: number; json?: boolean }) => {
      if ((opts.root === undefined) !== (opts.size === undefined)) {
        throw new ExitCode(2, '--root and --size go together: a root proves nothing without the size of its tree');
      }
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
      const result = verifyReceipt(json, { ...(opts.root && { root: opts.root }), ...(opts.size && { size: opts.size }) });
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else if (result.ok) {
        process.stdout.write(`valid: epoch ${result.epoch}, leaf ${result.leaf_index} of ${result.tree_size}, root ${result.root}${result.trusted_root ? ' (trusted root)' : " (the receipt's own root)"}\n`);
      } else process.stdout.write(`invalid: ${result.reason}\n`);
      if (!result.ok) throw new ExitCode(1, '');
    });
}
