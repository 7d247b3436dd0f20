// What both engines share, so their behaviour cannot drift: numbered SQL migrations, the
// duplicate-or-conflict rule of idempotent writes, and exact unit sums.
import { readdirSync, readFileSync } from 'node:fs';
import type { NormalizedEvent } from '../event/validate.ts';
import type { Units } from './types.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The engine's numbered migrations (`NNN_name.sql`), in order. */
export function loadMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: readFileSync(dir + f, 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

export class SchemaTooNewError extends Error {
  constructor(location: string, found: number, known: number) {
    super(
      `database ${location} has schema version ${found}, newer than this build of sui-receipts knows (${known}). ` +
        'Upgrade sui-receipts, or point --db at another ledger.',
    );
    this.name = 'SchemaTooNewError';
  }
}

/** A sum of units: a number while exact in JSON (≤ 2^53−1), a decimal string beyond. */
export function exactUnits(n: bigint): Units {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}
