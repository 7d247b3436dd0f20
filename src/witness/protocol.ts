// C2SP tlog-witness (c2sp.org/tlog-witness), pure: the add-checkpoint request body, the
// witness's decision on it given what it last cosigned for the origin, and the client's reading
// of the answers. No I/O: the witness's state lives in store.ts, its HTTP in server.ts, and the
// log's side in submitter.ts.
import {
  CheckpointError,
  cosigner,
  fromBase64,
  MAX_NOTE_BYTES,
  openNote,
  parseCheckpoint,
  splitNote,
  toBase64,
  type NoteVerifier,
  type SigningKey,
} from '../checkpoint/index.ts';
import { verifyConsistency } from '../merkle/consistency.ts';
import { equalBytes } from '../merkle/proof.ts';

/** tlog-witness: "The client MUST NOT send more than 63 consistency proof lines." */
export const MAX_PROOF_LINES = 63;
/** The largest body: `old <2^53>\n`, 63 proof lines of 45 bytes, a blank line and a note. */
export const MAX_BODY_BYTES = 32 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE_BYTES;
/** The 200 answer's type, and the 409 answer's (the size the witness knows). */
export const SIGNATURE_TYPE = 'text/x.tlog.signature';
export const SIZE_TYPE = 'text/x.tlog.size';

const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;
const utf8 = new TextEncoder();

export interface AddCheckpointRequest {
  old: number;
  proof: Uint8Array[];
  /** The checkpoint as a signed note (text, blank line, signature lines). */
  note: string;
}

/** A request the witness answers with an error status and a message naming the rule. */
export class WitnessError extends Error {
  override readonly name = 'WitnessError';
  readonly status: 400 | 403 | 404 | 409 | 413 | 422;
  /** For 409: the size of the latest checkpoint cosigned for the origin. */
  readonly knownSize: number | undefined;
  constructor(status: WitnessError['status'], message: string, knownSize?: number) {
    super(message);
    this.status = status;
    this.knownSize = knownSize;
  }
}

function malformed(message: string): never {
  throw new WitnessError(400, message);
}

/** Parses an add-checkpoint body: `old N`, up to 63 base64 hashes, a blank line, the note. */
export function parseAddCheckpoint(body: Uint8Array): AddCheckpointRequest {
  if (body.length > MAX_BODY_BYTES) throw new WitnessError(413, `the body is at most ${MAX_BODY_BYTES} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    return malformed('the body must be UTF-8');
  }
  let at = text.indexOf('\n');
  if (at < 0) malformed('the body starts with an old size line ("old <size>\\n")');
  const first = text.slice(0, at);
  if (!first.startsWith('old ') || !DECIMAL.test(first.slice(4)))
    malformed('the first line must be "old <size>" with the size in decimal without leading zeroes');
  const old = Number(first.slice(4));
  if (!Number.isSafeInteger(old)) malformed('the old size is beyond 2^53 − 1');
  const proof: Uint8Array[] = [];
  for (;;) {
    const start = at + 1;
    at = text.indexOf('\n', start);
    if (at < 0) return malformed('the proof lines must be followed by a blank line and the checkpoint');
    const line = text.slice(start, at);
    if (line === '') break;
    if (proof.length === MAX_PROOF_LINES) malformed(`at most ${MAX_PROOF_LINES} consistency proof lines`);
    const hash = fromBase64(line);
    if (hash?.length !== 32) malformed(`consistency proof line ${proof.length + 1} must be the padded base64 of a 32-byte hash`);
    proof.push(hash);
  }
  const note = text.slice(at + 1);
  if (note === '') malformed('the checkpoint is missing after the blank line');
  return { old, proof, note };
}

/** The body of an add-checkpoint request. */
export function formatAddCheckpoint(req: AddCheckpointRequest): string {
  return `old ${req.old}\n${req.proof.map((h) => `${toBase64(h)}\n`).join('')}\n${req.note}`;
}

/** What the witness last cosigned for one origin (size 0: nothing yet). */
export interface WitnessedState {
  size: number;
  root: Uint8Array | null;
}

/** A cosigned checkpoint: the state to persist, and the signature lines to answer with. */
export interface Cosigned {
  origin: string;
  size: number;
  root: Uint8Array;
  note: string;
  signatures: string;
}

/** The logs a witness follows: origin → the verifier keys it trusts for that origin. */
export type KnownLogs = ReadonlyMap<string, readonly NoteVerifier[]>;

/** The checks that need no state: known origin (404), a trusted signature (403), old ≤ size (400). */
export function checkSubmission(
  req: AddCheckpointRequest,
  logs: KnownLogs,
): { origin: string; size: number; root: Uint8Array; text: string } {
  let text: string;
  try {
    text = splitNote(req.note).text;
  } catch (err) {
    return malformed(`the checkpoint is not a signed note: ${(err as Error).message}`);
  }
  let checkpoint: ReturnType<typeof parseCheckpoint>;
  try {
    checkpoint = parseCheckpoint(text);
  } catch (err) {
    return malformed((err as Error).message);
  }
  const verifiers = logs.get(checkpoint.origin);
  if (!verifiers) throw new WitnessError(404, `unknown log origin ${JSON.stringify(checkpoint.origin.slice(0, 200))}`);
  try {
    openNote(req.note, verifiers);
  } catch (err) {
    if (err instanceof CheckpointError && (err.code === 'no_known_signature' || err.code === 'invalid_signature'))
      throw new WitnessError(403, `the checkpoint is not signed by a key this witness trusts for ${checkpoint.origin}`);
    return malformed((err as Error).message);
  }
  if (req.old > checkpoint.size)
    malformed(`the old size ${req.old} is larger than the checkpoint's size ${checkpoint.size}: a log only grows`);
  return { origin: checkpoint.origin, size: checkpoint.size, root: checkpoint.root, text };
}

/**
 * The decision once the stored state is read (run inside the store's transaction): 409 when
 * `old` is not the size last cosigned, or the same size with another root (a fork); 422 when the
 * proof does not show the new checkpoint extends the stored one; else the cosignature.
 */
export function decide(
  req: AddCheckpointRequest,
  checked: ReturnType<typeof checkSubmission>,
  state: WitnessedState,
  key: SigningKey,
  now: () => number,
): Cosigned {
  if (req.old !== state.size)
    throw new WitnessError(
      409,
      `the old size ${req.old} is not the size this witness last cosigned for ${checked.origin} (${state.size})`,
      state.size,
    );
  if (req.old === 0) {
    if (req.proof.length !== 0) malformed('the consistency proof must be empty when the old size is 0');
  } else if (checked.size === state.size) {
    if (!equalBytes(checked.root, state.root!))
      throw new WitnessError(409, `a different root for size ${state.size} than the one this witness cosigned: the log forked`, state.size);
    if (req.proof.length !== 0) throw new WitnessError(422, 'the consistency proof between equal sizes must be empty');
  } else {
    const ok = verifyConsistency(req.old, checked.size, req.proof, state.root!, checked.root);
    if (!ok.ok) throw new WitnessError(422, `the consistency proof does not verify: ${ok.reason}`);
  }
  const signer = cosigner(key, now);
  const sig = signer.sign(utf8.encode(checked.text));
  const raw = new Uint8Array(4 + sig.length);
  new DataView(raw.buffer).setUint32(0, signer.keyId);
  raw.set(sig, 4);
  return {
    origin: checked.origin,
    size: checked.size,
    root: checked.root,
    note: req.note,
    signatures: `\u2014 ${signer.name} ${toBase64(raw)}\n`,
  };
}

/** A 409 body: the size in decimal and a newline. Null when it is not one. */
export function parseSizeBody(text: string): number | null {
  if (!text.endsWith('\n') || !DECIMAL.test(text.slice(0, -1))) return null;
  const n = Number(text.slice(0, -1));
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * The client's reading of a 200 body (tlog-witness): signature lines appended to the checkpoint
 * and opened with the witness's key; lines by other keys are ignored. Returns the witness's own
 * verified signature line (without its newline) and its timestamp, or throws CheckpointError
 * when it did not cosign this checkpoint.
 */
export function cosignatureFrom(note: string, body: string, witness: NoteVerifier): { line: string; timestamp: number } {
  if (body.length > 16 * 1024 || !body.startsWith('\u2014 ') || !body.endsWith('\n'))
    throw new CheckpointError('malformed_note', 'a witness answers signature lines, each starting with "— " and ending in a newline');
  const { text } = splitNote(note);
  const opened = openNote(`${text}\n${body}`, [witness]);
  const mine = opened.verified[0]!;
  if (typeof mine.timestamp !== 'number') throw new CheckpointError('malformed_cosignature', 'the cosignature time is beyond 2^53 − 1');
  return { line: `\u2014 ${mine.name} ${mine.base64}`, timestamp: mine.timestamp };
}
