// RFC 6962 hashing with domain separation: the one home of the leaf and node prefixes.
// Browser-safe (@noble/hashes).
import { sha256 } from '@noble/hashes/sha2.js';

export const HASH_SIZE = 32;

/** RFC 6962 §2.1: the byte before a leaf's data. */
export const LEAF_PREFIX = 0x00;
/** RFC 6962 §2.1: the byte before two child hashes. */
export const NODE_PREFIX = 0x01;

/** SHA-256(0x00 ‖ leaf): the hash of a leaf's bytes. */
export function hashLeafBytes(leaf: Uint8Array): Uint8Array {
  const buf = new Uint8Array(leaf.length + 1);
  buf[0] = LEAF_PREFIX;
  buf.set(leaf, 1);
  return sha256(buf);
}

/** SHA-256(0x01 ‖ left ‖ right): an interior node. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = nodePreimage();
  buf.set(left, 1);
  buf.set(right, 1 + HASH_SIZE);
  return sha256(buf);
}

/** A 65-byte node preimage with the prefix set: 0x01 ‖ (left) ‖ (right), to be filled in. */
export function nodePreimage(): Uint8Array {
  const buf = new Uint8Array(1 + 2 * HASH_SIZE);
  buf[0] = NODE_PREFIX;
  return buf;
}

/** A hasher of the 65-byte node preimage 0x01 ‖ left ‖ right; the sealer passes a faster one. */
export type NodeHasher = (preimage: Uint8Array) => Uint8Array;

export const nobleNodeHasher: NodeHasher = (preimage) => sha256(preimage);
