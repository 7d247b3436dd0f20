// A level of the tree hashed in bulk: the node hashes of pairs [from, to) of a level, each
// SHA-256(0x01 ‖ left ‖ right), by the WebAssembly kernel of sha256-pairs.as (four nodes at a
// time in SIMD lanes, whole batches per call). A call per node through node:crypto costs ~1.2 µs,
// mostly call overhead; this costs ~0.2 µs. Pure code: no I/O, one module instance per thread.
import { HASH_SIZE, nobleNodeHasher, nodePreimage, type NodeHasher } from './hash.ts';
import { SHA256_PAIRS_WASM } from './sha256-pairs.wasm.ts';

/** Hashes pairs [from, to) of `below` (a level, 32-byte hashes) into nodes [from, to) of `out`. */
export type PairsHasher = (below: Uint8Array, out: Uint8Array, from: number, to: number) => void;

/** Pairs per kernel call: 256 KB in, 128 KB out (in cache, and a small module memory). */
export const BATCH = 4096;

interface Kernel {
  hashPairs(input: number, output: number, n: number): void;
  scratch(): number;
  memory: WebAssembly.Memory;
}

let kernel: { exports: Kernel; memory: Uint8Array; input: number; output: number } | null | undefined;
let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel (to hand to other threads), or null where WebAssembly SIMD does not run. */
export function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Uint8Array.from(atob(SHA256_PAIRS_WASM), (c) => c.charCodeAt(0)));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

function loadKernel(): typeof kernel {
  if (kernel !== undefined) return kernel;
  try {
    const module = kernelModule();
    if (!module) throw new Error('no WebAssembly SIMD');
    const exports = new WebAssembly.Instance(module, { env: { abort: () => {} } }).exports as unknown as Kernel;
    const input = exports.scratch();
    const output = input + BATCH * 2 * HASH_SIZE;
    const need = output + BATCH * HASH_SIZE;
    const have = exports.memory.buffer.byteLength;
    if (need > have) exports.memory.grow(Math.ceil((need - have) / 65536));
    kernel = { exports, memory: new Uint8Array(exports.memory.buffer), input, output };
  } catch {
    // No WebAssembly SIMD here (an old runtime, --jitless): the per-node path, same bytes.
    kernel = null;
  }
  return kernel;
}

/** The per-node reference: one hasher call per node (any NodeHasher). */
export function pairsHasherOf(hasher: NodeHasher = nobleNodeHasher): PairsHasher {
  const preimage = nodePreimage();
  return (below, out, from, to) => {
    for (let i = from; i < to; i++) {
      preimage.set(below.subarray(2 * i * HASH_SIZE, (2 * i + 2) * HASH_SIZE), 1);
      out.set(hasher(preimage), i * HASH_SIZE);
    }
  };
}

/** True when the bulk kernel runs here (else wasmPairsHasher falls back to the per-node path). */
export function bulkHashing(): boolean {
  return loadKernel() !== null;
}

const fallback = pairsHasherOf();

/** The bulk kernel (or, without WebAssembly SIMD, the per-node path). */
export const wasmPairsHasher: PairsHasher = (below, out, from, to) => {
  const k = loadKernel();
  if (!k) return fallback(below, out, from, to);
  for (let i = from; i < to; i += BATCH) {
    const n = Math.min(BATCH, to - i);
    k.memory.set(below.subarray(2 * i * HASH_SIZE, 2 * (i + n) * HASH_SIZE), k.input);
    // Lanes past n (up to a multiple of 4) hash stale bytes; their results are not copied out.
    k.exports.hashPairs(k.input, k.output, (n + 3) & ~3);
    out.set(k.memory.subarray(k.output, k.output + n * HASH_SIZE), i * HASH_SIZE);
  }
};
