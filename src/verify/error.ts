// The verifier's one error, modelled on sigstore-js packages/verify (`VerificationError` with a
// closed `code` union): programs switch on `code` (stable), people read `message` (may change).
// verifyReceipt returns the same code in its result and never throws; assertReceipt throws this.
// Pure and browser-safe.

/**
 * Why a receipt did not verify:
 * - `malformed`: not a receipt v1 (not an object, a field missing, unknown or out of bounds,
 *   labels that contradict each other such as `status: "anchored"` with `anchor: null`);
 * - `pending`: a well-formed receipt whose epoch is not sealed (or, checked against the chain,
 *   not anchored) yet: nothing to verify, fetch it again later;
 * - `invalid`: a well-formed receipt whose leaf, path or root does not check out.
 */
export type VerifyFailure = 'malformed' | 'pending' | 'invalid';

/**
 * The stable code of a failure, for programs to switch on (the reason is a sentence for people):
 * - `malformed`: not a receipt v1 (kind `malformed`);
 * - `not_sealed`: its epoch is not sealed yet (kind `pending`);
 * - `leaf_mismatch`: the event fields do not hash to the leaf hash;
 * - `index_out_of_range`: the leaf index is not below the tree size;
 * - `path_length`: the audit path has too many or too few hashes for the index and size;
 * - `size_mismatch`: the receipt's tree size is not the trusted size (or that is not a size);
 * - `root_mismatch`: the path leads to another root than the receipt's or the trusted one;
 * - `not_anchored`: checked against the chain (`receipts verify --rpc`): the receipt has no anchor
 *   yet (kind `pending`), or the registry holds no root for its epoch (kind `invalid`);
 * - `correction_mismatch`: a correction (receipt v2) does not correct the receipt given as the one
 *   it corrects (`corrects` is another leaf hash, its namespace or time changed, a void changed a
 *   field, or the corrected version is a void);
 * - `correction_target_missing` (netTotals): a correction in the set corrects a leaf hash no
 *   receipt of the set has, so the set cannot say what it nets out;
 * - `two_heads` (netTotals): two corrections in the set replace the same version, so the chain has
 *   two heads and its net value is undefined;
 * - `duplicate_event` (netTotals): the same leaf is in the set at two places of the log.
 */
export const VERIFY_CODES = [
  'malformed',
  'not_sealed',
  'leaf_mismatch',
  'index_out_of_range',
  'path_length',
  'size_mismatch',
  'root_mismatch',
  'not_anchored',
  'correction_mismatch',
  'correction_target_missing',
  'two_heads',
  'duplicate_event',
] as const;
export type VerifyCode = (typeof VERIFY_CODES)[number];

/** The kind each code belongs to (not_anchored's depends on why: see VERIFY_CODES). */
export function kindOf(code: VerifyCode): VerifyFailure {
  return code === 'malformed' ? 'malformed' : code === 'not_sealed' || code === 'not_anchored' ? 'pending' : 'invalid';
}

export class VerificationError extends Error {
  readonly code: VerifyCode;
  readonly kind: VerifyFailure;
  constructor(code: VerifyCode, message: string, options: { kind?: VerifyFailure; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VerificationError';
    this.code = code;
    this.kind = options.kind ?? kindOf(code);
  }
}
