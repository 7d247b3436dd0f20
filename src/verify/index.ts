// verifyReceipt: checks a receipt while trusting nothing it can recompute. It rebuilds the leaf
// from the event fields, walks the audit path (RFC 9162 §2.1.3.2) with the index and size,
// and compares with the root: the receipt's own, or one passed in from a trusted source such
// as the Sui registry. A receipt v2 (a correction) is checked the same way over its leaf v2, and,
// given the receipt it corrects, its `corrects` link too. Browser-safe (no Node-only module);
// never throws on malformed input.
import { bytesToHex, hexToBytes, isHex64AnyCase } from '../encoding/hex.ts';
import { type CorrectionFields, leafHash, leafHashV2 } from '../event/leaf.ts';
import { LEAF_STRING_MAX } from '../event/limits.ts';
import { HASH_SIZE } from '../merkle/hash.ts';
import { equalBytes, rootFromInclusionProof } from '../merkle/proof.ts';
import type { AnyReceipt, ReceiptEvent } from '../receipt/format.ts';
import { kindOf, VerificationError, type VerifyCode, type VerifyFailure } from './error.ts';

export interface VerifyOptions {
  /** Trusted root (64 hex characters, or 32 bytes). Without it the receipt's own root is used. */
  root?: string | Uint8Array;
  /** Trusted tree size; required with `root` to bind the proof to the anchored tree. */
  size?: number;
  /**
   * For a receipt v2: the receipt of the version it corrects. Its leaf is rebuilt from its event
   * fields and must hash to this receipt's `corrects`, with the same namespace and time (and, for
   * a void, the same caller, action and digest). Only its event fields are read for this.
   */
  corrected?: unknown;
}

export interface VerifyStep {
  step: 'format' | 'leaf' | 'path' | 'root' | 'correction';
  ok: boolean;
  detail: string;
  /** For `path`: each level of the walk, leaf side first (hex). */
  levels?: Array<{ sibling: string; side: 'left' | 'right'; hash: string }>;
}

export { kindOf, VerificationError, VERIFY_CODES, type VerifyCode, type VerifyFailure } from './error.ts';

export type VerifyResult =
  | {
      ok: true;
      reason: string;
      epoch: number;
      leaf_index: number;
      tree_size: number;
      root: string;
      trusted_root: boolean;
      steps: VerifyStep[];
    }
  | { ok: false; kind: VerifyFailure; code: VerifyCode; reason: string; steps: VerifyStep[] };

/**
 * No genuine audit path is longer than 64 hashes (a tree of 2^64 leaves); checked before any
 * entry is looked at, so a hostile receipt with millions of entries costs nothing.
 */
export const MAX_PROOF_LENGTH = 64;

const RECEIPT_FIELDS = new Set([
  'version',
  'id',
  'status',
  'event',
  'leaf_hash',
  'epoch',
  'leaf_index',
  'tree_size',
  'proof',
  'root',
  'anchor',
  // A label, like id and status: which event replaced this version (not verified; the
  // correction's own receipt proves the link).
  'corrected_by',
]);
const EVENT_FIELDS = new Set(['namespace', 'request_id', 'caller', 'action', 'units', 'artifact_digest', 'ts_ms']);
const CORRECTION_FIELDS = new Set([...EVENT_FIELDS, 'kind', 'corrects']);
const KINDS = ['void', 'amend'];
const CORRECTED_BY_FIELDS = new Set(['id', 'kind']);
const ANCHOR_FIELDS = new Set(['network', 'package_id', 'registry_id', 'tx_digest', 'checkpoint']);
const STATUSES = ['pending', 'sealed', 'anchored'];

export function verifyReceipt(receipt: unknown, options: VerifyOptions = {}): VerifyResult {
  const steps: VerifyStep[] = [];
  const fail = (step: VerifyStep['step'], code: VerifyCode, reason: string): VerifyResult => {
    steps.push({ step, ok: false, detail: reason });
    return { ok: false, kind: kindOf(code), code, reason, steps };
  };
  try {
    const shape = checkShape(receipt);
    if (typeof shape === 'string') return fail('format', 'malformed', shape);
    if (shape.pending) {
      return fail(
        'format',
        'not_sealed',
        'the receipt is pending: its epoch is not sealed yet, so there is no proof to verify; fetch it again after the next seal',
      );
    }
    const r = shape.receipt;
    steps.push({
      step: 'format',
      ok: true,
      detail:
        r.version === 2
          ? `receipt v2 (${r.event.kind}) for ${r.event.namespace} / ${r.event.request_id}`
          : `receipt v1 for ${r.event.namespace} / ${r.event.request_id}`,
    });

    const rebuilt = rebuildLeafHash(r);
    if (!equalBytes(rebuilt, hexToBytes(r.leaf_hash))) {
      return fail(
        'leaf',
        'leaf_mismatch',
        'the leaf hash does not match the event fields: the event was altered, or the receipt belongs to another event',
      );
    }
    steps.push({
      step: 'leaf',
      ok: true,
      detail: `leaf v${r.version} rebuilt from the event fields hashes to ${r.leaf_hash.toLowerCase()}`,
    });

    let size = r.tree_size;
    if (options.size !== undefined) {
      if (!Number.isSafeInteger(options.size) || options.size < 1)
        return fail('root', 'size_mismatch', `the trusted tree size ${String(options.size)} is not a positive integer`);
      if (options.size !== r.tree_size) {
        return fail(
          'root',
          'size_mismatch',
          `the receipt says tree size ${r.tree_size} but the trusted size for epoch ${r.epoch} is ${options.size}`,
        );
      }
      size = options.size;
    }
    const levels: NonNullable<VerifyStep['levels']> = [];
    const walked = rootFromInclusionProof(rebuilt, r.leaf_index, size, r.proof.map(hexToBytes), (l) =>
      levels.push({ sibling: bytesToHex(l.sibling), side: l.side, hash: bytesToHex(l.hash) }),
    );
    if ('reason' in walked) return fail('path', walked.code, walked.reason);
    const walkedHex = bytesToHex(walked.root);
    steps.push({
      step: 'path',
      ok: true,
      detail: `${r.proof.length} audit-path hashes from leaf ${r.leaf_index} of ${size} lead to ${walkedHex}`,
      levels,
    });

    let expected: Uint8Array;
    const trusted = options.root !== undefined;
    if (options.root !== undefined) {
      if (
        typeof options.root === 'string'
          ? !isHex64AnyCase(options.root)
          : !(options.root instanceof Uint8Array) || options.root.length !== HASH_SIZE
      ) {
        return fail('root', 'root_mismatch', 'the trusted root is not 32 bytes (64 hex characters)');
      }
      expected = typeof options.root === 'string' ? hexToBytes(options.root) : options.root;
    } else expected = hexToBytes(r.root);
    if (!equalBytes(walked.root, expected)) {
      return fail(
        'root',
        'root_mismatch',
        trusted
          ? `the proof leads to ${walkedHex}, not to the trusted root of epoch ${r.epoch}`
          : `the proof leads to ${walkedHex}, not to the receipt's root ${r.root.toLowerCase()}`,
      );
    }
    // As with the size: a receipt that names another root than the trusted one is not a true
    // copy of this epoch's receipt, even though its path is right.
    if (trusted && !equalBytes(hexToBytes(r.root), expected)) {
      return fail(
        'root',
        'root_mismatch',
        `the path leads to the trusted root of epoch ${r.epoch}, but the receipt names another root, ${r.root.toLowerCase()}`,
      );
    }
    const rootHex = bytesToHex(expected);
    steps.push({
      step: 'root',
      ok: true,
      detail: trusted ? `matches the trusted root ${rootHex}` : `matches the receipt's own root ${rootHex} (not checked against the chain)`,
    });
    if (options.corrected !== undefined) {
      if (r.version !== 2)
        return fail('correction', 'correction_mismatch', 'a corrected receipt was given, but this receipt is v1: it corrects nothing');
      const link = checkCorrectionLink(r.event, options.corrected);
      if (link !== undefined) return fail('correction', link.code, link.reason);
      steps.push({ step: 'correction', ok: true, detail: `corrects the leaf ${r.event.corrects} of the given receipt` });
    }
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
    return fail('format', 'malformed', `the receipt could not be read: ${(err as Error)?.message ?? String(err)}`);
  }
}

export type VerifiedReceipt = Extract<VerifyResult, { ok: true }>;

/**
 * verifyReceipt for code that would rather throw: the verified receipt, or a VerificationError
 * whose `code` says why not (and `kind`, as in the result).
 */
export function assertReceipt(receipt: unknown, options: VerifyOptions = {}): VerifiedReceipt {
  const result = verifyReceipt(receipt, options);
  if (!result.ok) throw new VerificationError(result.code, result.reason, { kind: result.kind });
  return result;
}

type SealedReceipt = AnyReceipt & { epoch: number; leaf_index: number; tree_size: number; proof: string[]; root: string };

/** The leaf hash rebuilt from a receipt's event fields: leaf v1, or leaf v2 for a correction. */
function rebuildLeafHash(r: AnyReceipt): Uint8Array {
  return r.version === 2 ? leafHashV2(r.event) : leafHash(r.event);
}

/** A receipt's event fields, checked and normalised (lowercase hex), whatever its status. */
export function readReceiptEvent(
  x: unknown,
): { ok: true; version: 1 | 2; event: ReceiptEvent | CorrectionFields; leaf_hash: string } | { ok: false; reason: string } {
  if (!isObject(x)) return { ok: false, reason: 'the receipt is not a JSON object' };
  if (x.version !== 1 && x.version !== 2)
    return { ok: false, reason: `unsupported receipt version ${String(JSON.stringify(x.version)).slice(0, 40)}` };
  const event = checkEvent(x.event, x.version);
  if (typeof event === 'string') return { ok: false, reason: event };
  if (!isHex64AnyCase(x.leaf_hash)) return { ok: false, reason: 'leaf_hash must be 64 hex characters' };
  return { ok: true, version: x.version, event, leaf_hash: x.leaf_hash.toLowerCase() };
}

/**
 * Whether `correction` (the event of a receipt v2) corrects the version in `corrected` (a receipt
 * of any status): `corrects` is the leaf hash rebuilt from its fields, and what never changes did
 * not. Undefined when it does; else the code and a reason.
 */
function checkCorrectionLink(
  correction: CorrectionFields,
  corrected: unknown,
): { code: 'malformed' | 'correction_mismatch'; reason: string } | undefined {
  const prev = readReceiptEvent(corrected);
  if (!prev.ok) return { code: 'malformed', reason: `the corrected receipt: ${prev.reason}` };
  const prevHash = bytesToHex(prev.version === 2 ? leafHashV2(prev.event as CorrectionFields) : leafHash(prev.event));
  const mismatch = correctionMismatch(correction, prev.event, prevHash);
  return mismatch === undefined ? undefined : { code: 'correction_mismatch', reason: mismatch };
}

/**
 * What is wrong with `correction` as the next version after `prev` (whose leaf hash is
 * `prevHash`), by docs/design.md "Leaf (version 2)"; undefined if nothing is.
 */
export function correctionMismatch(correction: CorrectionFields, prev: ReceiptEvent, prevHash: string): string | undefined {
  if (correction.corrects !== prevHash)
    return `corrects is ${correction.corrects}, but the corrected receipt's event hashes to ${prevHash}: it corrects another version`;
  for (const f of ['namespace', 'ts_ms'] as const) {
    if (correction[f] !== prev[f])
      return `event.${f} is ${JSON.stringify(correction[f])} but the corrected event's is ${JSON.stringify(prev[f])}: a correction never changes it`;
  }
  if (correction.kind === 'void') {
    for (const f of ['caller', 'action', 'artifact_digest'] as const) {
      if (correction[f] !== prev[f])
        return `a void keeps the replaced version's ${f}, ${JSON.stringify(prev[f])}, but this one has ${JSON.stringify(correction[f])}`;
    }
  }
  if ('kind' in prev && (prev as CorrectionFields).kind === 'void') return 'the corrected version is a void: a void ends its chain';
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The first field of `o` not in `known`, if any (looked at without listing every key of a huge object). */
function unknownField(o: Record<string, unknown>, known: Set<string>): string | undefined {
  for (const k in o) if (Object.hasOwn(o, k) && !known.has(k)) return k;
  return undefined;
}

/**
 * Field-by-field check of the receipt's shape, sizes first: a string says what is wrong.
 * Nothing is converted or hashed until every length is within bounds.
 */
function checkShape(x: unknown): { pending: true } | { pending: false; receipt: SealedReceipt } | string {
  if (!isObject(x)) return 'the receipt is not a JSON object';
  const r = x;
  if (r.version !== 1 && r.version !== 2) {
    return r.version === undefined
      ? 'not a receipt: the version field is missing (a receipt v1 has "version": 1)'
      : `unsupported receipt version ${String(JSON.stringify(r.version)).slice(0, 40)} (this verifier reads versions 1 and 2)`;
  }
  const extra = unknownField(r, RECEIPT_FIELDS);
  if (extra !== undefined) return `unknown field "${extra.slice(0, 64)}": a receipt v1 has only ${[...RECEIPT_FIELDS].join(', ')}`;
  if (r.id !== undefined && !isCount(r.id)) return 'id must be a non-negative integer';
  if (r.status !== undefined && !STATUSES.includes(r.status as string)) return `status must be one of ${STATUSES.join(', ')}`;
  if (r.corrected_by !== undefined) {
    const by = r.corrected_by;
    if (!isObject(by) || !isCount(by.id) || !KINDS.includes(by.kind as string) || unknownField(by, CORRECTED_BY_FIELDS) !== undefined)
      return 'corrected_by must be {"id": <event id>, "kind": "void" | "amend"}';
  }
  for (const f of ['event', 'leaf_hash', 'epoch', 'leaf_index', 'tree_size', 'proof', 'root', 'anchor'] as const) {
    if (r[f] === undefined)
      return `${f} is missing (a receipt v1 has ${f}${f === 'anchor' || f === 'proof' || f === 'root' || f === 'epoch' || f === 'leaf_index' || f === 'tree_size' ? ', null while it does not apply' : ''})`;
  }

  const event = checkEvent(r.event, r.version);
  if (typeof event === 'string') return event;
  if (!isHex64AnyCase(r.leaf_hash)) return 'leaf_hash must be 64 hex characters';

  const a = r.anchor;
  if (a !== null) {
    if (!isObject(a)) return 'anchor must be null or an object';
    const extraAnchor = unknownField(a, ANCHOR_FIELDS);
    if (extraAnchor !== undefined)
      return `unknown field "anchor.${extraAnchor.slice(0, 64)}": an anchor has only ${[...ANCHOR_FIELDS].join(', ')}`;
    for (const f of ['network', 'package_id', 'registry_id'] as const) {
      if (typeof a[f] !== 'string' || (a[f] as string).length < 1 || (a[f] as string).length > 128)
        return `anchor.${f} must be a string of 1 to 128 characters`;
    }
    for (const f of ['tx_digest', 'checkpoint'] as const) {
      if (a[f] !== null && (typeof a[f] !== 'string' || (a[f] as string).length > 128))
        return `anchor.${f} must be null or a string of at most 128 characters`;
    }
  }
  if (r.status === 'anchored' && a === null) return 'status says anchored but anchor is null: the receipt contradicts itself';
  if ((r.status === 'sealed' || r.status === 'pending') && a !== null)
    return `status says ${r.status} but the receipt has an anchor: the receipt contradicts itself`;

  const sealedFields = ['epoch', 'leaf_index', 'tree_size', 'proof', 'root'] as const;
  if (r.status === 'pending' || (r.status === undefined && r.proof === null)) {
    const set = sealedFields.find((f) => r[f] !== null);
    if (set !== undefined)
      return `a pending receipt has ${set} null (and no proof), but this one has a value: the receipt contradicts itself`;
    return { pending: true };
  }
  if (r.proof === null) return `status says ${String(r.status)} but proof is null: the receipt contradicts itself`;
  if (!isHex64AnyCase(r.root)) return 'root must be 64 hex characters';
  for (const f of ['epoch', 'leaf_index', 'tree_size'] as const) {
    if (!isCount(r[f])) return `${f} must be a non-negative integer`;
  }
  if (!Array.isArray(r.proof)) return 'proof must be an array of hashes';
  // The length first: a proof of millions of entries is refused before one entry is read.
  if (r.proof.length > MAX_PROOF_LENGTH) return `proof has ${r.proof.length} entries; an audit path has at most ${MAX_PROOF_LENGTH}`;
  const bad = r.proof.findIndex((p) => !isHex64AnyCase(p));
  if (bad >= 0) return `proof[${bad}] must be 64 hex characters`;
  return { pending: false, receipt: { ...(r as unknown as SealedReceipt), event } as SealedReceipt };
}

/** The event of a receipt of `version`, checked field by field and normalised; a string says what is wrong. */
function checkEvent(e: unknown, version: 1 | 2): ReceiptEvent | CorrectionFields | string {
  if (!isObject(e)) return 'event must be an object';
  const known = version === 2 ? CORRECTION_FIELDS : EVENT_FIELDS;
  const extraEvent = unknownField(e, known);
  if (extraEvent !== undefined)
    return `unknown field "event.${extraEvent.slice(0, 64)}": ${version === 2 ? 'the event of a receipt v2' : 'an event'} has only ${[...known].join(', ')}`;
  // The API's own limits: a receipt can only hold what the API accepted.
  for (const [f, max] of Object.entries(LEAF_STRING_MAX)) {
    const v = e[f];
    if (typeof v !== 'string') return `event.${f} must be a string`;
    if (v.length < 1 || v.length > max) return `event.${f} must be 1 to ${max} characters`;
  }
  for (const f of ['units', 'ts_ms'] as const) {
    if (!isCount(e[f])) return `event.${f} must be an integer from 0 to 2^53−1`;
  }
  if (!(e.artifact_digest === '' || isHex64AnyCase(e.artifact_digest))) return 'event.artifact_digest must be empty or 64 hex characters';
  const event: ReceiptEvent = {
    namespace: e.namespace as string,
    request_id: e.request_id as string,
    caller: e.caller as string,
    action: e.action as string,
    units: e.units as number,
    artifact_digest: (e.artifact_digest as string).toLowerCase(),
    ts_ms: e.ts_ms as number,
  };
  if (version === 1) return event;
  if (!KINDS.includes(e.kind as string)) return 'event.kind must be "void" or "amend" (a receipt v2 is a correction)';
  if (!isHex64AnyCase(e.corrects)) return 'event.corrects must be 64 hex characters (the leaf hash of the version it replaces)';
  if (e.kind === 'void' && e.units !== 0) return 'event.units of a void must be 0';
  return { ...event, kind: e.kind as CorrectionFields['kind'], corrects: e.corrects.toLowerCase() };
}

export {
  netTotals,
  receiptsOfPageSet,
  type NetTotalGroup,
  type NetTotals,
  type NetTotalsOptions,
  type Units,
} from './totals.ts';

export {
  auditPeriod,
  verifyProofBundle,
  AUDIT_CODES,
  MAX_PROBLEMS,
  type AnchorReader,
  type AuditCode,
  type AuditOptions,
  type AuditProblem,
  type AuditProgress,
  type AuditReport,
  type AuditTotals,
  type BundleCheckOptions,
  type BundleResult,
} from './audit.ts';
