// The golden receipt (test/vectors/golden-receipt.json): fixed bytes made outside src/ by
// scripts/gen-golden-receipt.ts. Our leaf encoder, verifier and CLI must agree with it, and
// every single change to it must be rejected with the right code. The web page (test/web) and
// the Move registry (move/tests/golden_tests.move) check the same file.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeLeaf, leafHash } from '../../src/event/leaf.ts';
import { verifyReceipt, type VerifyCode } from '../../src/verify/index.ts';
import { GOLDEN_RECEIPT_FILE, goldenJson, type GoldenFile } from '../../scripts/gen-golden-receipt.ts';
import { receipts } from '../cli/run.ts';
import { tempDir } from '../helpers.ts';

const text = readFileSync(GOLDEN_RECEIPT_FILE, 'utf8');
const golden = JSON.parse(text) as GoldenFile;
const receipt = golden.receipt;
const trusted = { root: receipt.root, size: receipt.tree_size };
type R = GoldenFile['receipt'];
const copy = (): R => structuredClone(receipt);
const bytesToHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** The hex string with one bit of its first byte flipped. */
const flip = (h: string, bit = 0) => (parseInt(h.slice(0, 2), 16) ^ (1 << bit)).toString(16).padStart(2, '0') + h.slice(2);

describe('golden receipt', () => {
  it('the committed file is what scripts/gen-golden-receipt.ts makes (fixed bytes)', () => {
    expect(text).toBe(goldenJson());
  });

  it('src/event/leaf.ts encodes the same leaf bytes and leaf hash', () => {
    expect(bytesToHex(encodeLeaf(receipt.event))).toBe(golden.leaf_bcs);
    expect(bytesToHex(leafHash(receipt.event))).toBe(receipt.leaf_hash);
    expect(golden.tree_leaf_hashes[receipt.leaf_index]).toBe(receipt.leaf_hash);
  });

  it('verifyReceipt accepts it, with its own root and with the trusted root and size', () => {
    expect(verifyReceipt(receipt)).toMatchObject({ ok: true, trusted_root: false, root: receipt.root });
    expect(verifyReceipt(receipt, trusted)).toMatchObject({
      ok: true,
      trusted_root: true,
      epoch: 3,
      leaf_index: 5,
      tree_size: 7,
      root: receipt.root,
    });
  });

  const changes: Array<[string, (r: R) => void, VerifyCode]> = [
    ['one bit of the leaf hash', (r) => (r.leaf_hash = flip(r.leaf_hash)), 'leaf_mismatch'],
    ...receipt.proof.map((_, i): [string, (r: R) => void, VerifyCode] => [
      `one bit of proof[${i}]`,
      (r) => (r.proof[i] = flip(r.proof[i]!, 7)),
      'root_mismatch',
    ]),
    ['units + 1', (r) => (r.event.units += 1), 'leaf_mismatch'],
    ['the caller', (r) => (r.event.caller = r.event.caller.replace(/e$/, 'f')), 'leaf_mismatch'],
    ['the artifact digest', (r) => (r.event.artifact_digest = flip(r.event.artifact_digest)), 'leaf_mismatch'],
    ['leaf_index − 1', (r) => (r.leaf_index -= 1), 'root_mismatch'],
    // Index 6 of 7 has a path of 2 hashes (RFC 6962 PATH), not 3.
    ['leaf_index + 1', (r) => (r.leaf_index += 1), 'path_length'],
    ['leaf_index = tree_size', (r) => (r.leaf_index = r.tree_size), 'index_out_of_range'],
    ['tree_size − 1', (r) => (r.tree_size -= 1), 'size_mismatch'],
    ['tree_size + 1', (r) => (r.tree_size += 1), 'size_mismatch'],
    ['a proof entry dropped', (r) => r.proof.pop(), 'path_length'],
    ['a proof entry added', (r) => r.proof.push(r.proof[0]!), 'path_length'],
    ['status pending with the proof kept (contradicting labels)', (r) => ((r as { status: string }).status = 'pending'), 'malformed'],
    [
      'a pending receipt of the same event',
      (r) => Object.assign(r, { status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null }),
      'not_sealed',
    ],
    ['an unknown field', (r) => Object.assign(r, { extra: 1 }), 'malformed'],
  ];

  it.each(changes.map(([name, change, code]) => [name, code, change] as const))('rejects %s with code %s', (_, code, change) => {
    const r = copy();
    change(r);
    expect(verifyReceipt(r, trusted)).toMatchObject({ ok: false, code });
  });

  it("without a trusted root: one bit of the receipt's root, or a size the path cannot have, is caught", () => {
    const root = copy();
    root.root = flip(root.root);
    expect(verifyReceipt(root)).toMatchObject({ ok: false, code: 'root_mismatch' });
    const smaller = copy();
    smaller.tree_size -= 1; // index 5 of 6: a path of 2 hashes
    expect(verifyReceipt(smaller)).toMatchObject({ ok: false, code: 'path_length' });
    // Index 5 of 8 walks the same path to the same root: only a trusted size binds the size
    // (RFC 9162), which is why --size goes with --root.
    const larger = copy();
    larger.tree_size += 1;
    expect(verifyReceipt(larger)).toMatchObject({ ok: true, tree_size: 8 });
    expect(verifyReceipt(larger, trusted)).toMatchObject({ ok: false, code: 'size_mismatch' });
  });

  it("with a trusted root, one bit of the receipt's own root is rejected with root_mismatch", () => {
    const off = copy();
    off.root = flip(off.root);
    expect(verifyReceipt(off, trusted)).toMatchObject({ ok: false, code: 'root_mismatch' });
  });

  it('a trusted root or size other than the golden one is rejected', () => {
    expect(verifyReceipt(receipt, { root: flip(receipt.root), size: 7 })).toMatchObject({ ok: false, code: 'root_mismatch' });
    expect(verifyReceipt(receipt, { root: receipt.root, size: 8 })).toMatchObject({ ok: false, code: 'size_mismatch' });
  });
});

describe('golden receipt through the CLI', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('`receipts verify --root --size` exits 0 on the golden receipt and 1 on a tampered copy', () => {
    const good = join(t.dir, 'golden.json');
    writeFileSync(good, JSON.stringify(receipt));
    const ok = receipts(['verify', good, '--root', trusted.root, '--size', String(trusted.size)]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^valid: .*\(trusted root\)/);

    const bad = join(t.dir, 'tampered.json');
    const tampered = copy();
    tampered.event.units += 1;
    writeFileSync(bad, JSON.stringify(tampered));
    const no = receipts(['verify', bad, '--root', trusted.root, '--size', String(trusted.size)]);
    expect(no.code).toBe(1);

    expect(receipts(['verify', good, '--root', flip(trusted.root), '--size', String(trusted.size)]).code).toBe(1);
  });
});
