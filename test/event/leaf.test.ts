import { describe, expect, it } from 'vitest';
import { bytesToHex, encodeLeaf, LeafV1Bcs, leafHash, type LeafFields } from '../../src/event/leaf.ts';
import vectors from '../vectors/leaf-v1.json' with { type: 'json' };

describe('leaf v1', () => {
  it('matches the fixed vector byte for byte, field by field', () => {
    // version | ns "acme/prod" | rid "req-42" | caller "0xabc" | action "recall" | units 3 | digest 32×ab | ts 1763800000000
    const expected =
      '01' +
      '09' +
      '61636d652f70726f64' +
      '06' +
      '7265712d3432' +
      '05' +
      '3078616263' +
      '06' +
      '726563616c6c' +
      '0300000000000000' +
      '20' +
      'ab'.repeat(32) +
      '0026acaa9a010000';
    const event = vectors.cases[0]!.event;
    expect(bytesToHex(encodeLeaf(event))).toBe(expected);
    expect(bytesToHex(leafHash(event))).toBe('e89f2a6f84a8b3301f71d104ad12699c9d0c129570a46c40ce070c55271c57ec');
  });

  it.each(vectors.cases)('shared vector: $name', (c) => {
    expect(bytesToHex(encodeLeaf(c.event))).toBe(c.leaf);
    expect(bytesToHex(leafHash(c.event))).toBe(c.leaf_hash);
  });

  it('equals the reference BCS layout for random events (unicode, long strings, u64 edges)', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = ['a', 'Z', '/', '-', 'é', '東', '😀', ' ', '0'];
    const str = (max: number) =>
      Array.from({ length: Math.floor(rand() * max) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    const units = [0, 1, 127, 128, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 500; i++) {
      const fields: LeafFields = {
        namespace: str(130),
        request_id: str(200), // > 127 bytes exercises a two-byte ULEB128 length
        caller: str(300),
        action: str(10),
        units: i < units.length ? units[i]! : Math.floor(rand() * Number.MAX_SAFE_INTEGER),
        artifact_digest: rand() < 0.5 ? '' : bytesToHex(Uint8Array.from({ length: 32 }, () => Math.floor(rand() * 256))),
        ts_ms: Math.floor(rand() * 4e12),
      };
      const reference = LeafV1Bcs.serialize({
        version: 1,
        ...fields,
        artifact_digest: fields.artifact_digest === '' ? [] : Array.from(Buffer.from(fields.artifact_digest, 'hex')),
      }).toBytes();
      expect(bytesToHex(encodeLeaf(fields))).toBe(bytesToHex(reference));
    }
  });

  it('refuses units outside 0 … 2^53−1 rather than encoding a wrong u64', () => {
    const base = vectors.cases[0]!.event;
    expect(() => encodeLeaf({ ...base, units: -1 })).toThrow(/u64/);
    expect(() => encodeLeaf({ ...base, units: 1.5 })).toThrow(/u64/);
    expect(() => encodeLeaf({ ...base, units: 2 ** 53 })).toThrow(/u64/);
  });
});
