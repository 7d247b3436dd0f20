// The client SDK's one error, like the CLI's CliError and the verifier's VerificationError
// (modelled on sigstore-js packages/verify): programs switch on `code` (a closed list, stable),
// people read `message` (may change), `cause` holds what was caught. Every throw of the client
// and every report to its onError is one of these. Edge-safe.
import { describe } from './queue.ts';

/**
 * Each code, and whether it is thrown or reported to onError:
 * - `bad_option` (thrown; close's `timeoutMs` reported): an option or argument the client cannot
 *   use (createUsageClient's options, the HTTP or jsonl sink's settings, registerSink's arguments);
 * - `unknown_sink` (thrown): `sink` names no registered sink;
 * - `unsupported_runtime` (thrown): Node older than the client (or its SQLite spool) supports;
 * - `bad_event` (reported): record() was given an object it could not read (a getter that threw);
 * - `send_failed` (reported): a send failed and is retried (network, 5xx, 429, 401, a sink that
 *   threw); the events are kept;
 * - `spool_write_failed` (reported once): the spool cannot write; events are held in memory;
 * - `spool_recovered` (reported): the spool writes again, those held in memory included;
 * - `spool_remove_failed` (reported once): answered events stay in the spool (sent again, as duplicates);
 * - `spool_unreadable` (reported): the spool could not be read at start; its events are not sent;
 * - `spool_rows_set_aside` (reported): rows of the spool that are not events were set aside at start;
 * - `close_timeout` (reported): close() gave up at its deadline; the undelivered events stay in
 *   the spool for the next client on it (nothing lost);
 * - `close_dropped` (reported): close() gave up and these events were dropped (no spool, or it
 *   could not write them); they also go to onDropped;
 * - `close_failed` (reported): closing the spool or the sink failed;
 * - `closing` (the abort reason a sink's signal gets): close() cut the send short;
 * - `no_receipts` (thrown by receipt()): the sink cannot give receipts (only the HTTP sink can);
 * - `receipt_failed` (thrown by receipt()): the service did not give the receipt;
 * - `timeout` (the memory sink's until()): fewer events than awaited arrived in time;
 * - `check_failed` (thrown by check()): the service did not answer the limit check (unreachable,
 *   timed out, or an error status); the middleware's gate then follows its fail_open/fail_closed policy.
 */
export const USAGE_CLIENT_ERROR_CODES = [
  'bad_option',
  'unknown_sink',
  'unsupported_runtime',
  'bad_event',
  'send_failed',
  'spool_write_failed',
  'spool_recovered',
  'spool_remove_failed',
  'spool_unreadable',
  'spool_rows_set_aside',
  'close_timeout',
  'close_dropped',
  'close_failed',
  'closing',
  'no_receipts',
  'receipt_failed',
  'timeout',
  'check_failed',
] as const;
export type UsageClientErrorCode = (typeof USAGE_CLIENT_ERROR_CODES)[number];

export class UsageClientError extends Error {
  readonly code: UsageClientErrorCode;
  constructor(code: UsageClientErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UsageClientError';
    this.code = code;
  }
}

/**
 * `err` as a UsageClientError: itself when it is one, else `code` with its message (the
 * original as `cause`), so a sink's or a spool's own error reaches onError with a code too.
 */
export function asClientError(code: UsageClientErrorCode, err: unknown): UsageClientError {
  if (err instanceof UsageClientError) return err;
  return new UsageClientError(code, describe(err), { cause: err });
}
