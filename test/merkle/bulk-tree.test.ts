// The seal's fast builders (the WebAssembly bulk kernel, and the same on worker threads sharing
// the levels) must build exactly the tree of the per-node reference builder: every level, byte
// for byte, at every size where the shape changes (0 refused, 1, 2, 3, powers of two ± 1, random
// sizes), and the roots of the RFC 6962 vectors.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { hashLeafBytes } from '../../src/merkle/hash.ts';
import { bulkHashing, pairsHasherOf, wasmPairsHasher } from '../../src/merkle/level-hasher.ts';
import { buildTree, buildTreeBulk, levelSizes, rootOf } from '../../src/merkle/tree.ts';
import { TreeWorkers } from '../../src/seal/tree-builder.ts';
import { buildEpochTree, sealRequest } from '../../src/seal/sealer.ts';
import { compileSha256Pairs } from '../../scripts/lib/sha256-wasm.ts';
import { SHA256_PAIRS_WASM } from '../../src/merkle/sha256-pairs.wasm.ts';
import { loadVectors } from './rfc6962.test.ts';

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
let seed = 0x2545f491;
const random = (n: number) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const randomLeaves = (n: number) => {
  const out = new Uint8Array(n * 32);
  for (let i = 0; i < out.length; i += 4) new DataView(out.buffer).setUint32(i, random(2 ** 32));
  return out;
};
const hex = (levels: Uint8Array[]) => levels.map((l) => Buffer.from(l).toString('hex'));
const reference = (leaves: Uint8Array) => buildTree(leaves, sha);

const powers = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16].flatMap((k) => [2 ** k - 1, 2 ** k, 2 ** k + 1]);
const sizes = [...new Set([1, 2, 3, ...powers, ...Array.from({ length: 12 }, () => 1 + random(60_000))])].sort((a, b) => a - b);

// Two threads as in production, and three: uneven shares and a level split three ways.
const pools = [new TreeWorkers(2), new TreeWorkers(3)];
afterAll(() => Promise.all(pools.map((p) => p.close())));

describe('bulk tree builders against the per-node reference', () => {
  it('the WebAssembly kernel runs here (else the seal would quietly take the slow path)', () => {
    expect(bulkHashing()).toBe(true);
  });

  it('the shipped kernel is what sha256-pairs.as compiles to (npm run build:wasm after changing it)', async () => {
    const source = readFileSync(new URL('../../src/merkle/sha256-pairs.as', import.meta.url), 'utf8');
    expect(Buffer.from(await compileSha256Pairs(source)).toString('base64')).toBe(SHA256_PAIRS_WASM);
  });

  it('the kernel hashes any range of pairs as the per-node hasher does (unaligned starts, partial lanes)', () => {
    const below = randomLeaves(20_001);
    for (const [from, to] of [
      [0, 0],
      [0, 1],
      [1, 2],
      [3, 10_000],
      [4097, 10_000],
      [0, 10_000],
      [9_999, 10_000],
    ] as const) {
      const fast = new Uint8Array(10_001 * 32);
      const slow = new Uint8Array(10_001 * 32);
      wasmPairsHasher(below, fast, from, to);
      pairsHasherOf(sha)(below, slow, from, to);
      expect(Buffer.from(fast).equals(Buffer.from(slow)), `pairs [${from}, ${to})`).toBe(true);
    }
  });

  it.each(sizes)('%i leaves: every level byte-identical (bulk, and on 2 and 3 threads)', async (n) => {
    const leaves = randomLeaves(n);
    const want = hex(reference(leaves).levels);
    expect(hex(buildTreeBulk(leaves).levels)).toEqual(want);
    for (const pool of pools) {
      const tree = await pool.build(leaves);
      expect(hex(tree.levels), `${pool.threads} threads`).toEqual(want);
      expect(Buffer.from(tree.root).toString('hex')).toBe(want.at(-1));
    }
    expect(levelSizes(n).length).toBe(want.length);
  });

  it('refuses no leaves, and leaves that are not whole hashes, naming the rule', async () => {
    expect(() => buildTreeBulk(new Uint8Array(0))).toThrow(/at least one 32-byte leaf hash/);
    expect(() => buildTreeBulk(new Uint8Array(33))).toThrow(/at least one 32-byte leaf hash/);
    await expect(pools[0]!.build(new Uint8Array(0))).rejects.toThrow(/at least one 32-byte leaf hash/);
    await expect(pools[0]!.build(new Uint8Array(32 * 5000 + 1))).rejects.toThrow(/at least one 32-byte leaf hash/);
  });

  it('the seal request builds off the thread, the same tree as buildEpochTree', async () => {
    const leaves = randomLeaves(50_000);
    const off = await sealRequest({ maxEvents: 1 }).build(leaves);
    expect(hex(off.levels)).toEqual(hex(buildEpochTree(leaves).levels));
  });
});

describe('RFC 6962 vectors', () => {
  // transparency-dev/merkle's inclusion vectors are over the RFC 6962 test leaves; the roots
  // they prove into must be the roots these builders give.
  const data = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
  const leaves = new Uint8Array(Buffer.concat(data.map((d) => hashLeafBytes(Buffer.from(d, 'hex')))));
  const happy = loadVectors().filter((v) => !v.wantErr && Number(v.treeSize) <= 8);

  it.each(happy)('$file: same root and leaf hash', async (v) => {
    const size = Number(v.treeSize);
    // single-entry: a tree of its one leaf, whose root is that leaf's hash.
    const sub = v.file.startsWith('single-entry') ? new Uint8Array(Buffer.from(v.leafHash!, 'base64')) : leaves.subarray(0, size * 32);
    const root = Buffer.from(v.root!, 'base64').toString('hex');
    expect(Buffer.from(rootOf(buildTreeBulk(sub))).toString('hex')).toBe(root);
    expect(Buffer.from((await pools[0]!.build(sub)).root).toString('hex')).toBe(root);
    const i = Number(v.leafIdx);
    expect(Buffer.from(sub.subarray(i * 32, i * 32 + 32)).toString('base64')).toBe(v.leafHash);
  });

  it('the roots of the test leaves for sizes 1 … 8 (RFC 6962 test data)', () => {
    const roots = [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
      '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
      'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    ];
    for (let n = 1; n <= 8; n++)
      expect(Buffer.from(rootOf(buildTreeBulk(leaves.subarray(0, n * 32)))).toString('hex'), `n=${n}`).toBe(roots[n - 1]);
  });
});
