#!/usr/bin/env -S node --max-semi-space-size=4 --max-old-space-size=256
// V8 flags (also in package.json's start/receipts scripts and scripts/lib/servers.ts): under
// sustained ingest V8 otherwise reserves a 170 MB heap for 50 MB in use; with them the server
// peaks at ~240 MB instead of ~370 MB for the same throughput (bench:ingest).
// `receipts`: the one executable. Usage errors exit 2 with the usage; failures exit 1.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { addAuditCommand } from './audit.ts';
import { addBackupCommand } from './backup.ts';
import { addFsckCommand } from './fsck.ts';
import { addKeysCommands } from './keys.ts';
import { addLimitsCommands } from './limits.ts';
import { addMigrateCommand } from './migrate.ts';
import { redactUrlsIn } from '../ledger/location.ts';
import { toCliError, type CliError } from './errors.ts';
import { warnPasswordInArgv } from './options.ts';
import { addRollupsCommands } from './rollups.ts';
import { addServeCommand } from './serve.ts';
import { addSealCommand } from './seal.ts';
import { addSigningKeyCommands } from './signing-key.ts';
import { addVerifyCommand } from './verify.ts';
import { addWitnessCommands } from './witness.ts';
import { addWebhooksCommands } from './webhooks.ts';

/** The package's version (package.json sits two levels up from src/cli/ and from dist/cli/). */
export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function buildProgram(): Command {
  const program = new Command('receipts')
    .description('sui-receipts: usage events in, Merkle receipts out, epoch roots anchored on Sui')
    .version(VERSION, '-V, --version', 'print the version of sui-receipts')
    .showHelpAfterError()
    .exitOverride()
    // Every subcommand: a database password given as an argument is visible in ps.
    .hook('preAction', (_program, command) => warnPasswordInArgv(command));
  addServeCommand(program);
  addKeysCommands(program);
  addLimitsCommands(program);
  addSealCommand(program);
  addVerifyCommand(program);
  addAuditCommand(program);
  addMigrateCommand(program);
  addFsckCommand(program);
  addBackupCommand(program);
  addRollupsCommands(program);
  addSigningKeyCommands(program);
  addWitnessCommands(program);
  addWebhooksCommands(program);
  return program;
}

/**
 * Runs the command line; resolves when the command is done (serve: once it listens). Every
 * failure is a CliError (src/cli/errors.ts), so a program can switch on its `code`.
 */
export async function run(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
  } catch (err) {
    const failure = toCliError(err);
    if (failure) throw failure;
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    await run(argv);
    return 0;
  } catch (err) {
    const e = err as CliError;
    if (e.message) process.stderr.write(`error: ${redactUrlsIn(e.message)}\n`);
    return e.exitCode;
  }
}

// Serve keeps the process alive on its own; other commands exit with their code.
// A failure, already reported, ends the process at once: a half-open database connection must not
// keep it alive (pg leaves one open when the server waits for a password it was not given, until
// the server's authentication_timeout, a minute by default). stdout and stderr write synchronously here.
const code = await main(process.argv.slice(2));
if (code !== 0) process.exit(code);
if (!process.argv.includes('serve')) process.exitCode = code;
