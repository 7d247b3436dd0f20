// The checkpoint module's one error, modelled on sigstore-js packages/verify (`VerificationError`
// with a closed `code` union): programs switch on `code` (stable), people read `message` (may
// change). Pure and browser-safe.

/**
 * - `bad_key_name`: a key name that signed-note forbids (empty, a Unicode space or `+`, too long);
 * - `malformed_key`: a verifier or signer key that is not `name+hex8+base64(type ‖ key)` (or
 *   `PRIVATE+KEY+…`), or whose key material has the wrong length;
 * - `unsupported_key_type`: a key whose signature type byte is not one this module handles;
 * - `key_id_mismatch`: a key whose hex8 key ID is not the one its name and key give;
 * - `malformed_note`: not a signed note (control characters, invalid UTF-8, no blank line before
 *   the signatures, a bad signature line, more than MAX_SIGNATURES signatures);
 * - `note_too_large`: a note over MAX_NOTE_BYTES;
 * - `ambiguous_key`: two verifiers given with the same name and key ID, and a line uses them;
 * - `invalid_signature`: a signature by a known key does not verify (the whole note is refused);
 * - `no_known_signature`: no signature by a known key: the note's text must not be trusted;
 * - `malformed_checkpoint`: a note text that is not a C2SP tlog-checkpoint body;
 * - `missing_log_signature`: a checkpoint the log key did not sign (witness signatures alone do
 *   not make it the log's);
 * - `origin_mismatch`: a checkpoint whose origin is not the log key's name;
 * - `too_few_cosignatures`: fewer distinct witnesses cosigned than the verifier requires;
 * - `malformed_cosignature`: a cosignature that is not timestamp ‖ 64-byte signature, or whose
 *   timestamp is past 2^63 − 1;
 * - `malformed_epoch_header`: epoch header fields out of range, or bytes that are not one header.
 */
export const CHECKPOINT_CODES = [
  'bad_key_name',
  'malformed_key',
  'unsupported_key_type',
  'key_id_mismatch',
  'malformed_note',
  'note_too_large',
  'ambiguous_key',
  'invalid_signature',
  'no_known_signature',
  'malformed_checkpoint',
  'missing_log_signature',
  'origin_mismatch',
  'too_few_cosignatures',
  'malformed_cosignature',
  'malformed_epoch_header',
] as const;
export type CheckpointCode = (typeof CHECKPOINT_CODES)[number];

export class CheckpointError extends Error {
  readonly code: CheckpointCode;
  constructor(code: CheckpointCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CheckpointError';
    this.code = code;
  }
}

export function isCheckpointError(err: unknown): err is CheckpointError {
  return err instanceof CheckpointError;
}
