// C2SP tlog-cosignature, Ed25519 (signature type 0x04): a witness's timestamped statement that a
// checkpoint is the largest consistent one it has seen. Signed message:
//   "cosignature/v1\ntime <unix seconds>\n" + the checkpoint's note text;
// signature bytes: u64 big-endian timestamp ‖ 64-byte Ed25519 signature. Pure and browser-safe.
import { ed25519 } from '@noble/curves/ed25519.js';
import { CheckpointError } from './error.ts';
import {
  SIG_COSIGNATURE_V1,
  assertKeyName,
  ed25519Verify,
  keyId,
  parseVerifierKey,
  type NoteSigner,
  type NoteVerifier,
  type SigningKey,
} from './note.ts';

/** tlog-cosignature: a timestamp must not exceed 2^63 − 1. */
export const MAX_COSIGNATURE_TIME = (1n << 63n) - 1n;

const utf8 = new TextEncoder();

/** The bytes an Ed25519 cosigner signs for `text` (a checkpoint note text) at `time` (seconds). */
export function cosignedMessage(text: Uint8Array, time: bigint): Uint8Array {
  const head = utf8.encode(`cosignature/v1\ntime ${time.toString()}\n`);
  const out = new Uint8Array(head.length + text.length);
  out.set(head, 0);
  out.set(text, head.length);
  return out;
}

/** Splits timestamp ‖ signature; null when the length is not 8 + 64 or the time is past 2^63 − 1. */
export function splitCosignature(sig: Uint8Array): { time: bigint; signature: Uint8Array } | null {
  if (sig.length !== 72) return null;
  const time = new DataView(sig.buffer, sig.byteOffset, 8).getBigUint64(0);
  if (time > MAX_COSIGNATURE_TIME) return null;
  return { time, signature: sig.subarray(8) };
}

/** A timestamp as a number when exact (every real one), else the bigint. */
const timeValue = (t: bigint): number | bigint => (t <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(t) : t);

/** A type 0x04 verifier for a cosigner `name` and its 32-byte Ed25519 public key. */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  assertKeyName(name);
  if (publicKey.length !== 32) throw new CheckpointError('malformed_key', `an Ed25519 public key is 32 bytes, not ${publicKey.length}`);
  const key = publicKey.slice();
  return {
    name,
    keyId: keyId(name, SIG_COSIGNATURE_V1, key),
    type: SIG_COSIGNATURE_V1,
    publicKey: key,
    verify: (text, sig) => {
      const parts = splitCosignature(sig);
      return parts !== null && ed25519Verify(key, cosignedMessage(text, parts.time), parts.signature);
    },
    timestampOf: (sig) => {
      const parts = splitCosignature(sig);
      return parts ? timeValue(parts.time) : null;
    },
  };
}

/**
 * A witness's verifier from its vkey in either type (the issue's `--witness URL=VKEY`): a type
 * 0x04 vkey as is, or a type 0x01 vkey (what `receipts signing-key create` prints for the key the
 * witness cosigns with) turned into the type 0x04 verifier of the same name and public key.
 * The given key ID is checked against its own type first.
 */
export function parseCosignerKey(vkey: string): NoteVerifier {
  const v = parseVerifierKey(vkey);
  return v.type === SIG_COSIGNATURE_V1 ? v : cosignatureVerifier(v.name, v.publicKey);
}

/**
 * Cosigns as type 0x04 with a signing key (the same key file as a log's; its type 0x04 key ID
 * differs from its type 0x01 one, as the spec requires). `now` gives the time in seconds.
 */
export function cosigner(key: SigningKey, now: () => number | bigint = () => Math.floor(Date.now() / 1000)): NoteSigner {
  const seed = key.seed;
  return {
    name: key.name,
    keyId: keyId(key.name, SIG_COSIGNATURE_V1, key.publicKey),
    sign: (text) => {
      const t = BigInt(now());
      if (t < 0n || t > MAX_COSIGNATURE_TIME)
        throw new CheckpointError('malformed_cosignature', `a cosignature time must be 0 … 2^63 − 1 seconds, not ${t}`);
      const out = new Uint8Array(72);
      new DataView(out.buffer).setBigUint64(0, t);
      out.set(ed25519.sign(cosignedMessage(text, t), seed), 8);
      return out;
    },
  };
}

/** The type 0x04 verifier of a signing key, and its vkey: what a witness prints at start. */
export function cosignerVerifierOf(key: SigningKey): NoteVerifier {
  return cosignatureVerifier(key.name, key.publicKey);
}
