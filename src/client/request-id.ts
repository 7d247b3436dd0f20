// Request ids, for the client (events recorded without one) and the middleware (requests without
// a usable x-request-id): one module, so both make ids the same way and judge incoming ones by
// the same rule. Edge-safe.
import { uuidv7 } from 'uuidv7';
import { looksLikeSecret } from '../event/redact.ts';
import { MAX_REQUEST_ID_LENGTH } from '../event/limits.ts';

/** Ids safe as a leaf field: printable ASCII without spaces, ≤ 128, and not a credential. */
const USABLE_ID = new RegExp(`^[\\x21-\\x7e]{1,${MAX_REQUEST_ID_LENGTH}}$`);

/** Whether an id given from outside (an `x-request-id` header, a `requestId` option) can be a request id. */
export function usableRequestId(id: unknown): id is string {
  return typeof id === 'string' && USABLE_ID.test(id) && !looksLikeSecret(id);
}

/** "000" … "fff": the fixed-width last three characters of generated request ids. */
const ID_SUFFIXES = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'));
let idProcess: string | undefined;
let idBlock = -1;
let idPrefix = '';
let idSeq = 4096;

/**
 * A UUIDv7 per process, then a block number (base 36) and three hex digits: unique across
 * processes and restarts, ordered in time within a process, and one string concatenation per
 * id (a UUIDv7 per event, or a counter turned into text each time, cost more than the rest of
 * a metered request).
 */
export function newRequestId(): string {
  if (idSeq === 4096) {
    idProcess ??= uuidv7();
    idPrefix = `${idProcess}-${(++idBlock).toString(36)}`;
    idSeq = 0;
  }
  return idPrefix + ID_SUFFIXES[idSeq++];
}
