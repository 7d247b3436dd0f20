// Writes move/tests/vectors_tests.move from the vectors in test/vectors/: every RFC 6962 inclusion
// case (test/vectors/rfc6962, the project's copy of transparency-dev/merkle's), the leaf v1 and
// v2 (correction) vectors, and the anchoring scenarios of anchor-cases.json. test/chain/move-vectors.test.ts fails
// when the committed file differs from what this produces, and runs the TypeScript twin on the
// same inputs.
//   node scripts/gen-move-vectors.ts
// Vector files are read with parseVectorJson, never JSON.parse: a u64 such as 2^64 - 1 must reach
// the Move source and the twin with its exact digits, not rounded to the nearest double.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { bytesToHex, CORRECTION_KIND_CODE, type CorrectionKind, leafHash, leafHashV2 } from '../src/event/leaf.ts';
import { hashChildren } from '../src/merkle/hash.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MOVE_VECTORS_FILE = join(ROOT, 'move/tests/vectors_tests.move');
export const VECTORS_DIR = join(ROOT, 'test/vectors');
export const RFC6962_DIR = join(VECTORS_DIR, 'rfc6962/inclusion');

export interface InclusionCase {
  file: string;
  name: string;
  leafIdx: bigint;
  treeSize: bigint;
  root: string;
  leafHash: string;
  proof: string[];
  valid: boolean;
}
/**
 * One call on the registry: `anchor` (the default) or `migrate`, with the registry's own cap
 * unless `cap` is 'other'. `set_version` first puts the registry at that version, standing for
 * a registry an upgrade left behind (or moved ahead).
 */
export interface AnchorStep {
  op?: 'anchor' | 'migrate';
  epoch?: number;
  root_bytes?: number;
  size?: number;
  first_ts_ms?: number;
  last_ts_ms?: number;
  cap?: 'own' | 'other';
  set_version?: number;
}
export interface AnchorCase {
  name: string;
  steps: AnchorStep[];
  expect: string;
  next_epoch?: number;
  version?: number;
}
export interface LeafCase {
  name: string;
  event: { namespace: string; request_id: string; caller: string; action: string; units: number; artifact_digest: string; ts_ms: number };
  leaf: string;
  leaf_hash: string;
}

export interface LeafV2Case {
  name: string;
  event: LeafCase['event'] & { kind: CorrectionKind; corrects: string };
  leaf: string;
  leaf_hash: string;
}

const hexOf = (b64: string | null) => (b64 ? Buffer.from(b64, 'base64').toString('hex') : '');

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

/**
 * JSON.parse that keeps every integer exact: an integer token becomes a number when it is a safe
 * integer (|n| ≤ 2^53 − 1) and a bigint of its own digits otherwise. A number with a fraction or
 * an exponent is refused (vectors hold integers only). Uses the source text the reviver gets
 * (JSON.parse source text access: Node ≥ 21).
 */
export function parseVectorJson(text: string, file = 'vector file'): unknown {
  const reviver: Reviver = (key, value, context) => {
    if (typeof value !== 'number') return value;
    const source = context?.source;
    if (source === undefined)
      throw new Error(
        `parseVectorJson needs JSON.parse source text access (Node ≥ 21); run it with the project's Node (npx node / npm run)`,
      );
    if (!/^-?(0|[1-9][0-9]*)$/.test(source))
      throw new Error(`${file}: "${key}" is ${source}, not an integer: vector files hold integers only`);
    return Number.isSafeInteger(value) ? value : BigInt(source);
  };
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
}

const U64_MAX = (1n << 64n) - 1n;

/** A u64 of a vector file, exactly, or an error naming the file and the field. */
function u64(value: unknown, field: string, file: string): bigint {
  if ((typeof value !== 'number' || !Number.isInteger(value)) && typeof value !== 'bigint')
    throw new Error(`${file}: ${field} must be an integer, got ${String(value)}`);
  const n = BigInt(value);
  if (n < 0n || n > U64_MAX) throw new Error(`${file}: ${field} = ${n} is outside u64 (0 … 2^64 − 1)`);
  return n;
}

/** Every integer in a parsed vector file must fit a JS number: the anchor and leaf vectors feed number APIs. */
function safeIntegersOnly<T>(value: T, file: string, path = '$'): T {
  if (typeof value === 'bigint')
    throw new Error(`${file}: ${path} = ${value} is beyond 2^53 − 1; the twin and the leaf encoder take it as a JS number`);
  if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) safeIntegersOnly(v, file, `${path}.${k}`);
  return value;
}

const readVector = (path: string) => parseVectorJson(readFileSync(path, 'utf8'), path);

export function inclusionCases(): InclusionCase[] {
  const seen = new Set<string>();
  return readdirSync(RFC6962_DIR, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const v = readVector(join(RFC6962_DIR, f)) as {
        leafIdx: unknown;
        treeSize: unknown;
        root: string | null;
        leafHash: string | null;
        proof: string[] | null;
        wantErr?: boolean;
      };
      const name = `rfc6962_${f
        .replace(/\.json$/, '')
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '_')
        .replace(/^_|_$/g, '')}`;
      if (seen.has(name)) throw new Error(`two vectors map to ${name}`);
      seen.add(name);
      return {
        file: f,
        name,
        leafIdx: u64(v.leafIdx, 'leafIdx', f),
        treeSize: u64(v.treeSize, 'treeSize', f),
        root: hexOf(v.root),
        leafHash: hexOf(v.leafHash),
        proof: (v.proof ?? []).map(hexOf),
        valid: !v.wantErr,
      };
    });
}

export const ANCHOR_CASES_FILE = join(VECTORS_DIR, 'anchor-cases.json');
export const LEAF_CASES_FILE = join(VECTORS_DIR, 'leaf-v1.json');
export const LEAF_V2_CASES_FILE = join(VECTORS_DIR, 'leaf-v2.json');

export function anchorCases(): AnchorCase[] {
  return safeIntegersOnly((readVector(ANCHOR_CASES_FILE) as { cases: AnchorCase[] }).cases, ANCHOR_CASES_FILE);
}

export function leafCases(): LeafCase[] {
  return safeIntegersOnly((readVector(LEAF_CASES_FILE) as { cases: LeafCase[] }).cases, LEAF_CASES_FILE);
}

export function leafV2Cases(): LeafV2Case[] {
  return safeIntegersOnly((readVector(LEAF_V2_CASES_FILE) as { cases: LeafV2Case[] }).cases, LEAF_V2_CASES_FILE);
}

/** The root anchored by a step: `root_bytes` bytes of 0xab (32 unless the case says otherwise). */
export const stepRoot = (s: AnchorStep) => 'ab'.repeat(s.root_bytes ?? 32);

const vec = (hexes: string[]) => `vector[${hexes.map((h) => `x"${h}"`).join(', ')}]`;
const str = (s: string) => `b"${s.replace(/[\\"]/g, (c) => `\\${c}`)}".to_string()`;

export async function generateVectorTests(): Promise<string> {
  const out: string[] = [];
  out.push(`// GENERATED by scripts/gen-move-vectors.ts from test/vectors/; do not edit.
// The TypeScript twin (test/chain/registry-model.ts) runs on the same inputs in
// test/chain/move-vectors.test.ts, which also fails when this file is out of date.
#[test_only]
module receipts::vectors_tests;

use receipts::registry::{Self, Registry};
use sui::{clock, test_scenario};

const ADMIN: address = @0xA;
`);

  for (const c of inclusionCases()) {
    out.push(`#[test]
fun ${c.name}() {
    let proof = ${vec(c.proof)};
    assert!(registry::verify_proof(x"${c.leafHash}", ${c.leafIdx}, ${c.treeSize}, &proof, &x"${c.root}") == ${c.valid});
}
`);
  }

  for (const [i, c] of leafCases().entries()) {
    const e = c.event;
    out.push(`#[test]
fun leaf_v1_vector_${i}() {
    let hash = registry::leaf_hash(${str(e.namespace)}, ${str(e.request_id)}, ${str(e.caller)}, ${str(e.action)}, ${e.units}, x"${e.artifact_digest}", ${e.ts_ms});
    assert!(hash == x"${c.leaf_hash}");
}
`);
  }

  for (const [i, c] of leafV2Cases().entries()) {
    const e = c.event;
    out.push(`#[test]
fun leaf_v2_vector_${i}() {
    let hash = registry::leaf_hash_v2(${str(e.namespace)}, ${str(e.request_id)}, ${str(e.caller)}, ${str(e.action)}, ${e.units}, x"${e.artifact_digest}", ${e.ts_ms}, ${CORRECTION_KIND_CODE[e.kind]}, x"${e.corrects}");
    assert!(hash == x"${c.leaf_hash}");
}
`);
  }

  for (const c of anchorCases()) {
    const attr = c.expect === 'ok' ? '#[test]' : `#[test, expected_failure(abort_code = registry::${c.expect})]`;
    const steps = c.steps
      .map((s) => {
        const cap = s.cap === 'other' ? '&other_cap' : '&cap';
        const call =
          s.op === 'migrate'
            ? `registry::migrate(&mut reg, ${cap});`
            : `registry::anchor(&mut reg, ${cap}, ${s.epoch}, x"${stepRoot(s)}", ${s.size ?? 3}, ${s.first_ts_ms ?? 1}, ${s.last_ts_ms ?? 2}, &clock);`;
        return `${s.set_version !== undefined ? `    reg.set_version_for_testing(${s.set_version});\n` : ''}    ${call}`;
      })
      .join('\n');
    out.push(`${attr}
fun anchor_${c.name}() {
    let mut scenario = test_scenario::begin(ADMIN);
    let cap = registry::create_registry(scenario.ctx());
    let other_cap = registry::create_registry(scenario.ctx());
    scenario.next_tx(ADMIN);
    let mut reg = scenario.take_shared_by_id<Registry>(cap.cap_registry_id());
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(1_000);
${steps}
${c.next_epoch !== undefined ? `    assert!(reg.next_epoch() == ${c.next_epoch});\n` : ''}${c.version !== undefined ? `    assert!(reg.version() == ${c.version});\n` : ''}    test_scenario::return_shared(reg);
    clock.destroy_for_testing();
    transfer::public_transfer(cap, ADMIN);
    transfer::public_transfer(other_cap, ADMIN);
    scenario.end();
}
`);
  }

  // verify_inclusion and verify_event against an anchored epoch: the two leaf vectors as a tree of 2.
  const [a, b] = leafCases() as [LeafCase, LeafCase];
  const root = bytesToHex(hashChildren(leafHash(a.event), leafHash(b.event)));
  const e = a.event;
  const event = (units: number, digest: string, proof: string[], epoch = 0) =>
    `registry::verify_event(&reg, ${epoch}, ${str(e.namespace)}, ${str(e.request_id)}, ${str(e.caller)}, ${str(e.action)}, ${units}, x"${digest}", ${e.ts_ms}, 0, ${vec(proof)})`;
  out.push(`#[test]
fun verify_against_an_anchored_epoch() {
    let mut scenario = test_scenario::begin(ADMIN);
    let cap = registry::create_registry(scenario.ctx());
    scenario.next_tx(ADMIN);
    let mut reg = scenario.take_shared_by_id<Registry>(cap.cap_registry_id());
    let clock = clock::create_for_testing(scenario.ctx());
    registry::anchor(&mut reg, &cap, 0, x"${root}", 2, 1, 2, &clock);
    assert!(reg.is_anchored(0));
    let (stored_root, stored_size) = reg.epoch_root(0);
    assert!(stored_root == x"${root}" && stored_size == 2);
    assert!(registry::verify_inclusion(&reg, 0, x"${a.leaf_hash}", 0, ${vec([b.leaf_hash])}));
    assert!(registry::verify_inclusion(&reg, 0, x"${b.leaf_hash}", 1, ${vec([a.leaf_hash])}));
    assert!(!registry::verify_inclusion(&reg, 0, x"${a.leaf_hash}", 1, ${vec([b.leaf_hash])}));
    assert!(!registry::verify_inclusion(&reg, 1, x"${a.leaf_hash}", 0, ${vec([b.leaf_hash])}));
    assert!(!registry::verify_inclusion(&reg, 0, x"${a.leaf_hash}", 0, ${vec([a.leaf_hash])}));
    assert!(${event(e.units, e.artifact_digest, [b.leaf_hash])});
    assert!(!${event(e.units + 1, e.artifact_digest, [b.leaf_hash])});
    assert!(!${event(e.units, e.artifact_digest.slice(2), [b.leaf_hash])});
    assert!(!${event(e.units, e.artifact_digest, [b.leaf_hash], 1)});
    test_scenario::return_shared(reg);
    clock.destroy_for_testing();
    transfer::public_transfer(cap, ADMIN);
    scenario.end();
}
`);
  // verify_correction against an anchored epoch: leaf v1 vector 0 and its void (leaf v2 vector 0)
  // as a tree of 2; the void is leaf 1. Every field of leaf v2 is bound by the hash, and what
  // leaf v2 does not allow (kind 3, a void with units, corrects not 32 bytes) is false.
  const original = leafCases()[0]!;
  const voided = leafV2Cases()[0]!;
  const v = voided.event;
  const correctionRoot = bytesToHex(hashChildren(leafHash(original.event), leafHashV2(v)));
  const correction = (over: Partial<{ units: number; kind: number; corrects: string; index: number; digest: string }> = {}) =>
    `registry::verify_correction(&reg, 0, ${str(v.namespace)}, ${str(v.request_id)}, ${str(v.caller)}, ${str(v.action)}, ${over.units ?? v.units}, x"${over.digest ?? v.artifact_digest}", ${v.ts_ms}, ${over.kind ?? CORRECTION_KIND_CODE[v.kind]}, x"${over.corrects ?? v.corrects}", ${over.index ?? 1}, ${vec([original.leaf_hash])})`;
  out.push(`#[test]
fun verify_correction_against_an_anchored_epoch() {
    let mut scenario = test_scenario::begin(ADMIN);
    let cap = registry::create_registry(scenario.ctx());
    scenario.next_tx(ADMIN);
    let mut reg = scenario.take_shared_by_id<Registry>(cap.cap_registry_id());
    let clock = clock::create_for_testing(scenario.ctx());
    registry::anchor(&mut reg, &cap, 0, x"${correctionRoot}", 2, 1, 2, &clock);
    assert!(${correction()});
    assert!(!${correction({ kind: CORRECTION_KIND_CODE.amend })});
    assert!(!${correction({ kind: 3 })});
    assert!(!${correction({ units: 1 })});
    assert!(!${correction({ corrects: v.corrects.slice(2) })});
    assert!(!${correction({ corrects: voided.leaf_hash })});
    assert!(!${correction({ digest: v.artifact_digest.slice(2) })});
    assert!(!${correction({ index: 0 })});
    assert!(!registry::verify_event(&reg, 0, ${str(v.namespace)}, ${str(v.request_id)}, ${str(v.caller)}, ${str(v.action)}, ${v.units}, x"${v.artifact_digest}", ${v.ts_ms}, 1, ${vec([original.leaf_hash])}));
    test_scenario::return_shared(reg);
    clock.destroy_for_testing();
    transfer::public_transfer(cap, ADMIN);
    scenario.end();
}
`);
  return prettier.format(out.join('\n'), { parser: 'move', plugins: ['@mysten/prettier-plugin-move'], filepath: MOVE_VECTORS_FILE });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(MOVE_VECTORS_FILE, await generateVectorTests());
  console.log(`wrote ${MOVE_VECTORS_FILE}`);
}
