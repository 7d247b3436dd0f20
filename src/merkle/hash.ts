// RFC 6962 hashing with domain separation. Browser-safe (@noble/hashes).
import { sha256 } from '@noble/hashes/sha2.js';

export const HASH_SIZE = 32;

/** SHA-256(0x01 ‖ left ‖ right): an interior node. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + 2 * HASH_SIZE);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 1 + HASH_SIZE);
  return sha256(buf);
}

/** A hasher of the 65-byte node preimage 0x01 ‖ left ‖ right; the sealer passes a faster one. */
export type NodeHasher = (preimage: Uint8Array) => Uint8Array;

export const nobleNodeHasher: NodeHasher = (preimage) => sha256(preimage);
