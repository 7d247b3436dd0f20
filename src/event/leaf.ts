// Leaf v1: the normative byte encoding of one usage event (docs/design.md, "Leaf (version 1)"),
// and leaf v2, a correction (void or amend) of a recorded event ("Leaf (version 2): corrections").
// Pure and browser-safe: the verifier rebuilds leaves with this same code.
import { bcs } from '@mysten/sui/bcs';
import { hexToBytes, isHex64 } from '../encoding/hex.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { LEAF_PREFIX } from '../merkle/hash.ts';

export const LEAF_VERSION = 1;

/** The fields an event proves, exactly as they enter the leaf. */
export interface LeafFields {
  namespace: string;
  request_id: string;
  caller: string;
  action: string;
  /** Integer 0 … 2^53−1 (u64 on chain; JSON-safe here). */
  units: number;
  /** 64 lowercase hex characters, or '' for none. */
  artifact_digest: string;
  ts_ms: number;
}

/** BCS layout of leaf v1; the Move struct `LeafV1` has the same fields in the same order. */
export const LeafV1Bcs = bcs.struct('LeafV1', {
  version: bcs.u8(),
  namespace: bcs.string(),
  request_id: bcs.string(),
  caller: bcs.string(),
  action: bcs.string(),
  units: bcs.u64(),
  artifact_digest: bcs.vector(bcs.u8()),
  ts_ms: bcs.u64(),
});

export const LEAF_VERSION_CORRECTION = 2;

export type CorrectionKind = 'void' | 'amend';
/** The `kind` byte of leaf v2. */
export const CORRECTION_KIND_CODE: Readonly<Record<CorrectionKind, number>> = { void: 1, amend: 2 };

/**
 * The fields a correction proves (leaf v2). `namespace` and `ts_ms` are the corrected event's;
 * `request_id` is the correction's own. Amend: `caller`, `action`, `units`, `artifact_digest` are
 * the new values. Void: they are the replaced version's, except `units`, which is 0.
 */
export interface CorrectionFields extends LeafFields {
  kind: CorrectionKind;
  /** 64 lowercase hex characters: the leaf hash of the version this one replaces. */
  corrects: string;
}

/** BCS layout of leaf v2; the Move struct `LeafV2` has the same fields in the same order. */
export const LeafV2Bcs = bcs.struct('LeafV2', {
  version: bcs.u8(),
  namespace: bcs.string(),
  request_id: bcs.string(),
  caller: bcs.string(),
  action: bcs.string(),
  units: bcs.u64(),
  artifact_digest: bcs.vector(bcs.u8()),
  ts_ms: bcs.u64(),
  kind: bcs.u8(),
  corrects: bcs.vector(bcs.u8()),
});

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * The leaf bytes (BCS of LeafV1), written directly: the generic BCS writer costs ~10 µs a leaf,
 * this under 1 µs, and ingest hashes every event. Tests hold it byte-equal to `LeafV1Bcs`.
 */
export function encodeLeaf(fields: LeafFields): Uint8Array {
  return writeLeaf(fields, 0);
}

/**
 * The leaf v2 bytes of a correction (BCS of LeafV2). Throws a RangeError naming the field for
 * what the design does not allow: a kind other than void/amend, `corrects` not 32 bytes, a
 * digest neither empty nor 32 bytes, a void with units other than 0.
 */
export function encodeLeafV2(fields: CorrectionFields): Uint8Array {
  return writeLeaf(fields, 0, undefined, correctionTail(fields));
}

/** 0x00 ‖ leaf v2 in one buffer, as `leafPreimage` for v1. */
export function leafPreimageV2<T extends Uint8Array = Uint8Array>(fields: CorrectionFields, alloc?: (size: number) => T): T {
  const out = writeLeaf(fields, 1, alloc, correctionTail(fields));
  out[0] = LEAF_PREFIX;
  return out;
}

/** kind ‖ corrects, checked against the design's rules for leaf v2. */
function correctionTail(fields: CorrectionFields): Uint8Array {
  const kind = Object.hasOwn(CORRECTION_KIND_CODE, fields.kind) ? CORRECTION_KIND_CODE[fields.kind] : undefined;
  if (kind === undefined) throw new RangeError(`kind must be "void" or "amend", got ${JSON.stringify(fields.kind)?.slice(0, 40)}`);
  if (!isHex64(fields.corrects))
    throw new RangeError('corrects must be 64 lowercase hex characters (the 32-byte leaf hash of the replaced version)');
  if (fields.kind === 'void' && fields.units !== 0) throw new RangeError(`units of a void must be 0, got ${fields.units}`);
  const tail = new Uint8Array(1 + 1 + 32);
  tail[0] = kind;
  tail[1] = 32;
  tail.set(hexToBytes(fields.corrects), 2);
  return tail;
}

/**
 * The RFC 6962 leaf hash input, 0x00 ‖ leaf v1, in one buffer: what `leafHash` hashes, for a
 * hasher other than this module's (the ledger hashes with node:crypto) without a second copy.
 */
export function leafPreimage<T extends Uint8Array = Uint8Array>(fields: LeafFields, alloc?: (size: number) => T): T {
  const out = writeLeaf(fields, 1, alloc);
  out[0] = LEAF_PREFIX;
  return out;
}

/**
 * The leaf after `offset` zero bytes; ASCII strings (ids, names) are written without an encoder call.
 * With `tail` (kind ‖ corrects) it is leaf v2, else v1.
 */
function writeLeaf<T extends Uint8Array>(fields: LeafFields, offset: number, alloc?: (size: number) => T, tail?: Uint8Array): T {
  const { namespace, request_id, caller, action } = fields;
  const ns = asciiOr(namespace);
  const rid = asciiOr(request_id);
  const cl = asciiOr(caller);
  const ac = asciiOr(action);
  const digest = fields.artifact_digest === '' ? EMPTY : hexToBytes(fields.artifact_digest);
  if (tail && digest.length !== 32 && digest.length !== 0)
    throw new RangeError('artifact_digest must be empty or 64 hex characters (32 bytes)');
  const size =
    offset +
    1 +
    8 +
    ulebSize(digest.length) +
    digest.length +
    8 +
    textSize(ns) +
    textSize(rid) +
    textSize(cl) +
    textSize(ac) +
    (tail?.length ?? 0);
  // Every byte from `offset` on is written below: an allocator may hand out uninitialized memory.
  const out = alloc ? alloc(size) : (new Uint8Array(size) as T);
  let at = offset;
  out[at++] = tail ? LEAF_VERSION_CORRECTION : LEAF_VERSION;
  at = writeText(out, at, ns);
  at = writeText(out, at, rid);
  at = writeText(out, at, cl);
  at = writeText(out, at, ac);
  at = writeU64(out, at, fields.units);
  at = writeBytes(out, at, digest);
  at = writeU64(out, at, fields.ts_ms);
  if (tail) out.set(tail, at);
  return out;
}

/** The string itself when it is ASCII (its UTF-8 bytes are its char codes), else its UTF-8 bytes. */
function asciiOr(s: string): string | Uint8Array {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return utf8.encode(s);
  return s;
}

function textSize(t: string | Uint8Array): number {
  return ulebSize(t.length) + t.length;
}

function writeText(out: Uint8Array, at: number, t: string | Uint8Array): number {
  if (typeof t !== 'string') return writeBytes(out, at, t);
  at = writeLength(out, at, t.length);
  for (let i = 0; i < t.length; i++) out[at++] = t.charCodeAt(i);
  return at;
}

function ulebSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function writeLength(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

function writeBytes(out: Uint8Array, at: number, bytes: Uint8Array): number {
  at = writeLength(out, at, bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}

/** u64 little-endian from a non-negative safe integer. */
function writeU64(out: Uint8Array, at: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`u64 field must be an integer 0 … 2^53−1, got ${n}`);
  // Byte by byte: a DataView over `out.buffer` would move a small array's bytes off the V8 heap.
  let lo = n % 0x1_0000_0000;
  let hi = Math.floor(n / 0x1_0000_0000);
  for (let i = 0; i < 4; i++, lo >>>= 8) out[at + i] = lo & 0xff;
  for (let i = 4; i < 8; i++, hi >>>= 8) out[at + i] = hi & 0xff;
  return at + 8;
}

/** RFC 6962 leaf hash of an event: SHA-256(0x00 ‖ leaf v1). */
export function leafHash(fields: LeafFields): Uint8Array {
  return sha256(leafPreimage(fields));
}

/** RFC 6962 leaf hash of a correction: SHA-256(0x00 ‖ leaf v2). */
export function leafHashV2(fields: CorrectionFields): Uint8Array {
  return sha256(leafPreimageV2(fields));
}

// Hex lives in src/encoding/hex.ts; re-exported here for the tests and scripts that import it with the leaf.
export { bytesToHex, hexToBytes } from '../encoding/hex.ts';
