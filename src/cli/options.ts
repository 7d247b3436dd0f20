// Option parsers shared by the subcommands: each names the flag and the rule it broke.
import { InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { openDb, type Db } from '../ledger/db.ts';

export const DEFAULT_DB = './data/receipts.db';

export const dbOption = () =>
  new Option('--db <file>', 'SQLite ledger file').env('RECEIPTS_DB').default(DEFAULT_DB);

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

/**
 * Opens the ledger a command reads. A missing file is refused (a typo in --db must not quietly
 * create an empty ledger), unless the command creates ledgers: then it says that it did.
 */
export function openLedger(file: string, mode: { create: boolean } = { create: false }): { db: Db; created: boolean } {
  const missing = file !== ':memory:' && !existsSync(file);
  if (missing && !mode.create) {
    throw new Error(
      `no ledger at ${file} (${resolve(file)}): check --db or RECEIPTS_DB; ` +
        '`receipts serve --db FILE` or `receipts keys create --db FILE …` creates a new one',
    );
  }
  return { db: openDb(file), created: missing };
}
