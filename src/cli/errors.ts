// The CLI's one error: a stable `code` from a closed list for programs to switch on, the exit
// code that goes with it, and a sentence for people (which may change). Modelled on sigstore-js
// packages/verify (`VerificationError` with a `code` union). Commander's own usage errors (an
// unknown flag, a value its parser refused) stay CommanderErrors: main() maps them to exit 2.
import { CommanderError } from 'commander';
import { redactUrlsIn } from '../ledger/location.ts';
import type { Holder } from './lock.ts';
import { describeFailure } from './options.ts';

/**
 * Each code and the exit status it ends the process with:
 * - `usage` (2): flags that do not go together, or a value no parser could check alone;
 * - `unreadable` (2): `verify`'s input is not JSON, not a receipt v1, malformed, too large or unreadable;
 * - `chain_unreachable` (2): `verify --rpc` could not read the registry or run verify_event;
 * - `invalid` (1): `verify`: the receipt does not check out (leaf, path, root, or not on chain);
 * - `not_yet` (3): `verify`: pending, or sealed but not anchored (for --rpc);
 * - `bad_config` (1): a configuration the command cannot run with (classification, --actions, Sui config);
 * - `no_ledger` (1): --db names no SQLite ledger and the command does not create one;
 * - `ledger_busy` (1): another process holds the ledger (a serve, or a migrate copying it);
 * - `not_leader` (1): `seal`: another instance leads this PostgreSQL ledger;
 * - `not_found` (1): `keys revoke`: no active key with that id;
 * - `listen_failed` (1): `serve` could not listen on --host/--port;
 * - `migrate_refused` (1): `migrate` refused or failed; nothing was copied;
 * - `failed` (1): anything else (a database or I/O error); the message is the cause's.
 */
export const CLI_EXIT = {
  usage: 2,
  unreadable: 2,
  chain_unreachable: 2,
  invalid: 1,
  not_yet: 3,
  bad_config: 1,
  no_ledger: 1,
  ledger_busy: 1,
  not_leader: 1,
  not_found: 1,
  listen_failed: 1,
  migrate_refused: 1,
  failed: 1,
} as const;
export type CliErrorCode = keyof typeof CLI_EXIT;
export const CLI_ERROR_CODES = Object.keys(CLI_EXIT) as CliErrorCode[];

export class CliError extends Error {
  readonly code: CliErrorCode;
  /** The process exit status for this code (CLI_EXIT). */
  readonly exitCode: number;
  /** For `ledger_busy`: who holds the ledger, when its lock file says. */
  readonly holder: Holder | undefined;
  /**
   * @param message what went wrong and what to do; '' when the command already printed its
   *   verdict (verify's `invalid`, `not_yet`) and only the exit status is left to give.
   */
  constructor(code: CliErrorCode, message: string, options: { cause?: unknown; holder?: Holder } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.code = code;
    this.exitCode = CLI_EXIT[code];
    this.holder = options.holder;
  }
}

export function isCliError(err: unknown): err is CliError {
  return err instanceof CliError;
}

/** Commander's exits that are not failures: --help, --version. */
const NOT_FAILURES = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/**
 * What a command threw, as a CliError; null for --help and --version. Commander's usage errors
 * are `usage` with no message (commander printed it, with the usage); anything unforeseen is
 * `failed`, with the original as `cause` and its message, any URL's credentials hidden, as the
 * message (a driver's message may quote the connection string).
 */
export function toCliError(err: unknown): CliError | null {
  if (err instanceof CliError) return err;
  if (err instanceof CommanderError) return NOT_FAILURES.has(err.code) ? null : new CliError('usage', '', { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new CliError('failed', describeFailure(redactUrlsIn(message)), { cause: err });
}
