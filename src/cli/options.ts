// Option parsers shared by the subcommands: each names the flag and the rule it broke.
import { InvalidArgumentError, Option } from 'commander';
import { openLedger, type Ledger, type OpenLedgerOptions } from '../ledger/index.ts';

export const DEFAULT_DB = './data/receipts.db';

/** --db: a SQLite file, or a postgres:// URL (RECEIPTS_DATABASE_URL, then RECEIPTS_DB). */
export const dbOption = () =>
  new Option('--db <file|url>', 'ledger: a SQLite file, or a postgres://user@host/db URL for PostgreSQL')
    .env('RECEIPTS_DATABASE_URL')
    .default(process.env.RECEIPTS_DB ?? DEFAULT_DB);

/** Opens the ledger, runs fn, and closes it whatever happens. */
export async function withLedger<T>(location: string, fn: (ledger: Ledger) => Promise<T>, options: OpenLedgerOptions = {}): Promise<T> {
  const ledger = await openLedger(location, options);
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
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
