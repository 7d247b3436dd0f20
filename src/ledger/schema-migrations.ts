// Numbered SQL migrations, as both engines load them, and the refusal of a schema newer than
// this build (each engine applies them its own way: sqlite/db.ts, postgres/db.ts).
import { readdirSync, readFileSync } from 'node:fs';

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
