// The TypeScript twin of the Move registry, on the very vectors the Move tests are generated from.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, leafHash } from '../../src/event/leaf.ts';
import { hashChildren } from '../../src/merkle/hash.ts';
import { MoveAbort, RegistryModel, verifyProof } from '../../src/chain/registry-model.ts';
import { anchorCases, generateVectorTests, inclusionCases, leafCases, MOVE_VECTORS_FILE, stepRoot } from '../../scripts/gen-move-vectors.ts';

const hex = (h: string) => hexToBytes(h);

describe('Move vectors', () => {
  it('move/tests/vectors_tests.move is what the generator makes of the shared vectors (run scripts/gen-move-vectors.ts)', async () => {
    expect(readFileSync(MOVE_VECTORS_FILE, 'utf8')).toBe(await generateVectorTests());
  });
});

describe('TypeScript twin of move/sources/registry.move', () => {
  it.each(inclusionCases())('verify_proof: $name', (c) => {
    expect(verifyProof(hex(c.leafHash), c.leafIdx, c.treeSize, c.proof.map(hex), hex(c.root))).toBe(c.valid);
  });

  it.each(leafCases())('leaf_hash: $name', (c) => {
    expect(bytesToHex(leafHash(c.event))).toBe(c.leaf_hash);
  });

  it.each(anchorCases())('anchor: $name → $expect', (c) => {
    const reg = new RegistryModel('0xreg');
    const run = () => {
      for (const s of c.steps) {
        reg.anchor(s.cap === 'other' ? '0xother' : '0xreg', s.epoch, hex(stepRoot(s)), s.size ?? 3, s.first_ts_ms ?? 1, s.last_ts_ms ?? 2, 1000);
      }
    };
    if (c.expect === 'ok') {
      run();
      expect(reg.nextEpoch).toBe(c.next_epoch);
    } else {
      // Every step but the last succeeds; the last aborts with the named constant and changes nothing.
      const before = c.steps.length - 1;
      let thrown: unknown;
      try {
        run();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(MoveAbort);
      expect((thrown as MoveAbort).constantName).toBe(c.expect);
      expect(reg.epochs.size).toBe(before);
    }
  });

  it('verify_inclusion and verify_event against an anchored epoch (the generated Move test, mirrored)', () => {
    const [a, b] = leafCases() as [ReturnType<typeof leafCases>[0], ReturnType<typeof leafCases>[0]];
    const reg = new RegistryModel('0xreg');
    reg.anchor('0xreg', 0, hashChildren(leafHash(a.event), leafHash(b.event)), 2, 1, 2, 0);
    expect(reg.verifyInclusion(0, hex(a.leaf_hash), 0, [hex(b.leaf_hash)])).toBe(true);
    expect(reg.verifyInclusion(0, hex(b.leaf_hash), 1, [hex(a.leaf_hash)])).toBe(true);
    expect(reg.verifyInclusion(0, hex(a.leaf_hash), 1, [hex(b.leaf_hash)])).toBe(false);
    expect(reg.verifyInclusion(1, hex(a.leaf_hash), 0, [hex(b.leaf_hash)])).toBe(false);
    expect(reg.verifyInclusion(0, hex(a.leaf_hash), 0, [hex(a.leaf_hash)])).toBe(false);
    expect(reg.verifyEvent(0, a.event, 0, [hex(b.leaf_hash)])).toBe(true);
    expect(reg.verifyEvent(0, { ...a.event, units: a.event.units + 1 }, 0, [hex(b.leaf_hash)])).toBe(false);
    expect(reg.verifyEvent(0, { ...a.event, artifact_digest: a.event.artifact_digest.slice(2) }, 0, [hex(b.leaf_hash)])).toBe(false);
    expect(reg.verifyEvent(1, a.event, 0, [hex(b.leaf_hash)])).toBe(false);
  });

  it('names the same abort constants as the Move module', () => {
    const move = readFileSync(new URL('../../move/sources/registry.move', import.meta.url), 'utf8');
    const declared = [...move.matchAll(/#\[error\]\s*const (E\w+)/g)].map((m) => m[1]).sort();
    const used = [...new Set(anchorCases().map((c) => c.expect).filter((e) => e !== 'ok'))].sort();
    expect(used).toEqual(declared); // every abort has a vector, and the vectors name no other
  });
});
