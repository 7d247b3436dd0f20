// RFC 9162 consistency proofs (the epoch log's "the log only grew"): every consistency vector of
// transparency-dev/merkle, negative cases included (test/vectors/rfc6962/consistency), proofs
// generated here byte-equal to the vectors' happy paths, and generation ⇄ verification for every
// pair of sizes up to 70 over real trees.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consistencyProof, consistencyProofNodes, verifyConsistency } from '../../src/merkle/consistency.ts';
import { hashLeafBytes } from '../../src/merkle/hash.ts';
import { buildTree, memoryNodeReader, rootOf } from '../../src/merkle/tree.ts';

const DIR = join(import.meta.dirname, '../vectors/rfc6962/consistency');

interface ConsistencyVector {
  file: string;
  size1: number;
  size2: number;
  root1: string | null;
  root2: string | null;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

const vectors: ConsistencyVector[] = readdirSync(DIR, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((file) => ({ file, ...(JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Omit<ConsistencyVector, 'file'>) }));

const b64 = (s: string | null) => (s ? new Uint8Array(Buffer.from(s, 'base64')) : new Uint8Array(0));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// The RFC 6962 reference leaves the transparency-dev vectors are computed over.
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(
  (h) => new Uint8Array(Buffer.from(h, 'hex')),
);

function treeOf(leaves: Uint8Array[]) {
  const flat = new Uint8Array(leaves.length * 32);
  leaves.forEach((l, i) => flat.set(hashLeafBytes(l), i * 32));
  return buildTree(flat);
}

describe('RFC 6962 consistency vectors', () => {
  it('finds the vectors (98 files, both outcomes)', () => {
    expect(vectors.length).toBe(98);
    expect(vectors.filter((v) => !v.wantErr).length).toBeGreaterThan(4);
    expect(vectors.filter((v) => v.wantErr).length).toBeGreaterThan(80);
  });

  it.each(vectors)('$file: $desc', (v) => {
    const r = verifyConsistency(v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2));
    expect(r.ok, r.ok ? 'accepted' : r.reason).toBe(!v.wantErr);
    if (!r.ok) expect(r.reason.length).toBeGreaterThan(10);
  });

  // The happy paths over real trees (the additional/ ones hold placeholder roots such as "don't care").
  it.each(vectors.filter((v) => !v.wantErr && b64(v.root2).length === 32))('generates the proof of $file byte for byte', (v) => {
    const tree = treeOf(LEAVES.slice(0, v.size2));
    expect(hex(rootOf(tree))).toBe(hex(b64(v.root2)));
    expect(hex(rootOf(treeOf(LEAVES.slice(0, v.size1))))).toBe(hex(b64(v.root1)));
    expect(consistencyProof(v.size1, v.size2, memoryNodeReader(tree)).map(hex)).toEqual((v.proof ?? []).map((p) => hex(b64(p))));
  });
});

describe('consistency proofs over real trees', () => {
  const N = 70;
  const leaves = Array.from({ length: N }, (_, i) => new Uint8Array([i, i >> 8, 0xee]));
  const trees = Array.from({ length: N + 1 }, (_, n) => (n === 0 ? null : treeOf(leaves.slice(0, n))));

  it(`every pair 1 ≤ size1 ≤ size2 ≤ ${N}: the proof verifies, with the RFC 6962 length`, () => {
    for (let n2 = 1; n2 <= N; n2++) {
      for (let n1 = 1; n1 <= n2; n1++) {
        const proof = consistencyProof(n1, n2, memoryNodeReader(trees[n2]!));
        const r = verifyConsistency(n1, n2, proof, rootOf(trees[n1]!), rootOf(trees[n2]!));
        expect(r, `${n1} → ${n2}`).toEqual({ ok: true });
        expect(proof.length).toBe(consistencyProofNodes(n1, n2).length);
      }
    }
  });

  it('refuses a forked history: a first tree that is not a prefix of the second', () => {
    for (const [n1, n2] of [
      [3, 7],
      [4, 8],
      [5, 70],
      [1, 2],
      [64, 65],
    ] as const) {
      const forked = treeOf(leaves.slice(0, n1).map((l, i) => (i === n1 - 1 ? new Uint8Array([9, 9, 9]) : l)));
      const proof = consistencyProof(n1, n2, memoryNodeReader(trees[n2]!));
      const r = verifyConsistency(n1, n2, proof, rootOf(forked), rootOf(trees[n2]!));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.code).toBe('root_mismatch');
    }
  });

  it('refuses sizes no proof relates, and a proof of the wrong length', () => {
    const root = rootOf(trees[5]!);
    expect(verifyConsistency(0, 5, [], root, root)).toMatchObject({ ok: false, code: 'size_order' });
    expect(verifyConsistency(6, 5, [], root, root)).toMatchObject({ ok: false, code: 'size_order' });
    expect(verifyConsistency(3, 5, [], rootOf(trees[3]!), root)).toMatchObject({ ok: false, code: 'path_length' });
    const proof = consistencyProof(3, 5, memoryNodeReader(trees[5]!));
    expect(verifyConsistency(3, 5, [...proof, proof[0]!], rootOf(trees[3]!), root)).toMatchObject({ ok: false, code: 'path_length' });
    expect(verifyConsistency(3, 5, proof.slice(1), rootOf(trees[3]!), root).ok).toBe(false);
    expect(() => consistencyProofNodes(0, 3)).toThrow(RangeError);
    expect(() => consistencyProofNodes(4, 3)).toThrow(RangeError);
  });
});
