// Corrections (docs/design.md "Leaf (version 2)"): the rules both engines apply to a void or an
// amendment, once. An engine reads the target and what the correction's request id already names,
// asks decideCorrection what to do, and inserts the row it returns in the same transaction; the
// unique index on corrects_id decides a race between instances (the loser reads again and gets
// already_corrected).
import { hash } from 'node:crypto';
import { CORRECTION_KIND_CODE, leafPreimageV2, type CorrectionKind } from '../event/leaf.ts';
import { validateEvent } from '../event/validate.ts';
import { differences } from './event-record.ts';
import type { CorrectionResult, CorrectionToWrite } from './types.ts';

/** kind column → correction kind (0 is an ordinary event). */
export const KIND_OF_CODE: Readonly<Record<number, CorrectionKind | undefined>> = { 1: 'void', 2: 'amend' };

/** A stored version as the rules need it (either engine; SQLite's id is its seq). */
export interface VersionRow {
  id: number;
  namespace: string;
  request_id: string;
  owner: string;
  caller: string;
  action: string;
  units: number;
  artifact_digest: Buffer | null;
  ts: number;
  ts_explicit: boolean | number;
  source: string | null;
  metadata: string | null;
  leaf_hash: Buffer;
  kind: number;
  corrects_id: number | null;
  chain_id: number | null;
}

/** The row to insert, in the column order of both engines' correction INSERT. */
export interface CorrectionRow {
  namespace: string;
  request_id: string;
  owner: string;
  key_id: string;
  caller: string;
  action: string;
  units: number;
  artifact_digest: Buffer | null;
  ts: number;
  received_at: number;
  metadata: string | null;
  leaf_hash: Buffer;
  kind: number;
  corrects_id: number;
  chain_id: number;
  prev_caller: string;
  prev_action: string;
  prev_units: number;
}

/**
 * Refusals decided before any read: a request id with U+0000 can name nothing stored (PostgreSQL
 * text cannot even be asked about it), so the target is not found and the correction's own id is
 * refused by the ingest rule.
 */
export function refuseBeforeRead(item: CorrectionToWrite): CorrectionResult | undefined {
  const t = item.target;
  if (!('id' in t) && (t.namespace.includes('\u0000') || t.request_id.includes('\u0000'))) return { status: 'not_found' };
  if ('id' in t && !Number.isSafeInteger(t.id)) return { status: 'not_found' };
  if (item.request_id.includes('\u0000') || !item.request_id.isWellFormed())
    return {
      status: 'invalid',
      errors: [{ path: 'request_id', rule: 'well_formed_text', message: 'request_id must be well-formed text without U+0000' }],
    };
  return undefined;
}

/** The root of the chain a version belongs to: where its latest version is looked up. */
export const chainRootOf = (target: VersionRow): number => target.chain_id ?? target.id;

/**
 * What to do with one correction, given its target (undefined: none, or another owner's), the
 * event its request id already names (if any), and the latest version of the target's chain (the
 * highest id with chain_id = its root; a chain is linear, so that is its head), if it has any.
 * Returns the row to insert, or the answer.
 */
export function decideCorrection(
  item: CorrectionToWrite,
  target: VersionRow | undefined,
  repeat: VersionRow | undefined,
  latest: { id: number; kind: number } | undefined,
): { insert: CorrectionRow } | { answer: CorrectionResult } {
  // Another owner's event is not found: ids must not tell one owner about another's ledger.
  if (!target || target.owner !== item.owner) return { answer: { status: 'not_found' } };
  if (item.allows && !item.allows(target.namespace)) return { answer: { status: 'forbidden', namespace: target.namespace } };
  const headAfter = latest && latest.id > target.id ? latest : undefined;
  const planned = plan(item, target);
  // A retry is answered first, whatever happened to the chain since: idempotent.
  if (repeat) {
    if ('errors' in planned) return { answer: { status: 'conflict', id: repeat.id, differs: ['request_id'] } };
    const differs = repeatDifferences(repeat, planned.insert);
    if (differs.length > 0) return { answer: { status: 'conflict', id: repeat.id, differs } };
    return {
      answer: {
        status: 'duplicate',
        id: repeat.id,
        leaf_hash: repeat.leaf_hash.toString('hex'),
        corrects_id: planned.insert.corrects_id,
        chain_id: planned.insert.chain_id,
      },
    };
  }
  if (target.kind === 1) return { answer: { status: 'already_corrected', id: target.id, head_id: target.id, head_kind: 'void' } };
  if (headAfter) {
    return { answer: { status: 'already_corrected', id: target.id, head_id: headAfter.id, head_kind: KIND_OF_CODE[headAfter.kind]! } };
  }
  if (target.ts < item.notBeforeMs) return { answer: { status: 'window_closed', id: target.id, ts_ms: target.ts } };
  if ('errors' in planned) return { answer: { status: 'invalid', errors: planned.errors } };
  const r = planned.insert;
  if (
    item.kind === 'amend' &&
    r.caller === target.caller &&
    r.action === target.action &&
    r.units === target.units &&
    (r.artifact_digest?.toString('hex') ?? '') === (target.artifact_digest?.toString('hex') ?? '')
  ) {
    // A version equal to the one it replaces proves nothing and only lengthens the chain.
    const errors = [{ path: 'units', rule: 'unchanged', message: `the amendment changes nothing of event ${target.id}` }];
    return { answer: { status: 'invalid', errors } };
  }
  return planned;
}

/** The new version's row: amend takes the changes over the target's values, void keeps them with 0 units. */
function plan(
  item: CorrectionToWrite,
  target: VersionRow,
): { insert: CorrectionRow } | { errors: Array<{ path: string; rule: string; message: string }> } {
  const c = item.kind === 'amend' ? (item.changes ?? {}) : {};
  const input = {
    namespace: target.namespace,
    request_id: item.request_id,
    caller: c.caller ?? target.caller,
    action: c.action ?? target.action,
    units: item.kind === 'void' ? 0 : (c.units ?? target.units),
    ...(c.artifact_digest !== undefined
      ? c.artifact_digest === ''
        ? {}
        : { artifact_digest: c.artifact_digest }
      : target.artifact_digest && { artifact_digest: target.artifact_digest.toString('hex') }),
    ts: target.ts,
    ...(item.reason !== undefined && { metadata: { reason: item.reason } }),
  };
  // The ingest rules for every field; the event time is the original's and is not checked again
  // here (the correction window is).
  const v = validateEvent(input, {
    now: item.receivedAtMs,
    maxAgeMs: Number.MAX_SAFE_INTEGER,
    maxFutureMs: Number.MAX_SAFE_INTEGER,
    ...(item.actions && { actions: item.actions }),
  });
  if (!v.ok) return { errors: v.errors };
  const e = v.event;
  const corrects = target.leaf_hash.toString('hex');
  const leaf = hash('sha256', leafPreimageV2({ ...e, kind: item.kind, corrects }, Buffer.allocUnsafe), 'buffer');
  return {
    insert: {
      namespace: e.namespace,
      request_id: e.request_id,
      owner: item.owner,
      key_id: item.keyId,
      caller: e.caller,
      action: e.action,
      units: e.units,
      artifact_digest: e.artifact_digest === '' ? null : Buffer.from(e.artifact_digest, 'hex'),
      ts: e.ts_ms,
      received_at: item.receivedAtMs,
      metadata: e.metadata,
      leaf_hash: leaf,
      kind: CORRECTION_KIND_CODE[item.kind],
      corrects_id: target.id,
      chain_id: target.chain_id ?? target.id,
      prev_caller: target.caller,
      prev_action: target.action,
      prev_units: target.units,
    },
  };
}

/** What differs between a stored row and the correction a retry would write (empty: the same). */
function repeatDifferences(stored: VersionRow, row: CorrectionRow): string[] {
  const differs: string[] = [];
  if (stored.kind !== row.kind) differs.push('kind');
  if (stored.corrects_id !== row.corrects_id) differs.push('corrects');
  const same = differences({ ...stored, kind: 0 }, {
    caller: row.caller,
    action: row.action,
    units: row.units,
    artifact_digest: row.artifact_digest?.toString('hex') ?? '',
    ts_ms: row.ts,
    ts_explicit: true,
    source: null,
    metadata: row.metadata,
  } as Parameters<typeof differences>[1]);
  return [...differs, ...same.filter((f) => f !== 'ts')];
}

/** The values of a CorrectionRow in insert order (SQLite binds no booleans: ts_explicit as given). */
export function correctionValues<F>(r: CorrectionRow, explicit: F) {
  return [
    r.namespace,
    r.request_id,
    r.owner,
    r.key_id,
    r.caller,
    r.action,
    r.units,
    r.artifact_digest,
    r.ts,
    explicit,
    r.received_at,
    r.metadata,
    r.leaf_hash,
    r.kind,
    r.corrects_id,
    r.chain_id,
    r.prev_caller,
    r.prev_action,
    r.prev_units,
  ] as const;
}

export const CORRECTION_COLUMNS =
  'namespace, request_id, owner, key_id, caller, action, units, artifact_digest, ts, ts_explicit, received_at, metadata, leaf_hash, kind, corrects_id, chain_id, prev_caller, prev_action, prev_units';

/** The columns a VersionRow is read with (SQLite: `seq AS id`). */
export const VERSION_COLUMNS =
  'namespace, request_id, owner, caller, action, units, artifact_digest, ts, ts_explicit, source, metadata, leaf_hash, kind, corrects_id, chain_id';
