// The RFC 6962 tree (MTH) built bottom-up over flat buffers: pair adjacent nodes, promote a
// lone last node unchanged. This is the same tree as the recursive MTH definition (split at
// the largest power of two below n), and as merkletreejs without duplicateOdd; tests check both.
// Levels are kept as one Uint8Array each (n × 32 bytes), not one object per node: a
// 1,000,000-leaf tree is 64 MB here, against over 1 GB as merkletreejs Buffers.
import { HASH_SIZE, nobleNodeHasher, nodePreimage, type NodeHasher } from './hash.ts';
import { type PairsHasher, wasmPairsHasher } from './level-hasher.ts';

export interface Tree {
  size: number;
  /** levels[0] holds the leaf hashes; the last level holds the root alone. */
  levels: Uint8Array[];
}

/** Builds every level above the leaf hashes (n × 32 bytes, n ≥ 1). */
export function buildTree(leafHashes: Uint8Array, hasher: NodeHasher = nobleNodeHasher): Tree {
  const size = leafHashes.length / HASH_SIZE;
  if (!Number.isInteger(size) || size < 1) throw new RangeError('a tree needs at least one 32-byte leaf hash');
  const levels = [leafHashes];
  const preimage = nodePreimage();
  let below = leafHashes;
  let count = size;
  while (count > 1) {
    const next = Math.ceil(count / 2);
    const level = new Uint8Array(next * HASH_SIZE);
    for (let i = 0; i < count >> 1; i++) {
      preimage.set(below.subarray(2 * i * HASH_SIZE, (2 * i + 2) * HASH_SIZE), 1);
      level.set(hasher(preimage), i * HASH_SIZE);
    }
    if (count % 2 === 1) level.set(below.subarray((count - 1) * HASH_SIZE, count * HASH_SIZE), (next - 1) * HASH_SIZE);
    levels.push(level);
    below = level;
    count = next;
  }
  return { size, levels };
}

/** How many nodes each level of a tree of `size` leaves holds, leaves first, root last. */
export function levelSizes(size: number): number[] {
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError('a tree needs at least one 32-byte leaf hash');
  const sizes = [size];
  for (let count = size; count > 1; ) sizes.push((count = Math.ceil(count / 2)));
  return sizes;
}

/**
 * The same tree as buildTree, each level hashed in bulk (pairs [0, n/2) in one call, then the
 * lone last node promoted): the seal's builder. `levels` may be given, preallocated (the levels
 * above the leaves, sized as levelSizes says), for a caller that shares them between threads.
 */
export function buildTreeBulk(leafHashes: Uint8Array, pairs: PairsHasher = wasmPairsHasher, levels?: Uint8Array[]): Tree {
  const sizes = levelSizes(leafHashes.length / HASH_SIZE);
  const out = [leafHashes];
  for (let l = 1; l < sizes.length; l++) {
    const below = out[l - 1]!;
    const count = sizes[l - 1]!;
    const level = levels?.[l - 1] ?? new Uint8Array(sizes[l]! * HASH_SIZE);
    if (level.length !== sizes[l]! * HASH_SIZE) throw new RangeError(`level ${l} must hold ${sizes[l]} hashes`);
    pairs(below, level, 0, count >> 1);
    promoteLone(below, count, level);
    out.push(level);
  }
  return { size: sizes[0]!, levels: out };
}

/** RFC 6962: an odd level's last node goes up unchanged. */
export function promoteLone(below: Uint8Array, count: number, level: Uint8Array): void {
  if (count % 2 === 1) level.set(below.subarray((count - 1) * HASH_SIZE, count * HASH_SIZE), (count >> 1) * HASH_SIZE);
}

export function rootOf(tree: Tree): Uint8Array {
  return tree.levels.at(-1)!.slice(0, HASH_SIZE);
}

/** Reads node `index` of `level` (level 0: leaves). */
export type NodeReader = (level: number, index: number) => Uint8Array;

/**
 * Where the RFC 9162 audit path of leaf `index` in a tree of `size` leaves lies, leaf side first:
 * the sibling at each level where there is one (a promoted node has none), as [level, index].
 * One node per level: O(log n) reads from memory or from storage.
 */
export function auditPathNodes(index: number, size: number): Array<[level: number, index: number]> {
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new RangeError(`leaf index ${index} is outside a tree of ${size}`);
  const nodes: Array<[number, number]> = [];
  let i = index;
  let count = size;
  for (let level = 0; count > 1; level++) {
    const sibling = i % 2 === 0 ? i + 1 : i - 1;
    if (sibling < count) nodes.push([level, sibling]);
    i = Math.floor(i / 2);
    count = Math.ceil(count / 2);
  }
  return nodes;
}

/** The RFC 9162 audit path of leaf `index` in a tree of `size` leaves, leaf side first. */
export function auditPath(index: number, size: number, node: NodeReader): Uint8Array[] {
  return auditPathNodes(index, size).map(([level, i]) => node(level, i));
}

export function memoryNodeReader(tree: Tree): NodeReader {
  return (level, index) => tree.levels[level]!.slice(index * HASH_SIZE, (index + 1) * HASH_SIZE);
}
