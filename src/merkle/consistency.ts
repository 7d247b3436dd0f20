// RFC 9162 §2.1.4 consistency proofs: that a tree of size2 extends the tree of size1 (append
// only). Generation walks RFC 6962 §2.1.2 SUBPROOF and names each hash as a node of the tree of
// size2 ([level, index], as auditPathNodes does), so a ledger reads O(log n) stored nodes.
// Verification is RFC 9162 §2.1.4.2. Browser-safe; never throws on input. Sizes up to 2^53 − 1
// (division, not bit operators).
import { HASH_SIZE, hashChildren } from './hash.ts';
import { equalBytes } from './proof.ts';
import type { NodeReader } from './tree.ts';

/**
 * Why a consistency proof does not hold:
 * - `size_order`: sizes that no proof relates (size1 = 0, size1 > size2, not integers);
 * - `path_length`: too many or too few hashes for the two sizes;
 * - `malformed`: a hash or root that is not 32 bytes;
 * - `root_mismatch`: the proof does not lead to both roots.
 */
export type ConsistencyFailure = 'size_order' | 'path_length' | 'malformed' | 'root_mismatch';

export type ConsistencyResult = { ok: true } | { ok: false; reason: string; code: ConsistencyFailure };

const isSize = (n: number) => Number.isSafeInteger(n) && n >= 0;

function isPowerOfTwo(n: number): boolean {
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/** Largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The node of the RFC 6962 tree that covers leaves [start, end): its level and index. */
function nodeOf(start: number, end: number): [level: number, index: number] {
  let level = 0;
  while (2 ** level < end - start) level++;
  return [level, start / 2 ** level];
}

/**
 * The nodes of the consistency proof from size1 to size2 (0 < size1 ≤ size2), in proof order, as
 * [level, index] of the tree of size2 (level 0: leaves; a node at the right edge covers fewer
 * than 2^level leaves, as buildTree promotes it). Empty when size1 = size2.
 */
export function consistencyProofNodes(size1: number, size2: number): Array<[level: number, index: number]> {
  if (!isSize(size1) || !isSize(size2) || size1 < 1 || size1 > size2)
    throw new RangeError(`no consistency proof from size ${size1} to ${size2} (0 < size1 ≤ size2)`);
  const out: Array<[number, number]> = [];
  // SUBPROOF(m, D[start:start+n], b), unrolled: each step appends after the recursive part, so
  // collect in reverse and flip.
  let m = size1;
  let start = 0;
  let n = size2;
  let complete = true; // RFC 6962's b: whether the range's own root is already known to the verifier
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      out.push(nodeOf(start + k, start + n));
      n = k;
    } else {
      out.push(nodeOf(start, start + k));
      m -= k;
      start += k;
      n -= k;
      complete = false;
    }
  }
  if (!complete) out.push(nodeOf(start, start + n));
  return out.reverse();
}

/** The consistency proof from size1 to size2, read from the tree of size2. */
export function consistencyProof(size1: number, size2: number, node: NodeReader): Uint8Array[] {
  return consistencyProofNodes(size1, size2).map(([level, index]) => node(level, index));
}

/** RFC 9162 §2.1.4.2: whether `proof` shows that the tree (size2, root2) extends (size1, root1). */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): ConsistencyResult {
  const fail = (code: ConsistencyFailure, reason: string): ConsistencyResult => ({ ok: false, code, reason });
  if (!isSize(size1) || !isSize(size2)) return fail('size_order', `tree sizes ${size1} and ${size2} are not non-negative integers`);
  if (size1 > size2) return fail('size_order', `the first tree size ${size1} is larger than the second ${size2}: a log only grows`);
  if (size1 === 0) return fail('size_order', 'no consistency proof starts at an empty tree (size1 = 0)');
  if (size1 === size2) {
    // As transparency-dev/merkle (and its vectors): equal sizes need equal roots, compared as given.
    if (proof.length !== 0) return fail('path_length', `trees of the same size ${size1} need an empty proof, not ${proof.length} hashes`);
    return equalBytes(root1, root2) ? { ok: true } : fail('root_mismatch', `two different roots for the same size ${size1}`);
  }
  if (root1.length !== HASH_SIZE || root2.length !== HASH_SIZE) return fail('malformed', 'a root is not 32 bytes');
  for (const [i, p] of proof.entries()) if (p.length !== HASH_SIZE) return fail('malformed', `proof element ${i} is not 32 bytes`);
  if (proof.length === 0) return fail('path_length', `the proof from ${size1} to ${size2} is empty`);
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return fail('path_length', `the proof from ${size1} to ${size2} is too long (${proof.length} hashes)`);
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return fail('path_length', `the proof from ${size1} to ${size2} is too short (${proof.length} hashes)`);
  if (!equalBytes(fr, root1))
    return fail('root_mismatch', `the proof does not lead to the root of size ${size1}: the first tree is not a prefix of the second`);
  if (!equalBytes(sr, root2)) return fail('root_mismatch', `the proof does not lead to the root of size ${size2}`);
  return { ok: true };
}
