import { describe, expect, it } from 'vitest';
import { bytesToHex, type CorrectionFields, encodeLeaf, encodeLeafV2, LeafV2Bcs, leafHash, leafHashV2 } from '../../src/event/leaf.ts';
import v1 from '../vectors/leaf-v1.json' with { type: 'json' };
import vectors from '../vectors/leaf-v2.json' with { type: 'json' };

const cases = vectors.cases as Array<{ name: string; event: CorrectionFields; leaf: string; leaf_hash: string }>;

describe('leaf v2 (corrections)', () => {
  it('matches the fixed void vector byte for byte, field by field', () => {
    // version 2 | ns "acme/prod" | rid "req-42-void" | caller "0xabc" | action "recall" | units 0
    // | digest 32×ab | ts 1763800000000 | kind 1 (void) | corrects: leaf hash of leaf v1 vector 0
    const expected =
      '02' +
      '09' +
      '61636d652f70726f64' +
      '0b' +
      '7265712d34322d766f6964' +
      '05' +
      '3078616263' +
      '06' +
      '726563616c6c' +
      '0000000000000000' +
      '20' +
      'ab'.repeat(32) +
      '0026acaa9a010000' +
      '01' +
      '20' +
      v1.cases[0]!.leaf_hash;
    expect(bytesToHex(encodeLeafV2(cases[0]!.event))).toBe(expected);
    expect(cases[0]!.event.corrects).toBe(bytesToHex(leafHash(v1.cases[0]!.event)));
  });

  it.each(cases)('shared vector: $name', (c) => {
    expect(bytesToHex(encodeLeafV2(c.event))).toBe(c.leaf);
    expect(bytesToHex(leafHashV2(c.event))).toBe(c.leaf_hash);
    const { kind, corrects, ...rest } = c.event;
    expect(
      bytesToHex(
        LeafV2Bcs.serialize({
          version: 2,
          ...rest,
          artifact_digest: [...Buffer.from(rest.artifact_digest, 'hex')],
          kind: kind === 'void' ? 1 : 2,
          corrects: [...Buffer.from(corrects, 'hex')],
        }).toBytes(),
      ),
    ).toBe(c.leaf);
  });

  it('the vectors form one chain: each corrects the leaf hash of the one before it', () => {
    expect(cases[1]!.event.corrects).toBe(vectors.original_leaf_hash);
    expect(cases[2]!.event.corrects).toBe(cases[1]!.leaf_hash);
    expect(cases[3]!.event.corrects).toBe(cases[2]!.leaf_hash);
  });

  it('equals the reference BCS layout for random corrections (unicode, long strings, u64 edges)', () => {
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = ['a', 'Z', '/', '-', 'é', '東', '😀', ' ', '0'];
    const str = (max: number) =>
      Array.from({ length: Math.floor(rand() * max) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    const bytes32 = () => Uint8Array.from({ length: 32 }, () => Math.floor(rand() * 256));
    const units = [0, 1, 127, 128, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 500; i++) {
      const kind = rand() < 0.5 ? 'void' : 'amend';
      const corrects = bytes32();
      const fields: CorrectionFields = {
        namespace: str(130),
        request_id: str(200),
        caller: str(300),
        action: str(10),
        units: kind === 'void' ? 0 : i < units.length ? units[i]! : Math.floor(rand() * Number.MAX_SAFE_INTEGER),
        artifact_digest: rand() < 0.5 ? '' : bytesToHex(bytes32()),
        ts_ms: Math.floor(rand() * 4e12),
        kind,
        corrects: bytesToHex(corrects),
      };
      const reference = LeafV2Bcs.serialize({
        version: 2,
        ...fields,
        artifact_digest: fields.artifact_digest === '' ? [] : Array.from(Buffer.from(fields.artifact_digest, 'hex')),
        kind: kind === 'void' ? 1 : 2,
        corrects: Array.from(corrects),
      }).toBytes();
      expect(bytesToHex(encodeLeafV2(fields))).toBe(bytesToHex(reference));
    }
  });

  it('a correction never hashes like the event it replaces (the version byte differs)', () => {
    const original = v1.cases[0]!.event;
    const amend: CorrectionFields = { ...original, kind: 'amend', corrects: v1.cases[0]!.leaf_hash };
    expect(encodeLeafV2(amend)[0]).toBe(2);
    expect(encodeLeaf(original)[0]).toBe(1);
    expect(bytesToHex(leafHashV2(amend))).not.toBe(v1.cases[0]!.leaf_hash);
  });

  it('refuses what the design does not allow, naming the field, rather than encoding a wrong leaf', () => {
    const base = cases[1]!.event; // an amend
    const voided = cases[0]!.event;
    expect(() => encodeLeafV2({ ...base, kind: 'delete' as 'void' })).toThrow(/^kind must be "void" or "amend"/);
    expect(() => encodeLeafV2({ ...base, corrects: '' })).toThrow(/^corrects must be 64 lowercase hex/);
    expect(() => encodeLeafV2({ ...base, corrects: base.corrects.slice(2) })).toThrow(/^corrects/);
    expect(() => encodeLeafV2({ ...base, corrects: base.corrects.toUpperCase() })).toThrow(/^corrects/);
    expect(() => encodeLeafV2({ ...base, artifact_digest: 'abcd' })).toThrow(/^artifact_digest must be empty or 64 hex/);
    expect(() => encodeLeafV2({ ...voided, units: 1 })).toThrow(/^units of a void must be 0/);
    expect(() => encodeLeafV2({ ...base, units: 2 ** 53 })).toThrow(/u64/);
  });
});
