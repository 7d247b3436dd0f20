// Receipts of corrections (receipt v2, leaf v2) through the library's public surface:
// verifyReceipt rebuilds the leaf v2 and checks a correction's link to the receipt it corrects;
// netTotals recomputes net totals of a page set and refuses sets it cannot total.
import { describe, expect, it } from 'vitest';
import { bytesToHex, type CorrectionFields, type LeafFields, leafHash, leafHashV2 } from '../../src/event/leaf.ts';
import { netTotals, receiptsOfPageSet, VerificationError, verifyReceipt } from '../../src/verify/index.ts';
import { auditPath, buildTree, memoryNodeReader, rootOf } from '../../src/merkle/tree.ts';
import type { AnyReceipt } from '../../src/receipt/format.ts';

type Fields = LeafFields | CorrectionFields;
const hashOf = (e: Fields) => ('kind' in e ? leafHashV2(e) : leafHash(e));
const hexOf = (e: Fields) => bytesToHex(hashOf(e));

/** One sealed epoch holding these events, and the receipt of each (v1 or v2 by its fields). */
function seal(events: Fields[], epoch = 4): AnyReceipt[] {
  const n = events.length;
  const flat = new Uint8Array(n * 32);
  events.forEach((e, i) => flat.set(hashOf(e), i * 32));
  const tree = buildTree(flat);
  const root = bytesToHex(rootOf(tree));
  return events.map(
    (event, i) =>
      ({
        version: 'kind' in event ? 2 : 1,
        status: 'sealed',
        event,
        leaf_hash: hexOf(event),
        epoch,
        leaf_index: i,
        tree_size: n,
        proof: auditPath(i, n, memoryNodeReader(tree)).map(bytesToHex),
        root,
        anchor: null,
      }) as AnyReceipt,
  );
}

const T = 1_763_800_000_000;
const ev = (request_id: string, action: string, units: number, ts_ms = T): LeafFields => ({
  namespace: 'acme/prod',
  request_id,
  caller: '0xabc',
  action,
  units,
  artifact_digest: '',
  ts_ms,
});
const amend = (of: Fields, request_id: string, change: Partial<LeafFields>): CorrectionFields => ({
  ...of,
  ...change,
  request_id,
  kind: 'amend',
  corrects: hexOf(of),
});
const voidOf = (of: Fields, request_id: string): CorrectionFields => ({ ...of, request_id, units: 0, kind: 'void', corrects: hexOf(of) });

// a: amended twice (units, then action); b: voided; c: untouched; d: amended, then voided.
const a = ev('a', 'recall', 3);
const b = ev('b', 'recall', 5, T + 1);
const c = ev('c', 'search', 7, T + 2);
const d = ev('d', 'search', 9, T + 3);
const a1 = amend(a, 'a-fix-1', { units: 10 });
const a2 = amend(a1, 'a-fix-2', { action: 'recall.big', units: 12 });
const b1 = voidOf(b, 'b-void');
const d1 = amend(d, 'd-fix', { units: 1 });
const d2 = voidOf(d1, 'd-void');
// Originals in one epoch, corrections in a later one (as the ledger would seal them).
const originals = seal([a, b, c, d], 4);
const corrections = seal([a1, b1, d1, a2, d2], 5);
const all = [...originals, ...corrections];
const [ra, rb] = originals as [AnyReceipt, AnyReceipt];
const [ra1, rb1, rd1, ra2] = corrections as [AnyReceipt, AnyReceipt, AnyReceipt, AnyReceipt];

describe('verifyReceipt: a receipt v2 (correction)', () => {
  it('is checked like any other: leaf v2 rebuilt from the plain fields, path walked to the root', () => {
    const res = verifyReceipt(ra1);
    expect(res).toMatchObject({ ok: true, epoch: 5, leaf_index: 0, tree_size: 5 });
    expect(res.steps.map((s) => s.step)).toEqual(['format', 'leaf', 'path', 'root']);
    expect(res.steps[0]!.detail).toMatch(/^receipt v2 \(amend\) for acme\/prod \/ a-fix-1/);
    expect(res.steps[1]!.detail).toMatch(/^leaf v2 rebuilt/);
    for (const r of all) expect(verifyReceipt(r).ok).toBe(true);
  });

  it.each([
    ['kind flipped from void to amend', (r: AnyReceipt) => Object.assign(r.event, { kind: 'amend' }), 'leaf_mismatch'],
    ['corrects pointing at another leaf', (r: AnyReceipt) => Object.assign(r.event, { corrects: hexOf(c) }), 'leaf_mismatch'],
    ['the action changed', (r: AnyReceipt) => Object.assign(r.event, { action: 'search' }), 'leaf_mismatch'],
    ['kind missing', (r: AnyReceipt) => delete (r.event as Partial<CorrectionFields>).kind, 'malformed'],
    ['kind "delete"', (r: AnyReceipt) => Object.assign(r.event, { kind: 'delete' }), 'malformed'],
    ['corrects of 31 bytes', (r: AnyReceipt) => Object.assign(r.event, { corrects: hexOf(c).slice(2) }), 'malformed'],
    ['units on a void', (r: AnyReceipt) => Object.assign(r.event, { units: 5 }), 'malformed'],
    ['an unknown event field', (r: AnyReceipt) => Object.assign(r.event, { reason: 'test traffic' }), 'malformed'],
    ['version 1 with kind and corrects', (r: AnyReceipt) => Object.assign(r, { version: 1 }), 'malformed'],
  ])('rejects a void receipt with %s', (_n, change, code) => {
    const r = structuredClone(rb1);
    change(r);
    expect(verifyReceipt(r)).toMatchObject({ ok: false, code });
  });

  it('names the rule when the event of a receipt v2 lacks a correction field', () => {
    const r = structuredClone(rb1);
    delete (r.event as Partial<CorrectionFields>).corrects;
    expect(verifyReceipt(r)).toMatchObject({
      ok: false,
      code: 'malformed',
      reason: expect.stringMatching(/^event\.corrects must be 64 hex/),
    });
    expect(verifyReceipt({ ...ra, version: 3 })).toMatchObject({ reason: expect.stringMatching(/unsupported receipt version 3/) });
  });

  it("given the receipt it corrects, checks that corrects is that receipt's leaf hash", () => {
    const res = verifyReceipt(ra1, { corrected: ra });
    expect(res).toMatchObject({ ok: true });
    expect(res.steps.at(-1)).toMatchObject({ step: 'correction', ok: true });
    expect(verifyReceipt(ra2, { corrected: ra1 }).ok).toBe(true);
    expect(verifyReceipt(rb1, { corrected: rb }).ok).toBe(true);
    // Pending or not, the corrected receipt's leaf is rebuilt from its fields, never taken from its leaf_hash.
    const pending = { ...ra, status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null };
    expect(verifyReceipt(ra1, { corrected: pending }).ok).toBe(true);
    expect(
      verifyReceipt(ra1, { corrected: { ...ra, leaf_hash: (ra1.event as CorrectionFields).corrects, event: { ...ra.event, units: 4 } } }),
    ).toMatchObject({
      ok: false,
      code: 'correction_mismatch',
    });
  });

  it('rejects the link to another receipt, to an older version, from a v1 receipt, and to a malformed one', () => {
    const mismatch = { ok: false, kind: 'invalid', code: 'correction_mismatch' };
    expect(verifyReceipt(ra1, { corrected: rb })).toMatchObject({ ...mismatch, reason: expect.stringMatching(/corrects another version/) });
    expect(verifyReceipt(ra2, { corrected: ra })).toMatchObject(mismatch); // a2 replaces a1, not a
    expect(verifyReceipt(rb, { corrected: ra })).toMatchObject({ ...mismatch, reason: expect.stringMatching(/this receipt is v1/) });
    expect(verifyReceipt(ra1, { corrected: { version: 1 } })).toMatchObject({ ok: false, code: 'malformed' });
  });

  it('rejects a correction that changes what never changes, or a void that changes a field', () => {
    const moved = amend(a, 'a-moved', { units: 4, ts_ms: T + 99 });
    const renamed = amend(a, 'a-ns', { namespace: 'acme/test' });
    const badVoid: CorrectionFields = { ...voidOf(b, 'b-void-2'), caller: '0xdef' };
    const [rm, rn, rv] = seal([moved, renamed, badVoid], 6) as [AnyReceipt, AnyReceipt, AnyReceipt];
    expect(verifyReceipt(rm, { corrected: ra })).toMatchObject({
      code: 'correction_mismatch',
      reason: expect.stringMatching(/event\.ts_ms/),
    });
    expect(verifyReceipt(rn, { corrected: ra })).toMatchObject({
      code: 'correction_mismatch',
      reason: expect.stringMatching(/event\.namespace/),
    });
    expect(verifyReceipt(rv, { corrected: rb })).toMatchObject({
      code: 'correction_mismatch',
      reason: expect.stringMatching(/a void keeps/),
    });
    // A void ends its chain: nothing may correct it.
    const afterVoid = amend(b1, 'b-revive', { units: 5 });
    const [rr] = seal([afterVoid], 7) as [AnyReceipt];
    expect(verifyReceipt(rr, { corrected: rb1 })).toMatchObject({
      code: 'correction_mismatch',
      reason: expect.stringMatching(/void ends/),
    });
  });
});

describe('netTotals', () => {
  it('counts the head of each chain: amendments replace, voids remove', () => {
    const totals = netTotals(all);
    expect(totals).toEqual({
      groups: [
        { namespace: 'acme/prod', action: 'recall.big', events: 1, units: 12 },
        { namespace: 'acme/prod', action: 'search', events: 1, units: 7 },
      ],
      totals: { events: 2, units: 19 },
      receipts: 9,
      duplicates: 0,
      chains: 4,
      corrected: 3,
      voided: 2,
      pending: 0,
    });
    // The order of the set does not matter.
    expect(netTotals([...all].reverse())).toEqual(totals);
    // Without corrections, the originals count as they are.
    expect(netTotals(originals).totals).toEqual({ events: 4, units: 24 });
  });

  it('counts a receipt given twice once, and says so', () => {
    expect(netTotals([...all, ra1, rb])).toMatchObject({ receipts: 9, duplicates: 2, totals: { events: 2, units: 19 } });
  });

  const code = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(VerificationError);
      return { code: (err as VerificationError).code, message: (err as VerificationError).message };
    }
    throw new Error('did not throw');
  };

  it('rejects a set where a correction points at an event not in the set', () => {
    expect(code(() => netTotals(all.filter((r) => r !== rb)))).toEqual({
      code: 'correction_target_missing',
      message: expect.stringMatching(/acme\/prod \/ "b-void"\) is a void of the leaf [0-9a-f]{64}, which no receipt of the set has/),
    });
    // A middle version missing breaks the chain too.
    expect(code(() => netTotals(all.filter((r) => r !== rd1))).code).toBe('correction_target_missing');
  });

  it('rejects a set where a chain has two heads', () => {
    const rival = amend(a1, 'a-fix-2b', { units: 11 });
    const [rr] = seal([rival], 6) as [AnyReceipt];
    expect(code(() => netTotals([...all, rr]))).toEqual({
      code: 'two_heads',
      message: expect.stringMatching(/both replace receipt \d+ \(acme\/prod \/ "a-fix-1"\)/),
    });
  });

  it('rejects a receipt that does not verify, with its own code, naming it', () => {
    const tampered = structuredClone(ra2);
    tampered.event.units = 1;
    expect(code(() => netTotals([...originals, ...corrections.filter((r) => r !== ra2), tampered]))).toEqual({
      code: 'leaf_mismatch',
      message: expect.stringMatching(/^receipt 8 \(acme\/prod \/ "a-fix-2"\): the leaf hash does not match/),
    });
  });

  it('rejects the same event at two places of the log (recorded twice)', () => {
    const [again] = seal([a], 9) as [AnyReceipt];
    expect(code(() => netTotals([...all, again])).code).toBe('duplicate_event');
  });

  it('refuses a pending receipt unless told to count it unproven', () => {
    const pending = { ...rb1, status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null };
    const set = [...all.filter((r) => r !== rb1), pending];
    expect(code(() => netTotals(set)).code).toBe('not_sealed');
    expect(netTotals(set, { allowPending: true })).toMatchObject({ pending: 1, totals: { events: 2, units: 19 } });
    // Even pending, its leaf hash must be its fields'.
    expect(code(() => netTotals([...set, { ...pending, leaf_hash: hexOf(c) }], { allowPending: true })).code).toBe('leaf_mismatch');
  });

  it('sums units beyond 2^53 exactly, as a decimal string', () => {
    const big = [ev('x', 'recall', Number.MAX_SAFE_INTEGER), ev('y', 'recall', Number.MAX_SAFE_INTEGER, T + 1)];
    expect(netTotals(seal(big)).totals).toEqual({ events: 2, units: '18014398509481982' });
  });

  it('reads a page set: an array of receipts, a usage page, or an array of pages', () => {
    const page = (events: unknown[]) => ({ namespace: 'acme/prod', groups: [], events, next_cursor: null });
    expect(receiptsOfPageSet(all)).toEqual(all);
    expect(receiptsOfPageSet(page(all))).toEqual(all);
    expect(receiptsOfPageSet([page(originals), page(corrections)])).toEqual(all);
    expect(code(() => receiptsOfPageSet({ receipts: all })).code).toBe('malformed');
    expect(code(() => receiptsOfPageSet([page(originals), ra])).code).toBe('malformed');
  });
});
