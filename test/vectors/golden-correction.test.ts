// The golden correction receipts (test/vectors/golden-correction.json): an amend of the golden
// receipt's event and a void of that amendment, fixed bytes made outside src/ by
// scripts/gen-golden-receipt.ts. Our leaf v2 encoder, verifier, netTotals and CLI must agree with
// them; the Move registry checks the same file (move/tests/golden_tests.move).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeLeafV2, leafHashV2 } from '../../src/event/leaf.ts';
import { netTotals, type VerifyCode, verifyReceipt } from '../../src/verify/index.ts';
import {
  GOLDEN_CORRECTION_FILE,
  GOLDEN_RECEIPT_FILE,
  type GoldenCorrectionFile,
  type GoldenFile,
  goldenCorrectionJson,
} from '../../scripts/gen-golden-receipt.ts';
import { receipts } from '../cli/run.ts';
import { tempDir } from '../helpers.ts';

const text = readFileSync(GOLDEN_CORRECTION_FILE, 'utf8');
const golden = JSON.parse(text) as GoldenCorrectionFile;
const original = (JSON.parse(readFileSync(GOLDEN_RECEIPT_FILE, 'utf8')) as GoldenFile).receipt;
const amend = golden.amend.receipt;
const voided = golden.void.receipt;
type R = typeof amend;
const trusted = { root: amend.root, size: amend.tree_size };
const bytesToHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const flip = (h: string) => (parseInt(h.slice(0, 2), 16) ^ 1).toString(16).padStart(2, '0') + h.slice(2);

describe('golden correction receipts', () => {
  it('the committed file is what scripts/gen-golden-receipt.ts makes (fixed bytes)', () => {
    expect(text).toBe(goldenCorrectionJson());
  });

  it('src/event/leaf.ts encodes the same leaf v2 bytes and leaf hashes', () => {
    for (const { receipt, leaf_bcs } of [golden.amend, golden.void]) {
      expect(bytesToHex(encodeLeafV2(receipt.event))).toBe(leaf_bcs);
      expect(bytesToHex(leafHashV2(receipt.event))).toBe(receipt.leaf_hash);
      expect(golden.tree_leaf_hashes[receipt.leaf_index]).toBe(receipt.leaf_hash);
    }
    expect(golden.corrected_leaf_hash).toBe(original.leaf_hash);
  });

  it('verifyReceipt accepts both against the trusted root, and each link to the receipt it corrects', () => {
    expect(verifyReceipt(amend, trusted)).toMatchObject({ ok: true, trusted_root: true, epoch: 4, leaf_index: 2, tree_size: 9 });
    expect(verifyReceipt(voided, trusted)).toMatchObject({ ok: true, trusted_root: true, epoch: 4, leaf_index: 7, tree_size: 9 });
    expect(verifyReceipt(amend, { ...trusted, corrected: original })).toMatchObject({ ok: true });
    expect(verifyReceipt(voided, { ...trusted, corrected: amend })).toMatchObject({ ok: true });
    expect(verifyReceipt(voided, { ...trusted, corrected: original })).toMatchObject({ ok: false, code: 'correction_mismatch' });
  });

  const changes: Array<[string, R, (r: R) => void, VerifyCode]> = [
    ['amend: units + 1', amend, (r) => (r.event.units += 1), 'leaf_mismatch'],
    ['amend: kind void (units kept)', amend, (r) => (r.event.kind = 'void'), 'malformed'],
    ['amend: one bit of corrects', amend, (r) => (r.event.corrects = flip(r.event.corrects)), 'leaf_mismatch'],
    ['void: kind amend', voided, (r) => (r.event.kind = 'amend'), 'leaf_mismatch'],
    ['void: one bit of proof[0]', voided, (r) => (r.proof[0] = flip(r.proof[0]!)), 'root_mismatch'],
    ['void: version 1', voided, (r) => ((r as { version: number }).version = 1), 'malformed'],
  ];
  it.each(changes.map(([name, r, change, code]) => [name, code, r, change] as const))('rejects %s with code %s', (_, code, r, change) => {
    const copy = structuredClone(r);
    change(copy);
    expect(verifyReceipt(copy, trusted)).toMatchObject({ ok: false, code });
  });

  it('net totals: the amendment replaces the original; the void removes it', () => {
    expect(netTotals([original, amend]).totals).toEqual({ events: 1, units: 1234000 });
    expect(netTotals([original, amend, voided])).toMatchObject({ totals: { events: 0, units: 0 }, chains: 1, voided: 1 });
    expect(() => netTotals([amend, voided])).toThrow(expect.objectContaining({ code: 'correction_target_missing' }));
  });
});

describe('golden correction receipts through the CLI', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('`receipts verify --root --size` exits 0 on a correction receipt and 1 on a tampered copy', () => {
    const good = join(t.dir, 'void.json');
    writeFileSync(good, JSON.stringify(voided));
    const ok = receipts(['verify', good, '--root', trusted.root, '--size', String(trusted.size)]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^valid: epoch 4, leaf 7 of 9.*\(trusted root\)/);
    const bad = join(t.dir, 'tampered.json');
    writeFileSync(bad, JSON.stringify({ ...voided, event: { ...voided.event, kind: 'amend' } }));
    expect(receipts(['verify', bad, '--root', trusted.root, '--size', String(trusted.size)]).code).toBe(1);
  });
});
