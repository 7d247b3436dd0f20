// The epoch header: the leaf of the epoch log (docs/design.md, "Epoch log and signed
// checkpoints"), BCS of version u8 (1), epoch u64, root vector<u8> (32 bytes), size u64,
// first_ts_ms u64, last_ts_ms u64; epoch_leaf_hash = SHA-256(0x00 ‖ header). Written out by hand
// (66 bytes, fixed layout); tests hold it byte-equal to @mysten/sui's bcs.struct. Pure and browser-safe.
import { hashLeafBytes } from '../merkle/hash.ts';
import { CheckpointError } from './error.ts';

export const EPOCH_HEADER_VERSION = 1;
/** 1 (version) + 8 (epoch) + 1 (ULEB128 length 32) + 32 (root) + 3 × 8. */
export const EPOCH_HEADER_BYTES = 66;

export interface EpochHeader {
  epoch: number;
  /** The epoch's event-tree root, 32 bytes. */
  root: Uint8Array;
  /** Events in the epoch (leaves of its tree). */
  size: number;
  first_ts_ms: number;
  last_ts_ms: number;
}

const FIELDS = ['epoch', 'size', 'first_ts_ms', 'last_ts_ms'] as const;

function bad(message: string): never {
  throw new CheckpointError('malformed_epoch_header', message);
}

/** The header's bytes; each number must be an integer 0 … 2^53 − 1 and the root 32 bytes. */
export function encodeEpochHeader(h: EpochHeader): Uint8Array {
  for (const f of FIELDS) if (!Number.isSafeInteger(h[f]) || h[f] < 0) bad(`${f} must be an integer 0 … 2^53 − 1, not ${String(h[f])}`);
  if (!(h.root instanceof Uint8Array) || h.root.length !== 32) bad('root must be 32 bytes');
  const out = new Uint8Array(EPOCH_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out[0] = EPOCH_HEADER_VERSION;
  view.setBigUint64(1, BigInt(h.epoch), true);
  out[9] = 32;
  out.set(h.root, 10);
  view.setBigUint64(42, BigInt(h.size), true);
  view.setBigUint64(50, BigInt(h.first_ts_ms), true);
  view.setBigUint64(58, BigInt(h.last_ts_ms), true);
  return out;
}

/** Reads a header's bytes: exactly 66, version 1, a 32-byte root, numbers within 2^53 − 1. */
export function decodeEpochHeader(bytes: Uint8Array): EpochHeader {
  if (bytes.length !== EPOCH_HEADER_BYTES) bad(`an epoch header is ${EPOCH_HEADER_BYTES} bytes, not ${bytes.length}`);
  if (bytes[0] !== EPOCH_HEADER_VERSION) bad(`epoch header version ${bytes[0]} is not ${EPOCH_HEADER_VERSION}`);
  if (bytes[9] !== 32) bad('the root of an epoch header is 32 bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const num = (at: number, f: string) => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`${f} ${v} is beyond 2^53 − 1`);
    return Number(v);
  };
  return {
    epoch: num(1, 'epoch'),
    root: bytes.slice(10, 42),
    size: num(42, 'size'),
    first_ts_ms: num(50, 'first_ts_ms'),
    last_ts_ms: num(58, 'last_ts_ms'),
  };
}

/** epoch_leaf_hash = SHA-256(0x00 ‖ header): the epoch's leaf in the epoch log. */
export function epochLeafHash(h: EpochHeader): Uint8Array {
  return hashLeafBytes(encodeEpochHeader(h));
}
