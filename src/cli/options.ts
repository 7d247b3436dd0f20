// Option parsers shared by the subcommands: each names the flag and the rule it broke.
import { InvalidArgumentError, Option } from 'commander';

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
