import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesToHex, leafHash } from '../../src/event/leaf.ts';
import { verifyReceipt } from '../../src/index.ts';
import { auditPath, buildTree, memoryNodeReader, rootOf } from '../../src/merkle/tree.ts';
import type { Receipt } from '../../src/receipt/format.ts';

/** A sealed tree of n events and the receipt of each, built from the pure core. */
function receipts(n: number): Receipt[] {
  const events = Array.from({ length: n }, (_, i) => ({
    namespace: 'acme/prod',
    request_id: `r${i}`,
    caller: `c${i % 3}`,
    action: 'recall',
    units: i,
    artifact_digest: i % 2 ? 'ab'.repeat(32) : '',
    ts_ms: 1_763_800_000_000 + i,
  }));
  const hashes = events.map((e) => leafHash(e));
  const flat = new Uint8Array(n * 32);
  hashes.forEach((h, i) => flat.set(h, i * 32));
  const tree = buildTree(flat);
  const root = bytesToHex(rootOf(tree));
  return events.map((event, i) => ({
    version: 1,
    status: 'sealed',
    event,
    leaf_hash: bytesToHex(hashes[i]!),
    epoch: 3,
    leaf_index: i,
    tree_size: n,
    proof: auditPath(i, n, memoryNodeReader(tree)).map(bytesToHex),
    root,
    anchor: null,
  }));
}

const good = receipts(11);
const r5 = good[5]!;

describe('verifyReceipt', () => {
  it('accepts every receipt of a tree, with the steps it checked', () => {
    for (const r of good) expect(verifyReceipt(r).ok).toBe(true);
    const res = verifyReceipt(r5);
    expect(res).toMatchObject({ ok: true, epoch: 3, leaf_index: 5, tree_size: 11, root: r5.root, trusted_root: false });
    expect(res.steps.map((s) => s.step)).toEqual(['format', 'leaf', 'path', 'root']);
    // Each level of the walk is shown: the last hash is the root.
    const levels = res.steps[2]!.levels!;
    expect(levels.map((l) => l.sibling)).toEqual(r5.proof);
    expect(levels.at(-1)!.hash).toBe(r5.root);
    // Leaf 5 of 11 (binary 101): sibling on the left, right, left, right (RFC 9162 walk by hand).
    expect(levels.map((l) => l.side)).toEqual(['left', 'right', 'left', 'right']);
  });

  it('checks against a trusted root and size, and names the check that failed', () => {
    expect(verifyReceipt(r5, { root: r5.root!, size: 11 })).toMatchObject({ ok: true, trusted_root: true });
    const other = receipts(12)[0]!.root!;
    expect(verifyReceipt(r5, { root: other, size: 11 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not to the trusted root of epoch 3/),
    });
    expect(verifyReceipt(r5, { root: other, size: 11 })).toMatchObject({ code: 'root_mismatch' });
    expect(verifyReceipt(r5, { root: r5.root!, size: 12 })).toMatchObject({
      ok: false,
      code: 'size_mismatch',
      reason: expect.stringMatching(/tree size 11 but the trusted size .* is 12/),
    });
  });

  it('fails when any bit of the tree size flips, given the trusted size (RFC 9162 alone cannot always tell)', () => {
    for (const r of receipts(7)) {
      for (let bit = 1; bit <= 8; bit <<= 1) {
        const flipped = { ...r, tree_size: r.tree_size! ^ bit };
        expect(verifyReceipt(flipped, { root: r.root!, size: r.tree_size! }).ok).toBe(false);
      }
    }
  });

  it.each([
    ['a changed unit count', { event: { ...r5.event, units: 6 } }, 'leaf', 'leaf_mismatch', /leaf hash does not match the event fields/],
    ['a changed caller', { event: { ...r5.event, caller: 'mallory' } }, 'leaf', 'leaf_mismatch', /leaf hash does not match/],
    [
      'a changed artifact digest',
      { event: { ...r5.event, artifact_digest: 'ac'.repeat(32) } },
      'leaf',
      'leaf_mismatch',
      /leaf hash does not match/,
    ],
    ['a wrong index', { leaf_index: 4 }, 'root', 'root_mismatch', /leads to .*not to the receipt's root/],
    ['an index at the size', { leaf_index: 11 }, 'path', 'index_out_of_range', /leaf index 11 is not below the tree size 11/],
    ['a proof one hash short', { proof: r5.proof!.slice(1) }, 'path', 'path_length', /too short/],
    ['a proof one hash long', { proof: [...r5.proof!, r5.root] }, 'path', 'path_length', /too long/],
    ['a changed proof hash', { proof: [good[0]!.leaf_hash, ...r5.proof!.slice(1)] }, 'root', 'root_mismatch', /not to the receipt's root/],
    ['a changed root', { root: good[0]!.leaf_hash }, 'root', 'root_mismatch', /not to the receipt's root/],
  ])('rejects %s at the %s step, with code %s', (_n, patch, step, code, reason) => {
    const res = verifyReceipt({ ...r5, ...patch });
    expect(res).toMatchObject({ ok: false, kind: 'invalid', code });
    expect(res.reason).toMatch(reason);
    expect(res.steps.at(-1)).toMatchObject({ step, ok: false });
  });

  it.each([
    ['null', null, /not a JSON object/],
    ['an array', [r5], /not a JSON object/],
    ['version 3', { ...r5, version: 3 }, /unsupported receipt version 3/],
    ['no event', { ...r5, event: undefined }, /event is missing/],
    ['units as a string', { ...r5, event: { ...r5.event, units: '5' } }, /event.units must be an integer/],
    ['units beyond 2^53', { ...r5, event: { ...r5.event, units: 2 ** 53 } }, /event.units/],
    ['a short leaf hash', { ...r5, leaf_hash: 'ab' }, /leaf_hash must be 64 hex/],
    ['a 0x root', { ...r5, root: `0x${r5.root!.slice(2)}` }, /root must be 64 hex/],
    ['a negative epoch', { ...r5, epoch: -1 }, /epoch must be a non-negative integer/],
    ['a proof of numbers', { ...r5, proof: [1, 2] }, /proof\[0\] must be 64 hex/],
    ['a proof string', { ...r5, proof: 'abc' }, /proof must be an array/],
  ])('rejects %s with a reason, without throwing', (_n, input, reason) => {
    const res = verifyReceipt(input);
    expect(res.ok).toBe(false);
    expect(res.reason).toMatch(reason);
  });

  it('tells malformed, pending and invalid apart (kind)', () => {
    const pending = { ...r5, status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null };
    expect(verifyReceipt(pending)).toMatchObject({
      ok: false,
      kind: 'pending',
      code: 'not_sealed',
      reason: expect.stringMatching(/pending: its epoch is not sealed yet/),
    });
    expect(verifyReceipt({ ...r5, event: { ...r5.event, units: 6 } })).toMatchObject({ ok: false, kind: 'invalid' });
    expect(verifyReceipt({ a: 1 })).toMatchObject({
      ok: false,
      kind: 'malformed',
      code: 'malformed',
      reason: expect.stringMatching(/not a receipt: the version field is missing/),
    });
  });

  it.each([
    ['anchored with a null anchor', { ...r5, status: 'anchored', anchor: null }, /status says anchored but anchor is null/],
    [
      'sealed with an anchor',
      { ...r5, anchor: { network: 'testnet', package_id: '0x1', registry_id: '0x2', tx_digest: null, checkpoint: null } },
      /status says sealed but the receipt has an anchor/,
    ],
    ['an unknown top-level field', { ...r5, extra: true }, /unknown field "extra"/],
    ['an unknown event field', { ...r5, event: { ...r5.event, metadata: {} } }, /unknown field "event.metadata"/],
    [
      'an unknown anchor field',
      {
        ...r5,
        status: 'anchored',
        anchor: { network: 'testnet', package_id: '0x1', registry_id: '0x2', tx_digest: null, checkpoint: null, x: 1 },
      },
      /unknown field "anchor.x"/,
    ],
    ['a pending receipt with a proof', { ...r5, status: 'pending' }, /pending receipt has epoch null/],
    ['a sealed receipt without a proof', { ...r5, proof: null }, /status says sealed but proof is null/],
    ['a missing anchor', Object.fromEntries(Object.entries(r5).filter(([k]) => k !== 'anchor')), /anchor is missing/],
    ['an unknown status', { ...r5, status: 'final' }, /status must be one of pending, sealed, anchored/],
    [
      'a namespace over 128 characters',
      { ...r5, event: { ...r5.event, namespace: 'a'.repeat(129) } },
      /event.namespace must be 1 to 128 characters/,
    ],
    ['a 65-entry proof', { ...r5, proof: Array(65).fill(r5.root) }, /proof has 65 entries; an audit path has at most 64/],
  ])('reports %s as malformed', (_n, input, reason) => {
    const res = verifyReceipt(input);
    expect(res).toMatchObject({ ok: false, kind: 'malformed', code: 'malformed', reason: expect.stringMatching(reason) });
  });

  it('refuses a proof of 3 million entries on its length, before reading any entry', () => {
    // Entries that would throw if read: the length check must come first.
    let reads = 0;
    const proof = new Proxy(new Array(3_000_000).fill('00'.repeat(32)), {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    const res = verifyReceipt({ ...r5, proof });
    expect(res).toMatchObject({ ok: false, kind: 'malformed', reason: 'proof has 3000000 entries; an audit path has at most 64' });
    expect(reads).toBe(0);
  });

  it('never throws on junk (random mutations of a receipt)', () => {
    let seed = 99;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const junk: unknown[] = [undefined, null, 0, -1, 1.5, 2 ** 60, '', 'x', [], {}, true, NaN, Infinity, { toString: null }];
    // The fields verification reads (epoch, status and anchor only label the receipt offline).
    const keys: Array<keyof Receipt> = ['version', 'event', 'leaf_hash', 'leaf_index', 'tree_size', 'proof', 'root'];
    for (let i = 0; i < 2000; i++) {
      const r: Record<string, unknown> = JSON.parse(JSON.stringify(r5));
      const k = keys[rand(keys.length)]!;
      r[k] = junk[rand(junk.length)];
      if (rand(2) && r.event !== null && typeof r.event === 'object')
        (r.event as Record<string, unknown>)[['units', 'namespace', 'ts_ms', 'artifact_digest'][rand(4)]!] = junk[rand(junk.length)];
      expect(() => verifyReceipt(r)).not.toThrow();
      expect(verifyReceipt(r).ok).toBe(false);
    }
    expect(() => verifyReceipt(r5, { root: 'zz', size: 11 })).not.toThrow();
    expect(verifyReceipt(r5, { root: 'zz', size: 11 }).reason).toMatch(/trusted root is not 32 bytes/);
  });
});

describe('the verifier and the client run in a browser or an edge runtime', () => {
  it.each(['verify/index.ts', 'index.ts'])(
    'src/%s imports no Node-only module and uses no Node global, through its whole import graph',
    (entry) => {
      // Pure ESM without Node built-ins (the BIP-39 word list is a plain array the scrubber uses;
      // @noble/curves is the Ed25519 of the checkpoints auditPeriod checks).
      const allowed = /^(@noble\/hashes\/|@noble\/curves\/|@mysten\/sui\/bcs$|zod$|uuidv7$|@scure\/bip39\/wordlists\/english\.js$)/;
      const seen = new Set<string>();
      const visit = (file: string) => {
        if (seen.has(file)) return;
        seen.add(file);
        const src = readFileSync(file, 'utf8');
        const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1'); // comments may say anything
        expect(code, `${file} uses a Node global`).not.toMatch(/\b(Buffer|process|require)\s*[.(]/);
        for (const [, spec] of src.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) {
          if (spec!.startsWith('.')) visit(resolve(dirname(file), spec!));
          else expect(spec, `${file} imports ${spec}`).toMatch(allowed);
        }
      };
      visit(join(import.meta.dirname, '../../src', entry));
      expect([...seen].map((f) => f.split('/src/')[1])).toEqual(
        expect.arrayContaining(['verify/index.ts', 'event/leaf.ts', 'merkle/proof.ts', 'merkle/hash.ts']),
      );
      if (entry === 'index.ts') expect([...seen].map((f) => f.split('/src/')[1])).toContain('client/index.ts');
    },
  );
});
