// Which failures mean "the ledger cannot be reached or cannot write right now" (retry later, an
// HTTP 503) rather than a bad request or a bug (500). Pure: it reads error codes and messages,
// so callers above the ledger need not know which database is behind it.

/** Thrown by the ledger itself when it gives up waiting on the database. */
export class LedgerUnavailableError extends Error {
  constructor(detail: string) {
    super(`the ledger is unavailable: ${detail}`);
    this.name = 'LedgerUnavailableError';
  }
}

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Whether a PostgreSQL client error means the connection is gone or the server is not accepting
 * work: SQLSTATE class 08 (connection exception), 57P01–57P03 (shutdown, crash, starting up),
 * 57P05 and 25P03 (our own session deadlines ended it), 53300 (too many connections), the
 * socket's own errors (a Unix socket's missing file included), and the messages node-postgres uses for a connection that died.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || /^57P0[1235]$/.test(code) || code === '25P03' || code === '53300') return true;
    if (SOCKET_CODES.has(code)) return true;
    // Over a Unix socket (host=/var/run/postgresql), a stopped server has no socket file: connect
    // fails with ENOENT. Only a connect's: a missing file elsewhere is not the database being away.
    if (code === 'ENOENT' && (err as { syscall?: unknown }).syscall === 'connect') return true;
  }
  return /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection unexpectedly|Cannot use a pool after calling end)/i.test(
    err.message,
  );
}

/** SQLite: another process holds the write lock past busy_timeout, the disk is full, or I/O failed. */
function isSqliteUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|FULL|IOERR)/.test(code);
}

/** Whether err means the ledger is unavailable for now: the same request may succeed later. */
export function isLedgerUnavailable(err: unknown): boolean {
  return err instanceof LedgerUnavailableError || isConnectionError(err) || isSqliteUnavailable(err);
}
