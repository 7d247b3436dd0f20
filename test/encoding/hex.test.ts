import { describe, expect, it } from 'vitest';
import { bytesToHex, HEX64, HEX64_ANY_CASE_OR_EMPTY, hexToBytes, isHex64, isHex64AnyCase } from '../../src/encoding/hex.ts';
import { hashChildren, hashLeafBytes, LEAF_PREFIX, NODE_PREFIX } from '../../src/merkle/hash.ts';
import { backoffDelay } from '../../src/retry/backoff.ts';

const H = 'ab'.repeat(32);

describe('hex', () => {
  it('round-trips every byte value, lowercase out', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const hex = bytesToHex(all);
    expect(hex).toMatch(/^[0-9a-f]{512}$/);
    expect(hex.slice(0, 6)).toBe('000102');
    expect(hexToBytes(hex)).toEqual(all);
    expect(hexToBytes(hex.toUpperCase())).toEqual(all);
    expect(bytesToHex(new Uint8Array(0))).toBe('');
  });

  it('rejects odd lengths and non-hex characters instead of reading them as zero', () => {
    expect(() => hexToBytes('abc')).toThrow();
    expect(() => hexToBytes('zz')).toThrow();
    expect(() => hexToBytes('0x00')).toThrow();
    expect(() => hexToBytes(' 0')).toThrow();
  });

  it('checks 64 hex characters: lowercase only where the service writes, either case where it reads', () => {
    expect(isHex64(H)).toBe(true);
    expect(isHex64(H.toUpperCase())).toBe(false);
    expect(isHex64AnyCase(H.toUpperCase())).toBe(true);
    for (const bad of [H.slice(1), `${H}0`, `${H.slice(1)}g`, `${H}\n`, '', null, 42, [H]]) {
      expect(isHex64(bad)).toBe(false);
      expect(isHex64AnyCase(bad)).toBe(false);
    }
    expect(HEX64.test(`${H}\n`)).toBe(false);
    expect(HEX64_ANY_CASE_OR_EMPTY.test('')).toBe(true);
    expect(HEX64_ANY_CASE_OR_EMPTY.test(H.toUpperCase())).toBe(true);
    expect(HEX64_ANY_CASE_OR_EMPTY.test(H.slice(2))).toBe(false);
  });

  it('answers a long hostile string at once (linear patterns)', () => {
    const hostile = `${'a'.repeat(1_000_000)}!`;
    const t = performance.now();
    expect(isHex64AnyCase(hostile)).toBe(false);
    expect(HEX64_ANY_CASE_OR_EMPTY.test(hostile)).toBe(false);
    expect(performance.now() - t).toBeLessThan(200);
  });
});

describe('RFC 6962 prefixes', () => {
  it('hashes leaves under 0x00 and nodes under 0x01 (RFC 6962 empty-leaf vector)', () => {
    expect([LEAF_PREFIX, NODE_PREFIX]).toEqual([0x00, 0x01]);
    expect(bytesToHex(hashLeafBytes(new Uint8Array(0)))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const zero = new Uint8Array(32);
    expect(hashChildren(zero, zero)).not.toEqual(hashLeafBytes(new Uint8Array(64)));
  });
});

describe('backoffDelay', () => {
  const opts = { baseMs: 100, maxMs: 1000 };

  it('stays in [0, min(max, base·2^(attempt−1))) with full jitter', () => {
    for (let attempt = 1; attempt <= 60; attempt++) {
      const window = Math.min(1000, 100 * 2 ** (attempt - 1));
      expect(backoffDelay(attempt, opts, () => 0)).toBe(0);
      expect(backoffDelay(attempt, opts, () => 0.5)).toBe(window / 2);
      const top = backoffDelay(attempt, opts, () => 1 - Number.EPSILON);
      expect(top).toBeLessThan(window);
      expect(top).toBeGreaterThan(window * 0.99);
    }
    expect(backoffDelay(1, opts, () => 0.5)).toBe(50);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(200);
    expect(backoffDelay(5000, opts, () => 0.5)).toBe(500); // 2^4999 overflows to Infinity: still capped
  });

  it('uses Math.random by default and stays within bounds', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(10, opts);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(1000);
    }
  });

  it('refuses an attempt that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => backoffDelay(bad, opts, () => 0.5)).toThrow(/attempt/);
  });
});
