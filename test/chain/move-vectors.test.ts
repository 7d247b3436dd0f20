// The TypeScript twin of the Move registry, on the very vectors the Move tests are generated from.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesToHex, CORRECTION_KIND_CODE, encodeLeafV2, hexToBytes, leafHash, leafHashV2, LeafV2Bcs } from '../../src/event/leaf.ts';
import { hashChildren } from '../../src/merkle/hash.ts';
import { MoveAbort, RegistryModel, VERSION, verifyProof } from './registry-model.ts';
import {
  ANCHOR_CASES_FILE,
  anchorCases,
  generateVectorTests,
  inclusionCases,
  LEAF_CASES_FILE,
  LEAF_V2_CASES_FILE,
  leafCases,
  leafV2Cases,
  MOVE_VECTORS_FILE,
  parseVectorJson,
  RFC6962_DIR,
  stepRoot,
} from '../../scripts/gen-move-vectors.ts';
import {
  GOLDEN_CORRECTION_FILE,
  GOLDEN_MOVE_FILE,
  GOLDEN_RECEIPT_FILE,
  generateGoldenMove,
  type GoldenCorrectionFile,
  type GoldenFile,
} from '../../scripts/gen-golden-receipt.ts';

const hex = (h: string) => hexToBytes(h);
const MOVE_SOURCE = new URL('../../move/sources/registry.move', import.meta.url);

/** The integer tokens of a JSON text, as written: string literals blanked out first. */
function integerTokens(text: string): string[] {
  return [...text.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g)].map((m) => m[0]);
}

/** Every integer of a parsed value, as decimal digits. */
function integerValues(value: unknown): string[] {
  if (typeof value === 'number' || typeof value === 'bigint') return [String(value)];
  if (value && typeof value === 'object') return Object.values(value).flatMap(integerValues);
  return [];
}

describe('Move vectors', () => {
  it('move/tests/vectors_tests.move is what the generator makes of test/vectors (run npm run gen:move-vectors)', async () => {
    expect(readFileSync(MOVE_VECTORS_FILE, 'utf8')).toBe(await generateVectorTests());
  });

  it('move/tests/golden_tests.move is what scripts/gen-golden-receipt.ts makes of test/vectors/golden-receipt.json', async () => {
    const golden = JSON.parse(readFileSync(GOLDEN_RECEIPT_FILE, 'utf8')) as GoldenFile;
    const correction = JSON.parse(readFileSync(GOLDEN_CORRECTION_FILE, 'utf8')) as GoldenCorrectionFile;
    const move = readFileSync(GOLDEN_MOVE_FILE, 'utf8');
    expect(move).toBe(await generateGoldenMove(golden, correction));
    // The golden bytes appear in the Move test as they are in the files.
    for (const h of [golden.receipt.leaf_hash, golden.receipt.root, ...golden.receipt.proof]) expect(move).toContain(`x"${h}"`);
    for (const r of [correction.amend.receipt, correction.void.receipt])
      for (const h of [r.leaf_hash, r.root, r.event.corrects, ...r.proof]) expect(move).toContain(`x"${h}"`);
  });

  const vectorFiles = [
    ...readdirSync(RFC6962_DIR, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(RFC6962_DIR, f)),
    ANCHOR_CASES_FILE,
    LEAF_CASES_FILE,
    LEAF_V2_CASES_FILE,
  ];

  it.each(vectorFiles)('every integer of %s is read with its exact digits', (file) => {
    const text = readFileSync(file, 'utf8');
    expect(integerValues(parseVectorJson(text, file)).sort()).toEqual(integerTokens(text).sort());
  });

  it('parseVectorJson keeps 2^64 − 1 exact, where JSON.parse rounds it to 2^64, and refuses fractions', () => {
    expect(parseVectorJson('{"leafIdx": 18446744073709551615, "treeSize": 1}')).toEqual({ leafIdx: 18446744073709551615n, treeSize: 1 });
    expect(String(JSON.parse('18446744073709551615'))).toBe('18446744073709552000');
    expect(() => parseVectorJson('{"treeSize": 1.5}', 'x.json')).toThrow(/x\.json: "treeSize" is 1\.5, not an integer/);
  });

  // Each RFC 6962 case: the leafIdx and treeSize digits of its file, against the literal in its
  // Move test and the value handed to the twin.
  const generated = readFileSync(MOVE_VECTORS_FILE, 'utf8');
  it.each(inclusionCases())('$name: the Move test and the twin get the digits of the vector file', (c) => {
    const text = readFileSync(join(RFC6962_DIR, c.file), 'utf8');
    const digits = (key: string) => text.match(new RegExp(`"${key}"\\s*:\\s*(\\d+)`))![1];
    const body = generated.slice(generated.indexOf(`fun ${c.name}()`)).split(/\n}\n/)[0]!;
    const call = body.replace(/\s+/g, ' ').match(/registry::verify_proof\( ?x"[0-9a-f]*", (\d+), (\d+),/);
    expect(call, `no verify_proof call in fun ${c.name}`).not.toBeNull();
    expect([call![1], call![2]]).toEqual([digits('leafIdx'), digits('treeSize')]);
    expect([String(c.leafIdx), String(c.treeSize)]).toEqual([digits('leafIdx'), digits('treeSize')]);
  });

  it('the generated leaf tests hold the units and ts_ms of each leaf vector', () => {
    for (const [i, c] of leafCases().entries()) {
      const body = generated
        .slice(generated.indexOf(`fun leaf_v1_vector_${i}()`))
        .split(/\n}\n/)[0]!
        .replace(/\s+/g, ' ');
      expect(body).toMatch(new RegExp(`, ${c.event.units}, x"${c.event.artifact_digest}", ${c.event.ts_ms},? \\)`));
    }
  });

  it('the generated leaf v2 tests hold every field of each leaf v2 vector, and a verify_correction test exists', () => {
    expect(leafV2Cases().length).toBeGreaterThanOrEqual(4);
    for (const [i, c] of leafV2Cases().entries()) {
      const e = c.event;
      const body = generated
        .slice(generated.indexOf(`fun leaf_v2_vector_${i}()`))
        .split(/\n}\n/)[0]!
        .replace(/\s+/g, ' ');
      expect(body).toContain(`registry::leaf_hash_v2( b"${e.namespace}".to_string(), b"${e.request_id}".to_string(),`);
      expect(body).toMatch(
        new RegExp(`, ${e.units}, x"${e.artifact_digest}", ${e.ts_ms}, ${CORRECTION_KIND_CODE[e.kind]}, x"${e.corrects}",? \\);`),
      );
      expect(body).toContain(`assert!(hash == x"${c.leaf_hash}")`);
    }
    expect(generated).toContain('fun verify_correction_against_an_anchored_epoch()');
  });
});

describe('TypeScript twin of move/sources/registry.move', () => {
  it.each(inclusionCases())('verify_proof: $name', (c) => {
    expect(verifyProof(hex(c.leafHash), c.leafIdx, c.treeSize, c.proof.map(hex), hex(c.root))).toBe(c.valid);
  });

  it('verify_proof takes u64 values exactly and refuses what Move could not hold', () => {
    const leaf = hex('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(verifyProof(leaf, 0n, 1n, [], leaf)).toBe(true);
    expect(verifyProof(leaf, (1n << 64n) - 1n, 1n, [], leaf)).toBe(false);
    expect(() => verifyProof(leaf, 2 ** 64, 1, [], leaf)).toThrow(/leaf_index = 18446744073709552000 is not an exact integer/);
    expect(() => verifyProof(leaf, 1n << 64n, 1n, [], leaf)).toThrow(/outside u64/);
  });

  it.each(leafCases())('leaf_hash: $name', (c) => {
    expect(bytesToHex(leafHash(c.event))).toBe(c.leaf_hash);
  });

  it.each(leafV2Cases())('leaf_hash_v2: $name (encoder, BCS schema and vector agree)', (c) => {
    expect(bytesToHex(leafHashV2(c.event))).toBe(c.leaf_hash);
    const { kind, corrects, ...rest } = c.event;
    const schema = LeafV2Bcs.serialize({
      version: 2,
      ...rest,
      artifact_digest: [...hex(rest.artifact_digest)],
      kind: CORRECTION_KIND_CODE[kind],
      corrects: [...hex(corrects)],
    }).toBytes();
    expect(bytesToHex(schema)).toBe(c.leaf);
    expect(bytesToHex(encodeLeafV2(c.event))).toBe(c.leaf);
  });

  it('verify_correction against an anchored epoch (the generated Move test, mirrored)', () => {
    // The twin of verify_correction: leaf v2 rebuilt, then verify_inclusion, false for what leaf v2 forbids.
    const [original] = leafCases();
    const [voided] = leafV2Cases();
    const reg = new RegistryModel('0xreg');
    reg.anchor('0xreg', 0, hashChildren(leafHash(original!.event), leafHashV2(voided!.event)), 2, 1, 2, 0);
    const proof = [hex(original!.leaf_hash)];
    const verifyCorrection = (over: Partial<NonNullable<typeof voided>['event']>, index = 1) => {
      const e = { ...voided!.event, ...over };
      if (e.kind === 'void' && e.units !== 0) return false;
      if (e.corrects.length !== 64) return false;
      return reg.verifyInclusion(0, leafHashV2(e), index, proof);
    };
    expect(verifyCorrection({})).toBe(true);
    expect(verifyCorrection({ kind: 'amend' })).toBe(false);
    expect(verifyCorrection({ units: 1 })).toBe(false);
    expect(verifyCorrection({ corrects: voided!.event.corrects.slice(2) })).toBe(false);
    expect(verifyCorrection({ corrects: voided!.leaf_hash })).toBe(false);
    expect(verifyCorrection({}, 0)).toBe(false);
    // The same fields as a leaf v1 (verify_event) are another leaf.
    expect(reg.verifyEvent(0, voided!.event, 1, proof)).toBe(false);
  });

  it.each(anchorCases())('anchor: $name → $expect', (c) => {
    const reg = new RegistryModel('0xreg');
    const step = (s: (typeof c.steps)[number]) => {
      if (s.set_version !== undefined) reg.version = s.set_version;
      const cap = s.cap === 'other' ? '0xother' : '0xreg';
      if (s.op === 'migrate') reg.migrate(cap);
      else reg.anchor(cap, s.epoch!, hex(stepRoot(s)), s.size ?? 3, s.first_ts_ms ?? 1, s.last_ts_ms ?? 2, 1000);
    };
    if (c.expect === 'ok') {
      c.steps.forEach(step);
      expect(reg.nextEpoch).toBe(c.next_epoch);
      if (c.version !== undefined) expect(reg.version).toBe(c.version);
    } else {
      // Every step but the last succeeds; the last aborts with the named constant and changes nothing.
      c.steps.slice(0, -1).forEach(step);
      const last = c.steps.at(-1)!;
      if (last.set_version !== undefined) reg.version = last.set_version;
      const before = JSON.stringify({
        next: reg.nextEpoch,
        version: reg.version,
        epochs: [...reg.epochs.keys()],
        events: reg.events.length,
      });
      let thrown: unknown;
      try {
        step({ ...last, set_version: undefined });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(MoveAbort);
      expect((thrown as MoveAbort).constantName).toBe(c.expect);
      expect(JSON.stringify({ next: reg.nextEpoch, version: reg.version, epochs: [...reg.epochs.keys()], events: reg.events.length })).toBe(
        before,
      );
    }
  });

  it('an anchored epoch keeps its time range and anchoring time, and the event names registry, epoch, root and size', () => {
    const reg = new RegistryModel('0xreg');
    const root = hex('e89f2a6f84a8b3301f71d104ad12699c9d0c129570a46c40ce070c55271c57ec');
    reg.anchor('0xreg', 0, root, 1, 10, 20, 1_763_800_000_000);
    expect(reg.epochTimes(0)).toEqual([10, 20, 1_763_800_000_000]);
    expect(reg.events).toEqual([{ registry_id: '0xreg', epoch: 0, root, size: 1 }]);
  });

  it('every read and check aborts with EWrongVersion on a registry of another version', () => {
    const [a, b] = leafCases() as [ReturnType<typeof leafCases>[0], ReturnType<typeof leafCases>[0]];
    const reg = new RegistryModel('0xreg');
    reg.anchor('0xreg', 0, hashChildren(leafHash(a.event), leafHash(b.event)), 2, 1, 2, 0);
    reg.version = VERSION + 1;
    const abort = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ constantName: 'EWrongVersion' }));
    abort(() => reg.verifyInclusion(0, hex(a.leaf_hash), 0, [hex(b.leaf_hash)]));
    abort(() => reg.verifyEvent(0, a.event, 0, [hex(b.leaf_hash)]));
    abort(() => reg.epochTimes(0));
    abort(() => reg.anchor('0xreg', 1, hex(stepRoot({ epoch: 1 })), 1, 1, 2, 0));
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
    const move = readFileSync(MOVE_SOURCE, 'utf8');
    const declared = [...move.matchAll(/#\[error\]\s*const (E\w+)/g)].map((m) => m[1]).sort();
    const used = [
      ...new Set(
        anchorCases()
          .map((c) => c.expect)
          .filter((e) => e !== 'ok'),
      ),
    ].sort();
    expect(used).toEqual(declared); // every abort has a vector, and the vectors name no other
  });

  it('is at the VERSION of the Move module', () => {
    const move = readFileSync(MOVE_SOURCE, 'utf8');
    expect(move.match(/^const VERSION: u64 = (\d+);$/m)?.[1]).toBe(String(VERSION));
  });
});
