// How both engines store an epoch's tree: each level cut into chunks of up to NODE_CHUNK hashes
// (rows of epoch_nodes: epoch, level, chunk, hashes), so a proof reads one slice per level.
import { HASH_SIZE } from '../merkle/hash.ts';

/** Hashes per stored chunk: 64 (2 KiB, one SQLite page). */
export const NODE_CHUNK = 64;
const CHUNK_BYTES = NODE_CHUNK * HASH_SIZE;

/** Where node `index` of a level is stored: its chunk, and the 1-based byte offset in it (SQL substr). */
export function nodePlace(index: number): { chunk: number; offset: number } {
  return { chunk: Math.floor(index / NODE_CHUNK), offset: (index % NODE_CHUNK) * HASH_SIZE + 1 };
}

/** A node as read back: exactly one hash, or an error naming the node (never an empty value). */
export function storedNode(h: Uint8Array | null | undefined, epoch: number, level: number, index: number): Uint8Array {
  if (!h || h.length !== HASH_SIZE) throw new RangeError(`no stored node at epoch ${epoch}, level ${level}, index ${index}`);
  return h;
}

/** Every chunk of a built tree's levels (leaves first), as the rows to store. */
export function* nodeChunks(levels: readonly Uint8Array[]): Generator<{ level: number; chunk: number; hashes: Buffer }> {
  for (const [level, hashes] of levels.entries()) {
    for (let chunk = 0; chunk * CHUNK_BYTES < hashes.length; chunk++) {
      const part = hashes.subarray(chunk * CHUNK_BYTES, (chunk + 1) * CHUNK_BYTES);
      yield { level, chunk, hashes: Buffer.from(part.buffer, part.byteOffset, part.byteLength) };
    }
  }
}
