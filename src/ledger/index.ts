// The ledger: the only code that knows there is a database. Callers get typed async stores
// (types.ts) from one of two engines, chosen by the location: a file path is SQLite, a
// postgres:// URL is PostgreSQL.
import type { LedgerReader } from '../fsck/reader.ts';
import type { Ledger } from './types.ts';
import { SqliteLedger, type SqliteLedgerOptions } from './sqlite/index.ts';
import { isPostgresUrl } from './location.ts';

export interface OpenLedgerOptions extends SqliteLedgerOptions {
  /** PostgreSQL: this instance's name in the leadership table (default: host:pid). */
  instanceId?: string;
}

export { describeLocation, isPostgresUrl, redactUrlsIn, urlHasPassword } from './location.ts';

export async function openLedger(location: string, options: OpenLedgerOptions = {}): Promise<Ledger> {
  if (isPostgresUrl(location)) {
    const { openPostgresLedger } = await import('./postgres/index.ts');
    return openPostgresLedger(location, {
      ...(options.groupCommit && { groupCommit: options.groupCommit }),
      ...(options.instanceId && { instanceId: options.instanceId }),
    });
  }
  return new SqliteLedger(location, options);
}

/**
 * A read-only view of the ledger at `location` for `receipts fsck` and backups: one snapshot,
 * without this build's schema migrations, and no ledger opened (no leadership, no pool).
 */
export async function openReader(location: string): Promise<LedgerReader> {
  if (isPostgresUrl(location)) {
    const { openPostgresReader } = await import('./postgres/readers.ts');
    return openPostgresReader(location);
  }
  const { openSqliteReader } = await import('./sqlite/readers.ts');
  return openSqliteReader(location);
}

export { SqliteLedger } from './sqlite/index.ts';
export { LedgerUnavailableError, isLedgerUnavailable } from './errors.ts';
export * from './types.ts';
export { DEFAULT_RIGHTS, parseRights, RIGHTS, type Right } from './api-keys.ts';
export { EpochLogError, epochLogTree, logSigner, nextCheckpoint, rootAt, type LogSigner, type StoredCheckpoint } from './epoch-log.ts';
export { withCosignatures } from './cosignatures.ts';
export {
  AGGREGATIONS,
  type Aggregation,
  checkMeterActions,
  checkMeterName,
  MAX_METER_ACTIONS,
  MAX_METER_ENTRIES,
  METER_GROUP_BY,
  METER_NAME_PATTERN,
  MeterError,
  type MeterStore,
  type MeterUsageQuery,
  type MeterUsageResult,
  type MeterVersion,
} from './meters.ts';
export {
  alertKey,
  type AlertToEnqueue,
  type DeliveryAttempt,
  type DueMessage,
  type EnqueueResult,
  MAX_WEBHOOK_NAMESPACES,
  MAX_WEBHOOK_URL_LENGTH,
  type Webhook,
  WEBHOOK_ID_PATTERN,
  WEBHOOK_RETRY_WINDOW_MS,
  WebhookError,
  type WebhookMessage,
  type WebhookStore,
} from './webhooks.ts';
export {
  checkLimitId,
  checkLimitInput,
  LIMIT_ID_PATTERN,
  LimitError,
  type LimitInput,
  type LimitStore,
  type LimitVersion,
  MAX_SOFT_THRESHOLDS,
  MEASURES,
  type Measure,
} from './limits.ts';
