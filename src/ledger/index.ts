// The ledger: the only code that knows there is a database. Callers get typed async stores
// (types.ts) from one of two engines, chosen by the location: a file path is SQLite, a
// postgres:// URL is PostgreSQL.
import type { Ledger } from './types.ts';
import { SqliteLedger, type SqliteLedgerOptions } from './sqlite/index.ts';

export interface OpenLedgerOptions extends SqliteLedgerOptions {
  /** PostgreSQL: this instance's name in the leadership table (default: host:pid). */
  instanceId?: string;
}

/** Whether a --db value names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(location);
}

/** A location for logs and messages: a URL loses its password. */
export function describeLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const url = new URL(location);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export async function openLedger(location: string, options: OpenLedgerOptions = {}): Promise<Ledger> {
  if (isPostgresUrl(location)) {
    const { openPostgresLedger } = await import('./postgres/index.ts');
    return openPostgresLedger(location, { ...(options.groupCommit && { groupCommit: options.groupCommit }), ...(options.instanceId && { instanceId: options.instanceId }) });
  }
  return new SqliteLedger(location, options);
}

export { SqliteLedger } from './sqlite/index.ts';
export { LedgerUnavailableError, isLedgerUnavailable } from './errors.ts';
export * from './types.ts';
