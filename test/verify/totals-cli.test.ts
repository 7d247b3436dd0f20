// `receipts verify --totals FILE` as a real process: net totals of a page set of receipts,
// corrections applied, from the golden receipt and its golden corrections (fixed bytes).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesToHex, leafHashV2 } from '../../src/event/leaf.ts';
import {
  GOLDEN_CORRECTION_FILE,
  GOLDEN_RECEIPT_FILE,
  type GoldenCorrectionFile,
  type GoldenFile,
} from '../../scripts/gen-golden-receipt.ts';
import { receipts } from '../cli/run.ts';
import { tempDir } from '../helpers.ts';

const original = (JSON.parse(readFileSync(GOLDEN_RECEIPT_FILE, 'utf8')) as GoldenFile).receipt;
const golden = JSON.parse(readFileSync(GOLDEN_CORRECTION_FILE, 'utf8')) as GoldenCorrectionFile;
const amend = golden.amend.receipt;
const voided = golden.void.receipt;
const page = (events: unknown[]) => ({ namespace: 'golden/vectors', groups: [], events, next_cursor: null });

/** A second amendment of the original, alone in a one-leaf epoch (its root is its leaf hash). */
const rivalEvent = { ...amend.event, request_id: 'golden-amend-rival', units: 99 };
const rivalHash = bytesToHex(leafHashV2(rivalEvent));
const rival = { ...amend, event: rivalEvent, leaf_hash: rivalHash, epoch: 5, leaf_index: 0, tree_size: 1, proof: [], root: rivalHash };

describe('receipts verify --totals', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  let n = 0;
  const run = (content: unknown, ...flags: string[]) => {
    const file = join(t.dir, `set-${n++}.json`);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return receipts(['verify', '--totals', file, ...flags]);
  };

  it('prints the net totals per action of an array of receipts: the amendment replaces the original', () => {
    const r = run([original, amend]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^golden\/vectors\trecall\t1 event\t1234000 units\n/);
    expect(r.stdout).toMatch(/^net: 1 event, 1234000 units, from 2 receipts \(1 recorded event, 1 corrected, 0 voided\)/m);
  });

  it('reads a usage page and an array of pages; a void head counts nothing', () => {
    const one = run(page([original, amend, voided]));
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^net: 0 events, 0 units, from 3 receipts \(1 recorded event, 1 corrected, 1 voided\)/m);
    const two = run([page([original]), page([amend])], '--json');
    expect(two.code).toBe(0);
    expect(JSON.parse(two.stdout)).toMatchObject({
      ok: true,
      groups: [{ namespace: 'golden/vectors', action: 'recall', events: 1, units: 1234000 }],
      totals: { events: 1, units: 1234000 },
    });
  });

  it('exits 1 naming the rule when a correction points at an event not in the set, or a chain has two heads', () => {
    const missing = run([amend, voided]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(
      /^invalid: receipt 0 \(golden\/vectors \/ "golden-amend-0001"\) is an amend of the leaf .*\[correction_target_missing\]\n$/,
    );
    const forked = run([original, amend, rival]);
    expect(forked.code).toBe(1);
    expect(forked.stdout).toMatch(/both replace receipt 0 .*\[two_heads\]\n$/);
    const tampered = run([original, { ...amend, event: { ...amend.event, units: 1 } }], '--json');
    expect(tampered.code).toBe(1);
    expect(JSON.parse(tampered.stdout)).toMatchObject({ ok: false, code: 'leaf_mismatch' });
  });

  it('exits 3 with the totals when some receipts are pending, and 2 for what is not a page set', () => {
    const pending = { ...original, status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null };
    const r = run([pending, amend]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^net: 1 event, 1234000 units/m);
    expect(r.stdout).toMatch(/not verifiable yet: 1 receipt pending/);
    expect(run('not json').code).toBe(2);
    expect(run({ receipts: [original] })).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/a page set is a JSON array of receipts/),
    });
    expect(run([original], '--root', original.root, '--size', '7')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--totals/) });
  });
});
