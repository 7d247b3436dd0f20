// Option parsers shared by the subcommands: each names the flag and the rule it broke.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError } from './errors.ts';
import { describeLocation, isPostgresUrl, openLedger, urlHasPassword, type Ledger, type OpenLedgerOptions } from '../ledger/index.ts';

export const DEFAULT_DB = './data/receipts.db';

/** Where a database password goes instead of the command line: said in --help and in the warning. */
export const PASSWORD_ADVICE =
  'put the password in PGPASSWORD or ~/.pgpass (the URL without one), or the whole URL in RECEIPTS_DATABASE_URL; never in an argument, which ps shows to every user of the machine';

/**
 * --db: a SQLite file, or a postgres:// URL (RECEIPTS_DATABASE_URL, then RECEIPTS_DB). A URL
 * without a password lets pg take it from PGPASSWORD or ~/.pgpass (PGPASSFILE).
 */
export const dbOption = () => {
  const fallback = process.env.RECEIPTS_DB ?? DEFAULT_DB;
  return new Option('--db <file|url>', `ledger: a SQLite file, or a postgres://user@host/db URL for PostgreSQL; ${PASSWORD_ADVICE}`)
    .env('RECEIPTS_DATABASE_URL')
    .default(fallback, describeLocation(fallback)); // --help never prints a password from RECEIPTS_DB
};

/** An error's message for the user: pg's for a password it was not given says what to set. */
export function describeFailure(message: string): string {
  if (/client password must be a string/.test(message))
    return `the database asks for a password and none was given: ${PASSWORD_ADVICE} (pg: ${message})`;
  return message;
}

/**
 * Warns on stderr (without the password) when an option given as an argument is a database URL
 * with a password: any user on the machine reads it in ps. A warning, not a refusal: scripts that
 * do it keep working while they are changed. Values from the environment are not in argv.
 */
export function warnPasswordInArgv(cmd: Command): void {
  for (const option of cmd.options) {
    const name = option.attributeName();
    const value: unknown = cmd.getOptionValue(name);
    if (cmd.getOptionValueSource(name) === 'cli' && typeof value === 'string' && urlHasPassword(value)) {
      process.stderr.write(`warning: the ${option.long} URL carries a password on the command line: ${PASSWORD_ADVICE}\n`);
    }
  }
}

/**
 * Opens the ledger a command works on, runs fn, and closes it whatever happens. A missing SQLite
 * file is refused (a typo in --db must not quietly create an empty ledger), unless the command
 * creates ledgers: then it says that it did, and a refused command leaves no empty file behind.
 */
export async function withLedger<T>(
  location: string,
  fn: (ledger: Ledger) => Promise<T>,
  mode: { create?: boolean } & OpenLedgerOptions = {},
): Promise<T> {
  const { create = false, ...options } = mode;
  const missing = !isPostgresUrl(location) && location !== ':memory:' && !existsSync(location);
  if (missing && !create) {
    throw new CliError(
      'no_ledger',
      `no ledger at ${shown(location)}: check --db or RECEIPTS_DB; ` +
        '`receipts serve --db FILE` or `receipts keys create --db FILE …` creates a new one',
    );
  }
  const ledger = await openLedger(location, options);
  let result: T;
  try {
    result = await fn(ledger);
  } catch (err) {
    await ledger.close();
    if (missing) for (const f of [location, `${location}-wal`, `${location}-shm`]) rmSync(f, { force: true });
    throw err;
  }
  await ledger.close();
  if (missing) process.stderr.write(`created a new ledger at ${shown(location)}\n`);
  return result;
}

/** A SQLite file with its absolute path; anything URL-like without its credentials (and never resolved as a path). */
function shown(location: string): string {
  const described = describeLocation(location);
  return described === location ? `${location} (${resolve(location)})` : described;
}

export function integerIn(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return Number(value);
  };
}

export function listOf(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}
