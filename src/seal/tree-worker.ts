// A tree-hashing thread (see tree-builder.ts): hashes the pairs it is given of levels that live in
// a SharedArrayBuffer, in place, and says when it is done. It holds no ledger and no key.
import { parentPort } from 'node:worker_threads';
import { HASH_SIZE } from '../merkle/hash.ts';
import { wasmPairsHasher } from '../merkle/level-hasher.ts';
import { promoteLone } from '../merkle/tree.ts';
import type { HashJob } from './tree-builder.ts';

parentPort!.on('message', (job: HashJob) => {
  try {
    const bytes = new Uint8Array(job.buf);
    for (const s of job.steps) {
      const below = bytes.subarray(s.below, s.below + s.count * HASH_SIZE);
      const level = bytes.subarray(s.out, s.out + Math.ceil(s.count / 2) * HASH_SIZE);
      wasmPairsHasher(below, level, s.from, s.to);
      // The thread with the level's last pair also carries its lone last node up.
      if (s.to === s.count >> 1) promoteLone(below, s.count, level);
    }
    parentPort!.postMessage({ id: job.id });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).message });
  }
});
