// RFC 9162 §2.1.3.2: verifying an inclusion proof. Browser-safe; never throws.
// Index arithmetic uses division, not bit operators, so sizes up to 2^53 are exact.
import { HASH_SIZE, hashChildren } from './hash.ts';

/** Why a path leads nowhere: the index is not in the tree, or the path has the wrong number of hashes. */
export type PathFailure = 'index_out_of_range' | 'path_length' | 'malformed';

export type InclusionResult = { ok: true } | { ok: false; reason: string };

/** One level of the walk: the sibling, the side it sits on, and the hash it led to. */
export interface PathLevel {
  sibling: Uint8Array;
  side: 'left' | 'right';
  hash: Uint8Array;
}

/** The root that `path` leads to from `leafHash` at `index` in a tree of `size`, or why there is none. */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  path: readonly Uint8Array[],
  trace?: (level: PathLevel) => void,
): { root: Uint8Array } | { reason: string; code: PathFailure } {
  if (!Number.isSafeInteger(size) || size < 1) return { reason: `tree size ${size} is not a positive integer`, code: 'index_out_of_range' };
  if (!Number.isSafeInteger(index) || index < 0)
    return { reason: `leaf index ${index} is not a non-negative integer`, code: 'index_out_of_range' };
  if (index >= size) return { reason: `leaf index ${index} is not below the tree size ${size}`, code: 'index_out_of_range' };
  if (leafHash.length !== HASH_SIZE) return { reason: 'leaf hash is not 32 bytes', code: 'malformed' };
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const [k, p] of path.entries()) {
    if (p.length !== HASH_SIZE) return { reason: `proof element ${k} is not 32 bytes`, code: 'malformed' };
    if (sn === 0) return { reason: `the proof is too long for leaf ${index} of ${size} (${path.length} hashes)`, code: 'path_length' };
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      trace?.({ sibling: p, side: 'left', hash: r });
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hashChildren(r, p);
      trace?.({ sibling: p, side: 'right', hash: r });
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { reason: `the proof is too short for leaf ${index} of ${size} (${path.length} hashes)`, code: 'path_length' };
  return { root: r };
}

export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  path: readonly Uint8Array[],
  root: Uint8Array,
): InclusionResult {
  const computed = rootFromInclusionProof(leafHash, index, size, path);
  if ('reason' in computed) return { ok: false, reason: computed.reason };
  if (!equalBytes(computed.root, root))
    return { ok: false, reason: 'the audit path leads to a different root: the proof does not match this tree' };
  return { ok: true };
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
