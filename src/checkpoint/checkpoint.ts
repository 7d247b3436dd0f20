// C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the note text
//   <origin>\n<size in decimal>\n<base64 root>\n[<extension line>\n…]
// parsed strictly (one text for one checkpoint), and checked as the log's signed note with
// enough witness cosignatures. Pure and browser-safe.
import { fromBase64, toBase64 } from './base64.ts';
import { CheckpointError } from './error.ts';
import { openNote, SIG_COSIGNATURE_V1, type NoteSignature, type NoteVerifier, type OpenedNote, type VerifiedSignature } from './note.ts';

export interface Checkpoint {
  origin: string;
  /** Leaves in the log (0 … 2^53 − 1 here; larger sizes are refused, no log of ours reaches them). */
  size: number;
  /** The RFC 6962 root, 32 bytes (SHA-256). */
  root: Uint8Array;
  /** Opaque extension lines (NOT RECOMMENDED by the spec; this service writes none). */
  extensions: string[];
}

const DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/;

function bad(message: string): never {
  throw new CheckpointError('malformed_checkpoint', message);
}

/** The note text of a checkpoint. The origin must be non-empty, one line; the root 32 bytes. */
export function formatCheckpoint(c: Checkpoint): string {
  if (typeof c.origin !== 'string' || c.origin === '' || c.origin.includes('\n')) bad('the origin must be one non-empty line');
  if (!Number.isSafeInteger(c.size) || c.size < 0) bad(`the size must be an integer 0 … 2^53 − 1, not ${c.size}`);
  if (!(c.root instanceof Uint8Array) || c.root.length !== 32) bad('the root must be 32 bytes');
  for (const e of c.extensions ?? [])
    if (typeof e !== 'string' || e === '' || e.includes('\n')) bad('an extension line must be one non-empty line');
  return [c.origin, String(c.size), toBase64(c.root), ...(c.extensions ?? [])].map((l) => `${l}\n`).join('');
}

/**
 * Parses a checkpoint note text: at least three non-empty lines, each ending in a newline; a size
 * in decimal without leading zeroes; a root that is the canonical base64 of 32 bytes; extension
 * lines non-empty. Anything else is `malformed_checkpoint`, naming the line and the rule.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string') bad('a checkpoint is text');
  if (!text.endsWith('\n')) bad('a checkpoint text ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) bad(`a checkpoint has at least three lines (origin, size, root), this one ${lines.length}`);
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === '') bad('line 1 (origin) must not be empty');
  if (!DECIMAL.test(size)) bad(`line 2 (size) must be a decimal number without leading zeroes, not ${JSON.stringify(size.slice(0, 40))}`);
  const n = Number(size);
  if (!Number.isSafeInteger(n)) bad(`line 2 (size) ${size} is beyond 2^53 − 1, more than this verifier handles`);
  const rootBytes = fromBase64(root);
  if (rootBytes?.length !== 32) bad('line 3 (root) must be the padded standard base64 of 32 bytes');
  for (const [i, e] of extensions.entries()) if (e === '') bad(`line ${i + 4} (extension) must not be empty`);
  return { origin, size: n, root: rootBytes, extensions };
}

export interface VerifiedCheckpoint {
  checkpoint: Checkpoint;
  /** The checkpoint's note text (the signed bytes). */
  text: string;
  /** The log's verified signature. */
  log: VerifiedSignature;
  /** Verified cosignatures by the witnesses given, each with its timestamp. */
  cosignatures: VerifiedSignature[];
  /** Signature lines by keys not given (ignored, kept for a server to re-serve). */
  unverified: NoteSignature[];
}

/**
 * Opens a signed checkpoint as a client must: the log key (type 0x01) must have signed it, its
 * name must be the origin, every signature by a given witness must verify, and at least
 * `minWitnesses` distinct witnesses must have cosigned. Signatures by other keys are ignored.
 */
export function verifyCheckpoint(
  note: string | Uint8Array,
  log: NoteVerifier,
  options: { witnesses?: readonly NoteVerifier[]; minWitnesses?: number } = {},
): VerifiedCheckpoint {
  const witnesses = options.witnesses ?? [];
  const min = options.minWitnesses ?? 0;
  let opened: OpenedNote;
  try {
    opened = openNote(note, [log, ...witnesses]);
  } catch (err) {
    if (err instanceof CheckpointError && err.code === 'no_known_signature') {
      throw new CheckpointError(
        'missing_log_signature',
        `the checkpoint is not signed by the log key ${log.name} (nor cosigned by a witness given)`,
        { cause: err },
      );
    }
    throw err;
  }
  const checkpoint = parseCheckpoint(opened.text);
  const logSig = opened.verified.find((s) => s.name === log.name && s.keyId === log.keyId);
  if (!logSig) throw new CheckpointError('missing_log_signature', `the checkpoint is not signed by the log key ${log.name}`);
  if (checkpoint.origin !== log.name)
    throw new CheckpointError(
      'origin_mismatch',
      `the checkpoint's origin ${JSON.stringify(checkpoint.origin)} is not the log key's name ${JSON.stringify(log.name)}`,
    );
  const cosignatures = opened.verified.filter((s) => s !== logSig && s.type === SIG_COSIGNATURE_V1);
  if (cosignatures.length < min) {
    throw new CheckpointError(
      'too_few_cosignatures',
      `the checkpoint is cosigned by ${cosignatures.length} of the witnesses given, fewer than the ${min} required`,
    );
  }
  return { checkpoint, text: opened.text, log: logSig, cosignatures, unverified: opened.unverified };
}
