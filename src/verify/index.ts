// verifyReceipt: checks a receipt while trusting nothing it can recompute. It rebuilds the leaf
// from the event fields, walks the audit path (RFC 9162 §2.1.3.2) with the index and size,
// and compares with the root: the receipt's own, or one passed in from a trusted source such
// as the Sui registry. Browser-safe (no Node-only module); never throws on malformed input.
import { leafHash } from '../event/leaf.ts';
import { HASH_SIZE } from '../merkle/hash.ts';
import { equalBytes, rootFromInclusionProof } from '../merkle/proof.ts';
import type { Receipt, ReceiptEvent } from '../receipt/format.ts';

export interface VerifyOptions {
  /** Trusted root (64 hex characters, or 32 bytes). Without it the receipt's own root is used. */
  root?: string | Uint8Array;
  /** Trusted tree size; required with `root` to bind the proof to the anchored tree. */
  size?: number;
}

export interface VerifyStep {
  step: 'format' | 'leaf' | 'path' | 'root';
  ok: boolean;
  detail: string;
  /** For `path`: each level of the walk, leaf side first (hex). */
  levels?: Array<{ sibling: string; side: 'left' | 'right'; hash: string }>;
}

export type VerifyResult =
  | { ok: true; reason: string; epoch: number; leaf_index: number; tree_size: number; root: string; trusted_root: boolean; steps: VerifyStep[] }
  | { ok: false; reason: string; steps: VerifyStep[] };

const HEX64 = /^[0-9a-fA-F]{64}$/;

export function verifyReceipt(receipt: unknown, options: VerifyOptions = {}): VerifyResult {
  const steps: VerifyStep[] = [];
  const fail = (step: VerifyStep['step'], reason: string): VerifyResult => {
    steps.push({ step, ok: false, detail: reason });
    return { ok: false, reason, steps };
  };
  try {
    const shape = checkShape(receipt);
    if (typeof shape === 'string') return fail('format', shape);
    const r = shape;
    steps.push({ step: 'format', ok: true, detail: `receipt v1 for ${r.event.namespace} / ${r.event.request_id}` });

    const rebuilt = leafHash(r.event);
    if (!equalBytes(rebuilt, hex(r.leaf_hash))) {
      return fail('leaf', 'the leaf hash does not match the event fields: the event was altered, or the receipt belongs to another event');
    }
    steps.push({ step: 'leaf', ok: true, detail: `leaf v1 rebuilt from the event fields hashes to ${r.leaf_hash.toLowerCase()}` });

    let size = r.tree_size;
    if (options.size !== undefined) {
      if (!Number.isSafeInteger(options.size) || options.size < 1) return fail('root', `the trusted tree size ${String(options.size)} is not a positive integer`);
      if (options.size !== r.tree_size) {
        return fail('root', `the receipt says tree size ${r.tree_size} but the trusted size for epoch ${r.epoch} is ${options.size}`);
      }
      size = options.size;
    }
    const levels: NonNullable<VerifyStep['levels']> = [];
    const walked = rootFromInclusionProof(rebuilt, r.leaf_index, size, r.proof.map(hex), (l) =>
      levels.push({ sibling: toHex(l.sibling), side: l.side, hash: toHex(l.hash) }),
    );
    if ('reason' in walked) return fail('path', walked.reason);
    const walkedHex = toHex(walked.root);
    steps.push({ step: 'path', ok: true, detail: `${r.proof.length} audit-path hashes from leaf ${r.leaf_index} of ${size} lead to ${walkedHex}`, levels });

    let expected: Uint8Array;
    const trusted = options.root !== undefined;
    if (options.root !== undefined) {
      if (typeof options.root === 'string' ? !HEX64.test(options.root) : options.root.length !== HASH_SIZE) {
        return fail('root', 'the trusted root is not 32 bytes (64 hex characters)');
      }
      expected = typeof options.root === 'string' ? hex(options.root) : options.root;
    } else expected = hex(r.root);
    if (!equalBytes(walked.root, expected)) {
      return fail('root', trusted ? `the proof leads to ${walkedHex}, not to the trusted root of epoch ${r.epoch}` : `the proof leads to ${walkedHex}, not to the receipt's root ${r.root.toLowerCase()}`);
    }
    const rootHex = toHex(expected);
    steps.push({ step: 'root', ok: true, detail: trusted ? `matches the trusted root ${rootHex}` : `matches the receipt's own root ${rootHex} (not checked against the chain)` });
    return {
      ok: true,
      reason: `leaf ${r.leaf_index} of ${size} in epoch ${r.epoch} is included under root ${rootHex}`,
      epoch: r.epoch,
      leaf_index: r.leaf_index,
      tree_size: size,
      root: rootHex,
      trusted_root: trusted,
      steps,
    };
  } catch (err) {
    return fail('format', `the receipt could not be read: ${(err as Error)?.message ?? String(err)}`);
  }
}

type SealedReceipt = Receipt & { epoch: number; leaf_index: number; tree_size: number; proof: string[]; root: string };

/** Field-by-field check of the receipt's shape; a string says what is wrong. */
function checkShape(x: unknown): SealedReceipt | string {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return 'the receipt is not a JSON object';
  const r = x as Record<string, unknown>;
  if (r.version !== 1) return `unsupported receipt version ${JSON.stringify(r.version)} (this verifier reads version 1)`;
  if (r.status === 'pending' || r.proof === null || r.proof === undefined) {
    return 'the receipt is pending: its epoch is not sealed yet, so there is no proof; fetch it again after the next seal';
  }
  const e = r.event as Record<string, unknown> | null;
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'event is missing or not an object';
  for (const f of ['namespace', 'request_id', 'caller', 'action'] as const) {
    if (typeof e[f] !== 'string') return `event.${f} must be a string`;
  }
  for (const f of ['units', 'ts_ms'] as const) {
    if (!Number.isSafeInteger(e[f]) || (e[f] as number) < 0) return `event.${f} must be an integer from 0 to 2^53−1`;
  }
  if (typeof e.artifact_digest !== 'string' || !(e.artifact_digest === '' || HEX64.test(e.artifact_digest))) {
    return 'event.artifact_digest must be empty or 64 hex characters';
  }
  if (typeof r.leaf_hash !== 'string' || !HEX64.test(r.leaf_hash)) return 'leaf_hash must be 64 hex characters';
  if (typeof r.root !== 'string' || !HEX64.test(r.root)) return 'root must be 64 hex characters';
  for (const f of ['epoch', 'leaf_index', 'tree_size'] as const) {
    if (!Number.isSafeInteger(r[f]) || (r[f] as number) < 0) return `${f} must be a non-negative integer`;
  }
  if (!Array.isArray(r.proof)) return 'proof must be an array of hashes';
  const bad = r.proof.findIndex((p) => typeof p !== 'string' || !HEX64.test(p));
  if (bad >= 0) return `proof[${bad}] must be 64 hex characters`;
  const event: ReceiptEvent = {
    namespace: e.namespace as string,
    request_id: e.request_id as string,
    caller: e.caller as string,
    action: e.action as string,
    units: e.units as number,
    artifact_digest: (e.artifact_digest as string).toLowerCase(),
    ts_ms: e.ts_ms as number,
  };
  return { ...(r as unknown as SealedReceipt), event };
}

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
