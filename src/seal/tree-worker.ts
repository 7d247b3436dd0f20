// A tree-hashing thread (see tree-builder.ts): hashes the pairs it is given of levels that live in
// shared memory, in place, and says when it is done. It holds no ledger and no key.
// Plain JavaScript run with { eval: true }, not a .ts module: a thread that loads TypeScript
// loads Node's type stripper too (~30 MB per thread). It is handed the compiled kernel of
// merkle/sha256-pairs.as and does what merkle/level-hasher.ts's wasmPairsHasher and
// tree.ts's promoteLone do (test/merkle/bulk-tree.test.ts checks every level it builds).
import { BATCH } from '../merkle/level-hasher.ts';

export const TREE_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
const HASH = 32, BATCH = ${BATCH};
let k = null, mem, input, output;
if (workerData.module) {
  k = new WebAssembly.Instance(workerData.module, { env: { abort() {} } }).exports;
  input = k.scratch();
  output = input + BATCH * 2 * HASH;
  const need = output + BATCH * HASH, have = k.memory.buffer.byteLength;
  if (need > have) k.memory.grow(Math.ceil((need - have) / 65536));
  mem = new Uint8Array(k.memory.buffer);
}
const preimage = new Uint8Array(65);
preimage[0] = 1;
function hashPairs(below, out, from, to) {
  if (!k) {
    // No WebAssembly SIMD: one node:crypto call per node, the same bytes.
    for (let i = from; i < to; i++) {
      preimage.set(below.subarray(2 * i * HASH, (2 * i + 2) * HASH), 1);
      out.set(hash('sha256', preimage, 'buffer'), i * HASH);
    }
    return;
  }
  for (let i = from; i < to; i += BATCH) {
    const n = Math.min(BATCH, to - i);
    mem.set(below.subarray(2 * i * HASH, 2 * (i + n) * HASH), input);
    k.hashPairs(input, output, (n + 3) & ~3);
    out.set(mem.subarray(output, output + n * HASH), i * HASH);
  }
}
parentPort.on('message', (job) => {
  try {
    const levels = new Uint8Array(job.levels);
    for (const s of job.steps) {
      const below = s.fromLeaves
        ? new Uint8Array(job.leaves.buf, job.leaves.offset, s.count * HASH)
        : levels.subarray(s.below, s.below + s.count * HASH);
      const out = levels.subarray(s.out, s.out + Math.ceil(s.count / 2) * HASH);
      hashPairs(below, out, s.from, s.to);
      // The thread with the level's last pair also carries its lone last node up (RFC 6962).
      if (s.to === s.count >> 1 && s.count % 2 === 1) out.set(below.subarray((s.count - 1) * HASH, s.count * HASH), (s.count >> 1) * HASH);
    }
    parentPort.postMessage({ id: job.id });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: err.message });
  }
});
`;
