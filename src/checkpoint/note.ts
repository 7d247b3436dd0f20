// C2SP signed-note (c2sp.org/signed-note): keys, key IDs, signing and opening notes, the same
// bytes as Go's golang.org/x/mod/sumdb/note (tests hold it to that package's vectors).
// Pure and browser-safe: @noble only, no Node module.
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromBase64, toBase64 } from './base64.ts';
// A cycle (cosignature.ts imports this module), harmless: neither uses the other at load time.
import { cosignatureVerifier } from './cosignature.ts';
import { CheckpointError } from './error.ts';

/** Signature type bytes (signed-note "Signature types"): plain Ed25519, and tlog-cosignature's. */
export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;
export type SignatureType = typeof SIG_ED25519 | typeof SIG_COSIGNATURE_V1;

/** Go's sumdb/note refuses a note with more than 100 signature lines; the spec asks for at least 16. */
export const MAX_SIGNATURES = 100;
/** A bound on the whole note (a checkpoint is under 200 bytes; 100 signature lines under 30 KB). */
export const MAX_NOTE_BYTES = 64 * 1024;
/** Not in the spec: a bound so that a hostile name cannot make a key or line of any size. */
export const MAX_KEY_NAME_BYTES = 256;

const utf8Encoder = new TextEncoder();
const utf8 = (s: string) => utf8Encoder.encode(s);

// Go's unicode.IsSpace: ASCII whitespace, U+0085, U+00A0 and the Unicode Z spaces. One class,
// tested character by character: linear.
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** Why `name` cannot be a key name, or null when it can (non-empty, no Unicode space, no `+`). */
export function keyNameProblem(name: string): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a key name must not be empty';
  if (!isWellFormed(name)) return 'a key name must be valid UTF-8';
  if (utf8(name).length > MAX_KEY_NAME_BYTES) return `a key name must be at most ${MAX_KEY_NAME_BYTES} bytes`;
  if (name.includes('+')) return 'a key name must not contain "+"';
  if (SPACE.test(name)) return 'a key name must not contain spaces';
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) < 0x20) return 'a key name must not contain control characters';
  return null;
}

export function assertKeyName(name: string): void {
  const problem = keyNameProblem(name);
  if (problem) throw new CheckpointError('bad_key_name', `key name ${JSON.stringify(String(name).slice(0, 80))}: ${problem}`);
}

/** key ID = SHA-256(key name ‖ 0x0A ‖ type ‖ public key)[:4], big-endian uint32. */
export function keyId(name: string, type: number, publicKey: Uint8Array): number {
  const n = utf8(name);
  const buf = new Uint8Array(n.length + 2 + publicKey.length);
  buf.set(n, 0);
  buf[n.length] = 0x0a;
  buf[n.length + 1] = type;
  buf.set(publicKey, n.length + 2);
  const h = sha256(buf);
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

const hex8 = (id: number) => id.toString(16).padStart(8, '0');
const HEX8 = /^[0-9a-f]{8}$/;

/** A key that verifies one kind of signature line: a name, a key ID, and the check itself. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
  /** Whether `sig` (the bytes after the key ID) signs `text` (the note text, final newline included). */
  verify(text: Uint8Array, sig: Uint8Array): boolean;
  /** For a cosignature: the timestamp a valid signature carries (tlog-cosignature). */
  timestampOf?(sig: Uint8Array): number | bigint | null;
}

/** A key that writes one signature line. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(text: Uint8Array): Uint8Array;
}

/** RFC 8032 verification (strict encodings, as Go's crypto/ed25519), never throwing. */
export function ed25519Verify(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || publicKey.length !== 32) return false;
  try {
    return ed25519.verify(sig, msg, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** A plain Ed25519 (type 0x01) verifier for `name` and a 32-byte public key. */
export function ed25519Verifier(name: string, publicKey: Uint8Array): NoteVerifier {
  assertKeyName(name);
  if (publicKey.length !== 32) throw new CheckpointError('malformed_key', `an Ed25519 public key is 32 bytes, not ${publicKey.length}`);
  const key = publicKey.slice();
  return {
    name,
    keyId: keyId(name, SIG_ED25519, key),
    type: SIG_ED25519,
    publicKey: key,
    verify: (text, sig) => ed25519Verify(key, text, sig),
  };
}

/** `name+hex8(key ID)+base64(type ‖ public key)`. */
export function formatVerifierKey(v: Pick<NoteVerifier, 'name' | 'keyId' | 'type' | 'publicKey'>): string {
  const material = new Uint8Array(1 + v.publicKey.length);
  material[0] = v.type;
  material.set(v.publicKey, 1);
  return `${v.name}+${hex8(v.keyId)}+${toBase64(material)}`;
}

export interface ParsedKey {
  name: string;
  keyId: number;
  type: number;
  key: Uint8Array;
}

/** Splits `name+hex8+base64(type ‖ key)` and checks each part's form (not the key ID's value). */
function splitKey(text: string, what: string): ParsedKey {
  if (typeof text !== 'string' || text.length > MAX_KEY_NAME_BYTES + 200)
    throw new CheckpointError('malformed_key', `${what} is not a string of a key's length`);
  // As Go's strings.Cut: the name ends at the first "+", the key ID at the second; base64 may hold "+".
  const a = text.indexOf('+');
  const b = a < 0 ? -1 : text.indexOf('+', a + 1);
  if (b < 0) throw new CheckpointError('malformed_key', `${what} must be name+hex8+base64 (three parts separated by "+")`);
  const [name, id, b64] = [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1)];
  const problem = keyNameProblem(name);
  if (problem) throw new CheckpointError('malformed_key', `${what}: ${problem}`);
  if (!HEX8.test(id)) throw new CheckpointError('malformed_key', `${what}: the key ID must be 8 lowercase hex digits`);
  const bytes = fromBase64(b64);
  if (!bytes || bytes.length < 2)
    throw new CheckpointError('malformed_key', `${what}: the key must be padded standard base64 of a type byte and the key`);
  return { name, keyId: parseInt(id, 16), type: bytes[0]!, key: bytes.subarray(1) };
}

/**
 * A verifier from its vkey. Type 0x01 gives a plain Ed25519 verifier, type 0x04 a cosignature
 * verifier (see cosignature.ts for one that accepts either); any other type is refused.
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const k = splitKey(vkey, 'verifier key');
  if (k.type !== SIG_ED25519 && k.type !== SIG_COSIGNATURE_V1) {
    throw new CheckpointError(
      'unsupported_key_type',
      `verifier key: signature type 0x${k.type.toString(16).padStart(2, '0')} is not supported (0x01 Ed25519, 0x04 Ed25519 cosignature)`,
    );
  }
  if (k.key.length !== 32)
    throw new CheckpointError('malformed_key', `verifier key: an Ed25519 public key is 32 bytes, not ${k.key.length}`);
  if (keyId(k.name, k.type, k.key) !== k.keyId)
    throw new CheckpointError('key_id_mismatch', `verifier key: key ID ${hex8(k.keyId)} is not the one of this name and key`);
  return k.type === SIG_ED25519 ? ed25519Verifier(k.name, k.key) : cosignatureVerifier(k.name, k.key);
}

/** An Ed25519 signing key: a name and a 32-byte seed (RFC 8032 private key). Holds a secret. */
export interface SigningKey {
  readonly name: string;
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function signingKeyFromSeed(name: string, seed: Uint8Array): SigningKey {
  assertKeyName(name);
  if (seed.length !== 32) throw new CheckpointError('malformed_key', `an Ed25519 seed is 32 bytes, not ${seed.length}`);
  return { name, seed: seed.slice(), publicKey: ed25519.getPublicKey(seed) };
}

/** A new key from the platform's CSPRNG (crypto.getRandomValues, in Node and browsers). */
export function generateSigningKey(name: string): SigningKey {
  return signingKeyFromSeed(name, ed25519.utils.randomSecretKey());
}

/** As Go's note.GenerateKey writes it: `PRIVATE+KEY+name+hex8+base64(0x01 ‖ seed)`. A secret. */
export function formatSignerKey(key: SigningKey): string {
  const material = new Uint8Array(33);
  material[0] = SIG_ED25519;
  material.set(key.seed, 1);
  return `PRIVATE+KEY+${key.name}+${hex8(keyId(key.name, SIG_ED25519, key.publicKey))}+${toBase64(material)}`;
}

/** Reads a signer key (Go's note.NewSigner). Messages never quote the key: it is a secret. */
export function parseSignerKey(skey: string): SigningKey {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+'))
    throw new CheckpointError('malformed_key', 'a signer key starts with PRIVATE+KEY+');
  const k = splitKey(skey.slice('PRIVATE+KEY+'.length), 'signer key');
  if (k.type !== SIG_ED25519)
    throw new CheckpointError(
      'unsupported_key_type',
      `signer key: signature type 0x${k.type.toString(16).padStart(2, '0')} is not supported (0x01 Ed25519)`,
    );
  if (k.key.length !== 32) throw new CheckpointError('malformed_key', `signer key: an Ed25519 seed is 32 bytes, not ${k.key.length}`);
  const key = signingKeyFromSeed(k.name, k.key);
  if (keyId(k.name, SIG_ED25519, key.publicKey) !== k.keyId)
    throw new CheckpointError('key_id_mismatch', 'signer key: its key ID is not the one of its name and key');
  return key;
}

/** The plain Ed25519 (type 0x01) verifier of a signing key. */
export function verifierOf(key: SigningKey): NoteVerifier {
  return ed25519Verifier(key.name, key.publicKey);
}

/** The vkey of a signing key, type 0x01: what `receipts signing-key create` prints. */
export function verifierKeyOf(key: SigningKey): string {
  return formatVerifierKey(verifierOf(key));
}

/** Signs as type 0x01: Ed25519 over the note text. */
export function ed25519Signer(key: SigningKey): NoteSigner {
  const seed = key.seed;
  return { name: key.name, keyId: keyId(key.name, SIG_ED25519, key.publicKey), sign: (text) => ed25519.sign(text, seed) };
}

/** One signature line of a note, as written: `— name base64(keyID ‖ signature)`. */
export interface NoteSignature {
  name: string;
  keyId: number;
  /** base64(key ID ‖ signature), exactly as on the line. */
  base64: string;
}

export interface VerifiedSignature extends NoteSignature {
  type: SignatureType;
  /** For a cosignature: its timestamp, seconds since the Unix epoch. */
  timestamp?: number | bigint;
}

export interface OpenedNote {
  /** The note text, final newline included (the signed bytes). */
  text: string;
  /** Signatures by known keys, each verified (one per key). */
  verified: VerifiedSignature[];
  /** Signatures by keys not given, kept as they were (one per distinct line). */
  unverified: NoteSignature[];
}

function isWellFormed(s: string): boolean {
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed;
  if (f) return f.call(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Decodes a note given as bytes (invalid UTF-8 refused) or text, bounded in size. */
function noteText(msg: string | Uint8Array): string {
  if (typeof msg === 'string') {
    if (msg.length > MAX_NOTE_BYTES) throw new CheckpointError('note_too_large', `a note is at most ${MAX_NOTE_BYTES} bytes`);
    if (!isWellFormed(msg)) throw new CheckpointError('malformed_note', 'a note must be valid UTF-8 (it holds a lone surrogate)');
    if (utf8(msg).length > MAX_NOTE_BYTES) throw new CheckpointError('note_too_large', `a note is at most ${MAX_NOTE_BYTES} bytes`);
    return msg;
  }
  if (msg.length > MAX_NOTE_BYTES)
    throw new CheckpointError('note_too_large', `a note is at most ${MAX_NOTE_BYTES} bytes, this one is ${msg.length}`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(msg);
  } catch {
    throw new CheckpointError('malformed_note', 'a note must be valid UTF-8');
  }
}

const SIG_PREFIX = '\u2014 ';

function bad(message: string): never {
  throw new CheckpointError('malformed_note', message);
}

interface SignatureLine extends NoteSignature {
  line: string;
  sig: Uint8Array;
}

/** Checks a note's form and splits it into its text and signature lines (nothing verified). */
function parseNote(msg: string | Uint8Array): { text: string; lines: SignatureLine[] } {
  const s = noteText(msg);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) bad(`a note must not contain control characters (U+${c.toString(16).padStart(4, '0')} at ${i})`);
  }
  const split = s.lastIndexOf('\n\n');
  if (split < 0) bad('a note is its text, a blank line, then signature lines: there is no blank line');
  const text = s.slice(0, split + 1);
  const sigs = s.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith('\n')) bad('a note must end with a signature line ending in a newline');
  const raws = sigs.slice(0, -1).split('\n');
  if (raws.length > MAX_SIGNATURES) bad(`a note may carry at most ${MAX_SIGNATURES} signatures, this one has ${raws.length}`);
  const lines = raws.map((line, n): SignatureLine => {
    if (!line.startsWith(SIG_PREFIX)) bad(`signature line ${n + 1} does not start with an em dash and a space`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? rest : rest.slice(0, space);
    const b64 = space < 0 ? '' : rest.slice(space + 1);
    const raw = fromBase64(b64);
    if (keyNameProblem(name) || b64 === '' || !raw || raw.length < 5)
      bad(`signature line ${n + 1} is not "— <key name> <base64 of key ID and signature>"`);
    return { line, name, keyId: readU32(raw), base64: b64, sig: raw.subarray(4) };
  });
  return { text, lines };
}

const readU32 = (b: Uint8Array) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;

/**
 * Opens a signed note (Go's note.Open): checks its form, verifies every signature by a key in
 * `known` (one failing refuses the whole note), keeps the others as unverified, and refuses the
 * note unless at least one known key signed it. Signatures by a name and key ID that no verifier
 * has are ignored, as the spec requires, even when the name or the ID alone matches one.
 */
export function openNote(msg: string | Uint8Array, known: readonly NoteVerifier[]): OpenedNote {
  const { text, lines } = parseNote(msg);
  const textBytes = utf8(text);
  const out: OpenedNote = { text, verified: [], unverified: [] };
  const seen = new Set<string>();
  const seenUnverified = new Set<string>();
  for (const { line, name, keyId: id, base64, sig } of lines) {
    const matches = known.filter((v) => v.name === name && v.keyId === id);
    if (matches.length === 0) {
      if (!seenUnverified.has(line)) out.unverified.push({ name, keyId: id, base64 });
      seenUnverified.add(line);
      continue;
    }
    if (matches.length > 1) throw new CheckpointError('ambiguous_key', `two verifiers are given for the key ${name}+${hex8(id)}`);
    const k = `${name}+${hex8(id)}`;
    if (seen.has(k)) continue;
    seen.add(k);
    const v = matches[0]!;
    if (!v.verify(textBytes, sig))
      throw new CheckpointError('invalid_signature', `the signature by ${k} does not verify: the note is refused`);
    const verified: VerifiedSignature = { name, keyId: id, base64, type: v.type };
    const ts = v.timestampOf?.(sig);
    if (ts !== undefined && ts !== null) verified.timestamp = ts;
    out.verified.push(verified);
  }
  if (out.verified.length === 0) {
    throw new CheckpointError(
      'no_known_signature',
      `no signature by a known key (${known.length === 0 ? 'none given' : known.map((v) => `${v.name}+${hex8(v.keyId)}`).join(', ')}): the note is not trusted`,
    );
  }
  return out;
}

/**
 * A note's text and its distinct signature lines, nothing verified (for a server that stores
 * and re-serves cosignatures). Never trust the text from this alone: use openNote.
 */
export function splitNote(msg: string | Uint8Array): { text: string; signatures: NoteSignature[] } {
  const { text, lines } = parseNote(msg);
  const seen = new Set<string>();
  const signatures: NoteSignature[] = [];
  for (const { line, name, keyId: id, base64 } of lines) {
    if (seen.has(line)) continue;
    seen.add(line);
    signatures.push({ name, keyId: id, base64 });
  }
  return { text, signatures };
}

/**
 * Signs `text` (which must end in a newline) with each signer (Go's note.Sign): the text, a blank
 * line, the lines in `keep` (those not by one of the signers, e.g. cosignatures collected
 * earlier), then one line per signer.
 */
export function signNote(text: string, signers: readonly NoteSigner[], keep: readonly NoteSignature[] = []): string {
  if (!text.endsWith('\n')) throw new CheckpointError('malformed_note', 'a note text must end with a newline');
  const textBytes = utf8(text);
  const mine = new Set(signers.map((s) => `${s.name}+${hex8(s.keyId)}`));
  let out = `${text}\n`;
  for (const s of keep) {
    assertKeyName(s.name);
    const raw = fromBase64(s.base64);
    if (!raw || raw.length < 5 || readU32(raw) !== s.keyId) {
      throw new CheckpointError('malformed_note', `the kept signature of ${s.name} is not base64 of its key ID and a signature`);
    }
    if (!mine.has(`${s.name}+${hex8(s.keyId)}`)) out += `${SIG_PREFIX}${s.name} ${s.base64}\n`;
  }
  for (const s of signers) {
    assertKeyName(s.name);
    const sig = s.sign(textBytes);
    const raw = new Uint8Array(4 + sig.length);
    new DataView(raw.buffer).setUint32(0, s.keyId);
    raw.set(sig, 4);
    out += `${SIG_PREFIX}${s.name} ${toBase64(raw)}\n`;
  }
  // What is signed must open: a text with control characters or too large is refused here, not by a reader later.
  parseNote(out);
  return out;
}
