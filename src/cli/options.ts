// Option parsers shared by the subcommands: each names the flag and the rule it broke.
import { InvalidArgumentError, Option } from 'commander';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { describeLocation, isPostgresUrl, openLedger, type Ledger, type OpenLedgerOptions } from '../ledger/index.ts';

export const DEFAULT_DB = './data/receipts.db';

/** --db: a SQLite file, or a postgres:// URL (RECEIPTS_DATABASE_URL, then RECEIPTS_DB). */
export const dbOption = () =>
  new Option('--db <file|url>', 'ledger: a SQLite file, or a postgres://user@host/db URL for PostgreSQL')
    .env('RECEIPTS_DATABASE_URL')
    .default(process.env.RECEIPTS_DB ?? DEFAULT_DB);

/**
 * Opens the ledger a command works on, runs fn, and closes it whatever happens. A missing SQLite
 * file is refused (a typo in --db must not quietly create an empty ledger), unless the command
 * creates ledgers: then it says that it did, and a refused command leaves no empty file behind.
 */
export async function withLedger<T>(location: string, fn: (ledger: Ledger) => Promise<T>, mode: { create?: boolean } & OpenLedgerOptions = {}): Promise<T> {
  const { create = false, ...options } = mode;
  const missing = !isPostgresUrl(location) && location !== ':memory:' && !existsSync(location);
  if (missing && !create) {
    throw new Error(
      `no ledger at ${location} (${resolve(location)}): check --db or RECEIPTS_DB; ` +
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
  if (missing) process.stderr.write(`created a new ledger at ${describeLocation(location)} (${resolve(location)})\n`);
  return result;
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
  return [...(previous ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}
