// auditPeriod: checks a whole bill without trusting the server that issued it. It reads every
// page of a period's usage with receipts, verifies each receipt to its epoch root, each epoch
// root to a checkpoint of the epoch log signed by a pinned log key (and cosigned by enough
// pinned witnesses), recomputes the totals per action and compares them with the server's.
// verifyProofBundle checks one GET /v1/events/:id/proof bundle the same way (receipts verify).
// Browser-safe: no Node-only module; the network is an injected `fetch`.
import { bytesToHex, hexToBytes, isHex64AnyCase } from '../encoding/hex.ts';
import { CheckpointError, type NoteVerifier } from '../checkpoint/index.ts';
import { parseCheckpoint, verifyCheckpoint } from '../checkpoint/checkpoint.ts';
import { parseCosignerKey } from '../checkpoint/cosignature.ts';
import { epochLeafHash } from '../checkpoint/epoch-header.ts';
import { parseVerifierKey, SIG_ED25519 } from '../checkpoint/note.ts';
import { classify, validateHistory, type ClassificationPeriod } from '../event/classification.ts';
import { verifyConsistency } from '../merkle/consistency.ts';
import { equalBytes, rootFromInclusionProof } from '../merkle/proof.ts';
import type { CorrectionFields } from '../event/leaf.ts';
import type { AnyReceipt, Anchor, ReceiptEvent } from '../receipt/format.ts';
import { correctionMismatch, verifyReceipt } from './index.ts';

/**
 * Each lie (or failure) an audit reports, one code each; programs switch on `code`:
 * - `tampered_event`: an event's fields do not hash to its leaf hash;
 * - `bad_proof`: a receipt whose audit path does not lead to its own root (or is malformed);
 * - `not_sealed`: an event of the period has no proof yet (its epoch is not sealed): not backed;
 * - `foreign_event`: an event outside the namespace or period asked for, or past the snapshot;
 * - `duplicate_event`: the same request id billed twice;
 * - `out_of_order`: pages not in (ts_ms, id) order, or a cursor that does not continue the page;
 * - `omitted_events`: a page shorter than asked that still has a next page, or fewer receipts
 *   than the server's own event count;
 * - `unsigned_root`: a receipt under an epoch root the signed epoch log does not hold;
 * - `wrong_log_key`: a checkpoint not signed by any given log key (or its origin is not the key's name);
 * - `too_few_witnesses`: a checkpoint cosigned by fewer than minWitnesses of the given witnesses;
 * - `bad_checkpoint`: a checkpoint that is not a signed note, or whose signature by a given key fails;
 * - `fork`: two signed checkpoints of the same size with different roots, or two sizes that the
 *   log cannot prove consistent (the log is not append-only);
 * - `totals_mismatch`: the server's totals (overall or per action) are not the receipts' sums;
 * - `inconsistent_pages`: pages of one query answering different totals or snapshots;
 * - `chain_mismatch`: with a chain reader, an anchored epoch whose root or size on chain differs
 *   or that the registry does not hold;
 * - `server_error`: an answer the audit could not use (HTTP error, not JSON, too large, wrong shape).
 */
export const AUDIT_CODES = [
  'tampered_event',
  'bad_proof',
  'not_sealed',
  'foreign_event',
  'duplicate_event',
  'out_of_order',
  'omitted_events',
  'unsigned_root',
  'wrong_log_key',
  'too_few_witnesses',
  'bad_checkpoint',
  'fork',
  'totals_mismatch',
  'inconsistent_pages',
  'chain_mismatch',
  'server_error',
] as const;
export type AuditCode = (typeof AUDIT_CODES)[number];

export interface AuditProblem {
  code: AuditCode;
  message: string;
  /** The event concerned, when there is one. */
  id?: number;
  request_id?: string;
  epoch?: number;
  action?: string;
  /** Checkpoint size concerned. */
  size?: number;
}

/** Counts and unit sums; units as a number while exact, else a decimal string (as /v1/usage). */
export interface AuditTotals {
  events: number;
  units: number | string;
  billable_events: number;
  billable_units: number | string;
}

export interface AuditReport {
  /** True only when no problem was found: every number is backed by what was checked. */
  ok: boolean;
  /** `log`: roots checked against signed checkpoints; `server`: trustServer, nothing outside the server checked. */
  trust: 'log' | 'server';
  /** Things said loudly that are not lies (trustServer, chain checks skipped, …). */
  warnings: string[];
  problems: AuditProblem[];
  /** Problems found beyond the MAX_PROBLEMS listed (counted, never dropped silently). */
  problems_left_off: number;
  namespace: string;
  from: number;
  to: number;
  /** The snapshot (event ids ≤ as_of_seq) every page answered for. */
  as_of_seq: number | null;
  pages: number;
  events: number;
  units: number | string;
  billable_events: number;
  billable_units: number | string;
  by_action: Record<string, AuditTotals>;
  /** Distinct epochs the period's events are in. */
  epochs: number;
  /** Distinct signed checkpoints the epochs were checked against. */
  checkpoints: number;
  /** Fewest given witnesses that cosigned any checkpoint relied on (0 without witnesses). */
  witnesses: number;
  /** The log key that signed the checkpoints (its vkey), when one did. */
  log_key: string | null;
  server_totals: AuditTotals | null;
  server_by_action: Record<string, AuditTotals> | null;
  recomputed_totals: AuditTotals;
  /** With a chain reader: epochs checked on chain, and epochs with no anchor (not checked there). */
  chain: { checked: number; unanchored: number } | null;
}

export interface AuditProgress {
  pages: number;
  events: number;
}

/** Reads an anchored epoch's root and size on chain (the CLI's --rpc passes one over SuiChain). */
export type AnchorReader = (anchor: Anchor, epoch: number) => Promise<{ root: string; size: number } | null>;

export interface AuditOptions {
  /** The service's base URL, e.g. https://receipts.example.com */
  url: string;
  /** An API key that may read the namespace. Sent as a bearer token only; never in a report. */
  key: string;
  namespace: string;
  /** The period [from, to): epoch milliseconds or RFC 3339 date-times. */
  from: number | string;
  to: number | string;
  /** Pinned verifier keys of the log (`name+hex8+base64`, type 0x01). */
  logKeys: string[];
  /** Pinned witness verifier keys (type 0x01 or 0x04). */
  witnesses?: string[];
  /** Cosignatures needed on each checkpoint; default: every witness given. */
  minWitnesses?: number;
  /**
   * With no logKeys: take epoch roots from the server's receipts without a signed log (the report
   * says so loudly). Log keys given are checked whatever this says.
   */
  trustServer?: boolean;
  fetch?: typeof globalThis.fetch;
  onProgress?: (p: AuditProgress) => void;
  /** Receipts per page, 1 … 1000 (default 1000). */
  pageSize?: number;
  /** Also check anchored roots on chain. */
  readAnchor?: AnchorReader;
}

/** At most this many problems are listed; the rest are counted in problems_left_off. */
export const MAX_PROBLEMS = 200;
/** The largest answer read: a page of 1,000 receipts is about 3 MB. */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
const MAX_PAGE = 1000;

/** Stops the audit: an answer it cannot go on without. */
class Stop extends Error {}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

function instant(v: unknown, field: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && v.length <= 64) {
    if (/^\d{1,16}$/.test(v) && Number.isSafeInteger(Number(v))) return Number(v);
    const ms = RFC3339.test(v) ? Date.parse(v) : Number.NaN;
    if (Number.isSafeInteger(ms) && ms >= 0) return ms;
  }
  throw new TypeError(`${field} must be epoch milliseconds (an integer ≥ 0) or an RFC 3339 date-time, not ${String(v).slice(0, 64)}`);
}

const exact = (n: bigint): number | string => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

interface Sum {
  events: number;
  units: bigint;
  billable_events: number;
  billable_units: bigint;
}
const zero = (): Sum => ({ events: 0, units: 0n, billable_events: 0, billable_units: 0n });
const totalsOf = (s: Sum): AuditTotals => ({
  events: s.events,
  units: exact(s.units),
  billable_events: s.billable_events,
  billable_units: exact(s.billable_units),
});

/** A server's totals object, read defensively: counts and units as numbers or decimal strings. */
function readTotals(v: unknown): Sum | null {
  if (!isObject(v)) return null;
  const count = (x: unknown) => (Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : null);
  const units = (x: unknown) =>
    Number.isSafeInteger(x) && (x as number) >= 0 ? BigInt(x as number) : typeof x === 'string' && /^\d{1,40}$/.test(x) ? BigInt(x) : null;
  const e = count(v.events);
  const u = units(v.units);
  const be = count(v.billable_events);
  const bu = units(v.billable_units);
  if (e === null || u === null || be === null || bu === null) return null;
  return { events: e, units: u, billable_events: be, billable_units: bu };
}

const sameSum = (a: Sum, b: Sum) =>
  a.events === b.events && a.units === b.units && a.billable_events === b.billable_events && a.billable_units === b.billable_units;

const describeSum = (s: Sum) =>
  `${s.events} events, ${s.units} units, ${s.billable_events} billable events, ${s.billable_units} billable units`;

// ---------------------------------------------------------------------------------------------
// One proof bundle: receipt → epoch root → epoch header → epoch log root → signed checkpoint.

export interface BundleCheckOptions {
  /** Pinned log verifier keys; without them the checkpoint is checked only for consistency with the bundle. */
  logKeys?: readonly string[];
  witnesses?: readonly string[];
  minWitnesses?: number;
}

export type BundleResult =
  | {
      ok: true;
      epoch: number;
      leaf_index: number;
      tree_size: number;
      root: string;
      checkpoint: { origin: string; size: number; root: string };
      /** The vkey of the log key that signed it, or null when no log key was given (not checked). */
      signed_by: string | null;
      cosigned_by: string[];
      reason: string;
    }
  | { ok: false; code: AuditCode; reason: string };

/** Parsed keys: throws TypeError naming the option and the rule. */
function parseKeys(o: BundleCheckOptions): { logs: { vkey: string; v: NoteVerifier }[]; witnesses: NoteVerifier[]; min: number } {
  const logs = (o.logKeys ?? []).map((vkey, i) => {
    let v: NoteVerifier;
    try {
      v = parseVerifierKey(vkey);
    } catch (err) {
      throw new TypeError(`logKeys[${i}] is not a verifier key (name+hex8+base64): ${(err as Error).message}`);
    }
    if (v.type !== SIG_ED25519) throw new TypeError(`logKeys[${i}] must be a type 0x01 (Ed25519) log key, not a witness cosignature key`);
    return { vkey, v };
  });
  const witnesses = (o.witnesses ?? []).map((vkey, i) => {
    try {
      return parseCosignerKey(vkey);
    } catch (err) {
      throw new TypeError(`witnesses[${i}] is not a verifier key (name+hex8+base64): ${(err as Error).message}`);
    }
  });
  const min = o.minWitnesses ?? witnesses.length;
  if (!Number.isSafeInteger(min) || min < 0 || min > witnesses.length)
    throw new TypeError(`minWitnesses must be an integer from 0 to the ${witnesses.length} witnesses given, not ${String(min)}`);
  return { logs, witnesses, min };
}

interface CheckedCheckpoint {
  origin: string;
  size: number;
  root: Uint8Array;
  vkey: string | null;
  cosigned: string[];
}

/** Verifies a checkpoint note against the pinned keys (null logs: parsed only). Returns a failure code or the checkpoint. */
function checkCheckpointNote(
  note: unknown,
  keys: ReturnType<typeof parseKeys>,
): { ok: true; cp: CheckedCheckpoint; logSigned: boolean } | { ok: false; code: AuditCode; reason: string; signed?: CheckedCheckpoint } {
  if (typeof note !== 'string') return { ok: false, code: 'server_error', reason: 'the checkpoint is not a signed note text' };
  if (keys.logs.length === 0) {
    try {
      const body = note.slice(0, note.lastIndexOf('\n\n') + 1);
      const c = parseCheckpoint(body);
      return { ok: true, cp: { origin: c.origin, size: c.size, root: c.root, vkey: null, cosigned: [] }, logSigned: false };
    } catch (err) {
      return { ok: false, code: 'bad_checkpoint', reason: `the checkpoint cannot be read: ${(err as Error).message}` };
    }
  }
  let lastError: CheckpointError | undefined;
  for (const { vkey, v } of keys.logs) {
    try {
      const r = verifyCheckpoint(note, v, { witnesses: keys.witnesses, minWitnesses: keys.min });
      return {
        ok: true,
        cp: {
          origin: r.checkpoint.origin,
          size: r.checkpoint.size,
          root: r.checkpoint.root,
          vkey,
          cosigned: r.cosignatures.map((s) => s.name),
        },
        logSigned: true,
      };
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      if (err.code === 'too_few_cosignatures') {
        // Signed by the log, short of witnesses: still a signed checkpoint (it counts for forks).
        const r = verifyCheckpoint(note, v, { witnesses: keys.witnesses, minWitnesses: 0 });
        return {
          ok: false,
          code: 'too_few_witnesses',
          reason: `the checkpoint of size ${r.checkpoint.size} ${err.message}`,
          signed: {
            origin: r.checkpoint.origin,
            size: r.checkpoint.size,
            root: r.checkpoint.root,
            vkey,
            cosigned: r.cosignatures.map((c) => c.name),
          },
        };
      }
      lastError = err;
    }
  }
  const code: AuditCode = ['missing_log_signature', 'origin_mismatch', 'no_known_signature'].includes(lastError?.code ?? '')
    ? 'wrong_log_key'
    : 'bad_checkpoint';
  return {
    ok: false,
    code,
    reason:
      code === 'wrong_log_key'
        ? `the checkpoint is not signed by the log key${keys.logs.length > 1 ? 's' : ''} given (${keys.logs.map((l) => l.v.name).join(', ')}): ${lastError?.message}`
        : `the checkpoint is refused: ${lastError?.message}`,
  };
}

interface Header {
  epoch: number;
  root: string;
  size: number;
  first_ts_ms: number;
  last_ts_ms: number;
}

/** The bundle's epoch header and proof, shape-checked (bounded: at most 64 hashes). */
function readBundleParts(
  b: unknown,
): { receipt: unknown; header: Header; index: number; size: number; hashes: string[]; note: unknown } | string {
  if (!isObject(b)) return 'the proof bundle is not a JSON object';
  const h = b.epoch_header;
  const p = b.epoch_proof;
  if (!isObject(h)) return 'epoch_header must be an object';
  for (const f of ['epoch', 'size', 'first_ts_ms', 'last_ts_ms'] as const)
    if (!Number.isSafeInteger(h[f]) || (h[f] as number) < 0) return `epoch_header.${f} must be an integer ≥ 0`;
  if (!isHex64AnyCase(h.root)) return 'epoch_header.root must be 64 hex characters';
  if (!isObject(p)) return 'epoch_proof must be an object';
  if (!Number.isSafeInteger(p.index) || !Number.isSafeInteger(p.size)) return 'epoch_proof.index and epoch_proof.size must be integers';
  if (!Array.isArray(p.hashes) || p.hashes.length > 64 || !p.hashes.every(isHex64AnyCase))
    return 'epoch_proof.hashes must be at most 64 hashes of 64 hex characters';
  return {
    receipt: b.receipt,
    header: h as unknown as Header,
    index: p.index as number,
    size: p.size as number,
    hashes: p.hashes as string[],
    note: b.checkpoint,
  };
}

/** Checks the epoch header's inclusion in the checkpoint's log root. Null when it holds. */
function headerInLog(header: Header, index: number, size: number, hashes: string[], cp: { size: number; root: Uint8Array }): string | null {
  if (index !== header.epoch) return `the epoch proof is for log index ${index}, not epoch ${header.epoch}`;
  if (size !== cp.size) return `the epoch proof is for a log of size ${size}, the checkpoint's is ${cp.size}`;
  let leaf: Uint8Array;
  try {
    leaf = epochLeafHash({ ...header, root: hexToBytes(header.root.toLowerCase()) });
  } catch (err) {
    return `the epoch header cannot be encoded: ${(err as Error).message}`;
  }
  const walked = rootFromInclusionProof(
    leaf,
    index,
    size,
    hashes.map((x) => hexToBytes(x.toLowerCase())),
  );
  if ('reason' in walked) return `the epoch header's proof does not walk: ${walked.reason}`;
  if (!equalBytes(walked.root, cp.root))
    return `epoch ${header.epoch} with root ${header.root.toLowerCase()} is not in the epoch log of the checkpoint of size ${cp.size}`;
  return null;
}

/**
 * Checks a GET /v1/events/:id/proof bundle: the receipt to its epoch root, the epoch header (same
 * epoch, root and size) into the epoch log, the log root to the checkpoint, the checkpoint's
 * signature by a given log key and cosignatures. Without logKeys the checkpoint is only parsed:
 * the result then says it is consistent with the bundle, not that the log key signed it.
 */
export function verifyProofBundle(bundle: unknown, options: BundleCheckOptions = {}): BundleResult {
  const keys = parseKeys(options);
  const parts = readBundleParts(bundle);
  if (typeof parts === 'string') return { ok: false, code: 'server_error', reason: parts };
  const r = verifyReceipt(parts.receipt);
  if (!r.ok) {
    const code: AuditCode = r.code === 'leaf_mismatch' ? 'tampered_event' : r.code === 'not_sealed' ? 'not_sealed' : 'bad_proof';
    return { ok: false, code, reason: `the receipt: ${r.reason}` };
  }
  const h = parts.header;
  if (h.epoch !== r.epoch || h.root.toLowerCase() !== r.root || h.size !== r.tree_size)
    return {
      ok: false,
      code: 'unsigned_root',
      reason: `the receipt's epoch ${r.epoch} (root ${r.root}, size ${r.tree_size}) is not the epoch header's (epoch ${h.epoch}, root ${h.root.toLowerCase()}, size ${h.size})`,
    };
  const checked = checkCheckpointNote(parts.note, keys);
  if (!checked.ok) return { ok: false, code: checked.code, reason: checked.reason };
  const miss = headerInLog(h, parts.index, parts.size, parts.hashes, checked.cp);
  if (miss) return { ok: false, code: 'unsigned_root', reason: miss };
  const cp = checked.cp;
  return {
    ok: true,
    epoch: r.epoch,
    leaf_index: r.leaf_index,
    tree_size: r.tree_size,
    root: r.root,
    checkpoint: { origin: cp.origin, size: cp.size, root: bytesToHex(cp.root) },
    signed_by: cp.vkey,
    cosigned_by: cp.cosigned,
    reason: cp.vkey
      ? `leaf ${r.leaf_index} of ${r.tree_size} in epoch ${r.epoch} is under root ${r.root}, which is in the epoch log of size ${cp.size} signed by the log key ${cp.vkey}${cp.cosigned.length > 0 ? ` and cosigned by ${cp.cosigned.length} witness${cp.cosigned.length === 1 ? '' : 'es'} (${cp.cosigned.join(', ')})` : ''}`
      : `leaf ${r.leaf_index} of ${r.tree_size} in epoch ${r.epoch} is under root ${r.root}, which is in the epoch log of size ${cp.size} of the checkpoint in the bundle; its signature was NOT checked (no log key given): this shows only that the bundle is consistent with itself`,
  };
}

// ---------------------------------------------------------------------------------------------
// The audit.

interface EpochSeen {
  /** root|size → events seen under it, and one event id to ask the proof bundle of. */
  roots: Map<string, { count: number; id: number; request_id: string }>;
  anchor: Anchor | null;
}

/** A usage cursor this server issues: base64url of [ts, seq, max(, 1)]. Undefined when it is not one (opaque to us then). */
function peekCursor(s: string): { ts: number; seq: number; max: number } | undefined {
  try {
    if (s.length > 512) return undefined;
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    const v = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))) as unknown;
    if (Array.isArray(v) && v.length >= 3 && v.slice(0, 3).every((n) => Number.isSafeInteger(n)))
      return { ts: v[0] as number, seq: v[1] as number, max: v[2] as number };
  } catch {}
  return undefined;
}

export async function auditPeriod(options: AuditOptions): Promise<AuditReport> {
  if (!isObject(options)) throw new TypeError('auditPeriod takes an options object');
  const { namespace, key, trustServer = false, onProgress, readAnchor } = options;
  let base: URL;
  try {
    base = new URL(options.url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new TypeError('url must be an http(s) URL of the service, e.g. https://receipts.example.com');
  }
  if (typeof key !== 'string' || key.length < 1 || key.length > 1024 || /[\r\n]/.test(key))
    throw new TypeError('key must be an API key (one line, at most 1024 characters)');
  if (typeof namespace !== 'string' || !/^[a-z0-9][a-z0-9._/-]{0,127}$/.test(namespace))
    throw new TypeError('namespace must be one namespace: 1 to 128 characters of a-z 0-9 . _ / - starting with a letter or digit');
  const from = instant(options.from, 'from');
  const to = instant(options.to, 'to');
  if (from >= to) throw new TypeError('from must be before to (the period is [from, to))');
  if (!Array.isArray(options.logKeys)) throw new TypeError('logKeys must be a list of log verifier keys');
  const keys = parseKeys(options);
  if (keys.logs.length === 0 && !trustServer)
    throw new TypeError('logKeys must hold at least one log verifier key (or set trustServer, and nothing outside the server is checked)');
  const pageSize = options.pageSize ?? MAX_PAGE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE)
    throw new TypeError(`pageSize must be an integer from 1 to ${MAX_PAGE}`);
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);

  const problems: AuditProblem[] = [];
  let leftOff = 0;
  const problem = (p: AuditProblem) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
    else leftOff++;
  };
  const warnings: string[] = [];
  const onlyServer = keys.logs.length === 0;
  if (onlyServer)
    warnings.push('TRUSTING THE SERVER: epoch roots were taken from the server being audited; nothing outside the server was checked');

  const get = async (path: string, auth: boolean, text = false): Promise<unknown> => {
    const target = new URL(path, base);
    let res: Response;
    try {
      res = await doFetch(target.toString(), { headers: auth ? { authorization: `Bearer ${key}` } : {} });
    } catch (err) {
      throw new Stop(`cannot reach ${target.origin}${target.pathname}: ${(err as Error).message}`);
    }
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_ANSWER_BYTES) throw new Stop(`${target.pathname} answered ${length} bytes, more than the ${MAX_ANSWER_BYTES} read`);
    const body = await res.text();
    if (body.length > MAX_ANSWER_BYTES) throw new Stop(`${target.pathname} answered more than ${MAX_ANSWER_BYTES} bytes`);
    if (res.status !== 200) {
      let why = body.slice(0, 300);
      try {
        const e = JSON.parse(body) as { error?: { code?: string; message?: string } };
        if (e.error?.message) why = `${e.error.code ?? ''}: ${e.error.message}`.slice(0, 300);
      } catch {}
      throw new Stop(`${target.pathname} answered ${res.status}: ${why}`);
    }
    if (text) return body;
    try {
      return JSON.parse(body);
    } catch {
      throw new Stop(`${target.pathname} did not answer JSON`);
    }
  };

  const sum = zero();
  const byAction = new Map<string, Sum>();
  const epochs = new Map<number, EpochSeen>();
  const requestIds = new Set<string>();
  // Corrections (receipt v2): each version counted, by its leaf hash, so that the correction after
  // it takes it back (the server's totals count the head of each chain only); `corrected` once taken.
  const versions = new Map<string, { event: ReceiptEvent; cls: string; corrected: boolean }>();
  let serverTotals: Sum | null = null;
  let serverByAction: Map<string, Sum> | null = null;
  let asOf: number | null = null;
  let pages = 0;
  let seen = 0;
  const checkpointsBySize = new Map<number, Uint8Array>();
  const checkpointsRelied = new Set<string>();
  let fewestWitnesses = Number.POSITIVE_INFINITY;
  let logKey: string | null = null;
  let chain: AuditReport['chain'] = null;

  try {
    // The classification (which actions are billable when): configuration, published by the server.
    const cls = await get('/v1/classification', true);
    const history = validateHistory(isObject(cls) ? cls.history : undefined);
    if (!history.ok) throw new Stop(`/v1/classification: ${history.errors.map((e) => e.message).join('; ')}`);
    const periods: ClassificationPeriod[] = history.history;

    // Every page of receipts, in (ts_ms, id) order.
    let cursor: string | null = null;
    let last = null as { ts: number; id: number } | null;
    do {
      const q = new URLSearchParams({
        namespace,
        from: String(from),
        to: String(to),
        receipts: 'true',
        group_by: 'action',
        limit: String(pageSize),
      });
      if (cursor) q.set('cursor', cursor);
      const page = await get(`/v1/usage?${q}`, true);
      if (!isObject(page) || !Array.isArray(page.events)) throw new Stop('/v1/usage did not answer a page of receipts (no events list)');
      pages++;
      const totals = readTotals(page.totals);
      if (!totals) throw new Stop('/v1/usage answered no readable totals');
      const pageAsOf = Number.isSafeInteger(page.as_of_seq) ? (page.as_of_seq as number) : null;
      if (pages === 1) {
        serverTotals = totals;
        asOf = pageAsOf;
        serverByAction = await groupsOf(page, q, get);
      } else if (!sameSum(totals, serverTotals!) || pageAsOf !== asOf) {
        problem({
          code: 'inconsistent_pages',
          message: `page ${pages} answers totals ${describeSum(totals)} at snapshot ${pageAsOf}, page 1 ${describeSum(serverTotals!)} at ${asOf}`,
        });
      }
      const events = page.events as unknown[];
      if (events.length > pageSize) throw new Stop(`page ${pages} holds ${events.length} receipts, more than the ${pageSize} asked for`);
      for (const receipt of events) {
        seen++;
        checkReceipt(receipt);
      }
      const next = page.next_cursor;
      if (next !== null && next !== undefined && typeof next !== 'string') throw new Stop(`page ${pages}: next_cursor is not a string`);
      if (typeof next === 'string') {
        if (events.length < pageSize)
          problem({
            code: 'omitted_events',
            message: `page ${pages} holds ${events.length} receipts of the ${pageSize} asked for, yet says more follow: events were left out of it`,
          });
        const c = peekCursor(next);
        if (c && last && (c.ts !== last.ts || c.seq !== last.id || (asOf !== null && c.max !== asOf)))
          problem({
            code: 'out_of_order',
            message: `page ${pages} ends at event ${last.id} (ts ${last.ts}) but its cursor continues after event ${c.seq} (ts ${c.ts}): the pages do not join`,
          });
        if (events.length === 0) throw new Stop(`page ${pages} is empty yet says more follow`);
      }
      // Net of corrections: a void takes its event back, so count what the receipts add up to.
      if (serverTotals && sum.events > serverTotals.events) {
        problem({
          code: 'totals_mismatch',
          message: `the pages hold more events (${sum.events} so far, net of corrections, in ${seen} receipts) than the ${serverTotals.events} events the server's totals count`,
        });
        break;
      }
      onProgress?.({ pages, events: seen });
      cursor = typeof next === 'string' ? next : null;
    } while (cursor);

    function checkReceipt(x: unknown): void {
      const r = x as AnyReceipt;
      const id = isObject(x) && Number.isSafeInteger(x.id) ? (x.id as number) : undefined;
      const v = verifyReceipt(x);
      if (!v.ok && v.kind === 'malformed') {
        problem({ code: 'bad_proof', message: `a receipt is malformed: ${v.reason}`, ...(id !== undefined && { id }) });
        return;
      }
      const e = r.event;
      const at = { ...(id !== undefined && { id }), request_id: e.request_id };
      // Counted as listed: the totals check is about the server's sums; backing is checked apart.
      const cls = classify(e.action, e.ts_ms, periods);
      const count = (ev: ReceiptEvent, c: string, sign: 1 | -1) => {
        const add = (s: Sum) => {
          s.events += sign;
          s.units += BigInt(sign) * BigInt(ev.units);
          if (c === 'billable') {
            s.billable_events += sign;
            s.billable_units += BigInt(sign) * BigInt(ev.units);
          }
        };
        add(sum);
        const a = byAction.get(ev.action) ?? zero();
        add(a);
        byAction.set(ev.action, a);
      };
      const leaf = String(r.leaf_hash).toLowerCase();
      if (r.version === 2) {
        // A correction: the version it replaces (listed before it: same time, later id) is taken
        // back; an amendment then counts in its place, a void counts nothing.
        const correction = e as CorrectionFields;
        const corrects = String(correction.corrects).toLowerCase();
        const prev = versions.get(corrects);
        if (!prev)
          problem({
            code: 'omitted_events',
            message: `correction ${e.request_id} replaces the version with leaf hash ${corrects}, which the pages do not hold`,
            ...at,
          });
        else {
          const mismatch = correctionMismatch({ ...correction, corrects }, prev.event, corrects);
          if (mismatch) problem({ code: 'tampered_event', message: `correction ${e.request_id}: ${mismatch}`, ...at });
          else if (prev.corrected)
            problem({ code: 'duplicate_event', message: `the version ${corrects} is corrected twice (again by ${e.request_id})`, ...at });
          else {
            prev.corrected = true;
            count(prev.event, prev.cls, -1);
            if (correction.kind === 'amend') count(e, cls, 1);
          }
        }
        versions.set(leaf, { event: e, cls, corrected: false });
      } else {
        count(e, cls, 1);
        versions.set(leaf, { event: e, cls, corrected: false });
      }

      if (e.namespace !== namespace || e.ts_ms < from || e.ts_ms >= to)
        problem({
          code: 'foreign_event',
          message: `event ${e.request_id} (${e.namespace}, ts ${e.ts_ms}) is not in ${namespace} over [${from}, ${to})`,
          ...at,
        });
      else if (id !== undefined && asOf !== null && id > asOf)
        problem({ code: 'foreign_event', message: `event ${id} is past the snapshot as_of_seq ${asOf} the totals are of`, ...at });
      if (requestIds.has(e.request_id))
        problem({ code: 'duplicate_event', message: `request id ${e.request_id} is billed twice in ${namespace}`, ...at });
      requestIds.add(e.request_id);
      if (id !== undefined) {
        if (last && (e.ts_ms < last.ts || (e.ts_ms === last.ts && id <= last.id)))
          problem({ code: 'out_of_order', message: `event ${id} (ts ${e.ts_ms}) comes after event ${last.id} (ts ${last.ts})`, ...at });
        last = { ts: e.ts_ms, id };
      }
      if (!v.ok) {
        if (v.code === 'not_sealed')
          problem({ code: 'not_sealed', message: `event ${e.request_id} is not sealed yet: no proof backs it`, ...at });
        else if (v.code === 'leaf_mismatch')
          problem({ code: 'tampered_event', message: `event ${e.request_id}: ${v.reason}`, ...at, action: e.action });
        else problem({ code: 'bad_proof', message: `event ${e.request_id}: ${v.reason}`, ...at });
        return;
      }
      const ep = epochs.get(v.epoch) ?? { roots: new Map(), anchor: null };
      const k = `${v.root}|${v.tree_size}`;
      const seenRoot = ep.roots.get(k);
      if (seenRoot) seenRoot.count++;
      else ep.roots.set(k, { count: 1, id: id ?? -1, request_id: e.request_id });
      if (r.anchor && !ep.anchor) ep.anchor = r.anchor;
      epochs.set(v.epoch, ep);
    }

    // Each epoch once: its header into the signed epoch log.
    const checkedNotes = new Map<string, ReturnType<typeof checkCheckpointNote>>();
    if (!onlyServer) {
      for (const [epoch, ep] of [...epochs].sort((a, b) => a[0] - b[0])) {
        const ask = [...ep.roots.values()].find((x) => x.id >= 0);
        if (!ask) {
          problem({ code: 'server_error', message: `the receipts of epoch ${epoch} carry no event id to ask its proof bundle by`, epoch });
          continue;
        }
        const bundle = await get(`/v1/events/${ask.id}/proof`, true);
        const parts = readBundleParts(bundle);
        if (typeof parts === 'string') throw new Stop(`/v1/events/${ask.id}/proof: ${parts}`);
        const h = parts.header;
        // Every bundle carries the latest checkpoint: its signatures are checked once per text.
        const noteKey = typeof parts.note === 'string' ? parts.note : '';
        let checked = checkedNotes.get(noteKey);
        if (!checked) {
          checked = checkCheckpointNote(parts.note, keys);
          checkedNotes.set(noteKey, checked);
        }
        const signed = checked.ok ? checked.cp : checked.signed;
        if (signed) noteCheckpoint(signed);
        if (!checked.ok) {
          problem({ code: checked.code, message: `epoch ${epoch}: ${checked.reason}`, epoch, ...(signed && { size: signed.size }) });
          if (!signed) continue;
        }
        const cp = signed!;
        checkpointsRelied.add(`${cp.size}|${bytesToHex(cp.root)}`);
        logKey ??= cp.vkey;
        fewestWitnesses = Math.min(fewestWitnesses, cp.cosigned.length);
        const miss =
          h.epoch !== epoch ? `the proof bundle is for epoch ${h.epoch}` : headerInLog(h, parts.index, parts.size, parts.hashes, cp);
        for (const [k, x] of ep.roots) {
          const [root, size] = k.split('|') as [string, string];
          if (miss || root !== h.root.toLowerCase() || Number(size) !== h.size)
            problem({
              code: 'unsigned_root',
              message: `${x.count} receipt${x.count === 1 ? '' : 's'} of epoch ${epoch} (e.g. ${x.request_id}) ${x.count === 1 ? 'is' : 'are'} under root ${root} of size ${size}, which the signed epoch log does not hold${miss ? `: ${miss}` : ` (it holds root ${h.root.toLowerCase()} of size ${h.size})`}`,
              epoch,
              request_id: x.request_id,
            });
        }
      }
      // The latest checkpoint as the server shows it to anyone (a second view, for forks).
      try {
        const note = await get('/checkpoint', false, true);
        const checked = checkCheckpointNote(note, { ...keys, min: 0 });
        if (checked.ok) noteCheckpoint(checked.cp);
        else warnings.push(`GET /checkpoint: ${checked.reason}`);
      } catch (err) {
        if (!(err instanceof Stop)) throw err;
        warnings.push(`GET /checkpoint could not be read: ${err.message}`);
      }
      // Every two sizes seen must be consistent: the log only grew between them.
      const sizes = [...checkpointsBySize.keys()].sort((a, b) => a - b);
      for (let i = 1; i < sizes.length; i++) {
        const [a, b] = [sizes[i - 1]!, sizes[i]!];
        if (a === 0) continue;
        const c = await get(`/v1/log/consistency?from=${a}&to=${b}`, false);
        const hashes = isObject(c) && Array.isArray(c.hashes) && c.hashes.length <= 128 && c.hashes.every(isHex64AnyCase) ? c.hashes : null;
        const ok =
          hashes !== null &&
          verifyConsistency(
            a,
            b,
            (hashes as string[]).map((x) => hexToBytes(x.toLowerCase())),
            checkpointsBySize.get(a)!,
            checkpointsBySize.get(b)!,
          ).ok;
        if (!ok)
          problem({
            code: 'fork',
            message: `the signed checkpoints of sizes ${a} and ${b} are not proven consistent: the log did not only grow between them`,
            size: b,
          });
      }
    }

    // With a chain reader: each anchored epoch's root and size as the registry holds them.
    if (readAnchor) {
      chain = { checked: 0, unanchored: 0 };
      for (const [epoch, ep] of epochs) {
        if (!ep.anchor) {
          chain.unanchored++;
          continue;
        }
        const on = await readAnchor(ep.anchor, epoch);
        chain.checked++;
        for (const k of ep.roots.keys()) {
          const [root, size] = k.split('|') as [string, string];
          if (!on || on.root.toLowerCase() !== root || on.size !== Number(size))
            problem({
              code: 'chain_mismatch',
              message: on
                ? `epoch ${epoch}: registry ${ep.anchor.registry_id} holds root ${on.root} of size ${on.size}, the receipts say ${root} of size ${size}`
                : `epoch ${epoch} is not anchored in registry ${ep.anchor.registry_id} on ${ep.anchor.network}, though its receipts say it is`,
              epoch,
            });
        }
      }
      if (chain.unanchored > 0)
        warnings.push(
          chain.checked === 0
            ? 'no epoch of the period is anchored on chain: nothing was checked on chain'
            : `${chain.unanchored} epoch${chain.unanchored === 1 ? ' is' : 's are'} not anchored yet: checked against the signed log only`,
        );
    }

    // The server's sums against the receipts'.
    if (serverTotals && !sameSum(serverTotals, sum)) {
      const fewer = sum.events < serverTotals.events;
      problem({
        code: fewer ? 'omitted_events' : 'totals_mismatch',
        message: fewer
          ? `the server counts ${serverTotals.events} events but its pages hold ${sum.events} receipts: ${serverTotals.events - sum.events} were left out`
          : `the server's totals (${describeSum(serverTotals)}) are not the receipts' (${describeSum(sum)})`,
      });
    }
    if (serverByAction) {
      for (const action of new Set([...serverByAction.keys(), ...byAction.keys()])) {
        const s = serverByAction.get(action) ?? zero();
        const r = byAction.get(action) ?? zero();
        if (!sameSum(s, r) && sum.events >= (serverTotals?.events ?? 0))
          problem({
            code: 'totals_mismatch',
            message: `action ${action}: the server answers ${describeSum(s)}, the receipts hold ${describeSum(r)}`,
            action,
          });
      }
    }
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    problem({ code: 'server_error', message: `the audit stopped: ${err.message}` });
  }

  function noteCheckpoint(cp: CheckedCheckpoint): void {
    const prior = checkpointsBySize.get(cp.size);
    if (prior && !equalBytes(prior, cp.root))
      problem({
        code: 'fork',
        message: `two checkpoints of size ${cp.size} signed by the log with different roots (${bytesToHex(prior)} and ${bytesToHex(cp.root)}): the log forked`,
        size: cp.size,
      });
    else if (!prior) checkpointsBySize.set(cp.size, cp.root);
  }

  const actions = Object.fromEntries([...byAction].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, s]) => [k, totalsOf(s)]));
  return {
    ok: problems.length === 0,
    trust: onlyServer ? 'server' : 'log',
    warnings,
    problems,
    problems_left_off: leftOff,
    namespace,
    from,
    to,
    as_of_seq: asOf,
    pages,
    ...totalsOf(sum),
    by_action: actions,
    epochs: epochs.size,
    checkpoints: checkpointsRelied.size,
    witnesses: Number.isFinite(fewestWitnesses) ? fewestWitnesses : 0,
    log_key: logKey,
    server_totals: serverTotals ? totalsOf(serverTotals) : null,
    server_by_action: serverByAction ? Object.fromEntries([...serverByAction].map(([k, s]) => [k, totalsOf(s)])) : null,
    recomputed_totals: totalsOf(sum),
    chain,
  };
}

/** The server's per-action groups of the snapshot: the first page's, then the rest by groups_next_cursor. */
async function groupsOf(
  page: Record<string, unknown>,
  q: URLSearchParams,
  get: (path: string, auth: boolean) => Promise<unknown>,
): Promise<Map<string, Sum>> {
  const out = new Map<string, Sum>();
  const add = (groups: unknown) => {
    if (!Array.isArray(groups)) throw new Stop('/v1/usage answered no groups list');
    for (const g of groups) {
      const t = readTotals(g);
      if (!t || !isObject(g) || typeof g.key !== 'string') throw new Stop('/v1/usage answered a group without key and totals');
      if (out.has(g.key)) throw new Stop(`/v1/usage answered group ${g.key.slice(0, 64)} twice`);
      out.set(g.key, t);
    }
  };
  add(page.groups);
  let next = page.groups_next_cursor;
  for (let n = 0; typeof next === 'string'; n++) {
    if (n > 10_000) throw new Stop('/v1/usage pages its groups without end');
    const gq = new URLSearchParams({ namespace: q.get('namespace')!, from: q.get('from')!, to: q.get('to')!, group_by: 'action' });
    gq.set('cursor', next);
    const more = await get(`/v1/usage?${gq}`, true);
    if (!isObject(more)) throw new Stop('/v1/usage did not answer a page of groups');
    add(more.groups);
    next = more.next_cursor;
  }
  return out;
}
