// An event row as both engines read it back, and the one rule for a repeated request id: a
// duplicate (answered with the stored event) or a conflict (naming the fields that differ).
import { hash } from 'node:crypto';
import { type CorrectionKind, leafPreimage } from '../event/leaf.ts';
import type { NormalizedEvent } from '../event/validate.ts';
import type { EventRecord, EventToWrite, WriteResult } from './types.ts';

/** The columns of an EventRecord, as each engine selects them (SQLite: `seq AS id`). */
export interface EventRow {
  id: number;
  seq: number | null;
  namespace: string;
  request_id: string;
  caller: string;
  action: string;
  units: number;
  artifact_digest: Buffer | null;
  ts: number;
  leaf_hash: Buffer;
  /** 0 an ordinary event, 1 void, 2 amend (schema 010; CORRECTION_COLUMNS). */
  kind: number;
  corrects_id: number | null;
  chain_id: number | null;
  /** A correction's: the replaced version's leaf hash (null for an ordinary event). */
  corrects: Buffer | null;
  /** `id:kind` of the version that replaced this one, if any. */
  corrected_by: string | null;
}

/** Which version replaced an event: its id and whether it voids or amends it. */
export interface CorrectedBy {
  id: number;
  kind: CorrectionKind;
}

/**
 * An EventRecord as the engines read it back: a replaced version also says by which one (a label
 * for its receipt; never part of a leaf).
 */
export type ReadEventRecord = EventRecord & { corrected_by?: CorrectedBy };

const KINDS: ReadonlyArray<CorrectionKind | undefined> = [undefined, 'void', 'amend'];

/**
 * The correction columns of an event read (after `leaf_hash`), on a `FROM events` without alias:
 * `corrects` only for a correction (CASE: an ordinary row runs no subquery) and `corrected_by`
 * through the unique partial index on corrects_id (one probe of a small index per row).
 * SQLite's id is its seq.
 */
export const CORRECTION_READ_COLUMNS = {
  sqlite: `kind, corrects_id, chain_id,
    CASE WHEN kind <> 0 THEN (SELECT p.leaf_hash FROM events p WHERE p.seq = events.corrects_id) END AS corrects,
    (SELECT c.seq || ':' || c.kind FROM events c WHERE c.corrects_id = events.seq) AS corrected_by`,
  postgres: `kind, corrects_id, chain_id,
    CASE WHEN kind <> 0 THEN (SELECT p.leaf_hash FROM events p WHERE p.id = events.corrects_id) END AS corrects,
    (SELECT c.id || ':' || c.kind FROM events c WHERE c.corrects_id = events.id) AS corrected_by`,
} as const;

export function eventRecordOf(row: EventRow): ReadEventRecord {
  const record: ReadEventRecord = {
    id: row.id,
    seq: row.seq,
    namespace: row.namespace,
    request_id: row.request_id,
    caller: row.caller,
    action: row.action,
    units: row.units,
    artifact_digest: row.artifact_digest ? row.artifact_digest.toString('hex') : '',
    ts_ms: row.ts,
    leaf_hash: row.leaf_hash.toString('hex'),
  };
  // Ordinary events keep exactly the fields they had: nothing more to build on the hot path.
  const kind = KINDS[row.kind];
  if (kind !== undefined) {
    if (!row.corrects || row.corrects_id === null || row.chain_id === null)
      throw new Error(`event ${row.id} is a ${kind} but the version it corrects (${row.corrects_id}) is not stored: run receipts fsck`);
    record.kind = kind;
    record.corrects = row.corrects.toString('hex');
    record.corrects_id = row.corrects_id;
    record.chain_id = row.chain_id;
  }
  if (row.corrected_by) {
    const [id, code] = row.corrected_by.split(':');
    record.corrected_by = { id: Number(id), kind: KINDS[Number(code)] as CorrectionKind }; // the CHECK on kind: 1 or 2
  }
  return record;
}

/** What a repeated request id is compared on: the stored event as either engine keeps it. */
export interface StoredForComparison {
  caller: string;
  action: string;
  units: number;
  artifact_digest: Buffer | null;
  ts: number;
  /** Whether ts came from the client (SQLite stores 0/1, PostgreSQL a boolean). */
  ts_explicit: boolean | number;
  source: string | null;
  metadata: string | null;
  /** 0 (or absent) for an ordinary event; a correction's request id is never a duplicate of an event. */
  kind?: number | null;
}

/**
 * Which fields of a repeated request id differ from what was stored (empty: a true duplicate).
 * One rule for both engines, so a retry is a duplicate or a conflict the same way everywhere.
 */
export function differences(stored: StoredForComparison, e: NormalizedEvent): string[] {
  const differs: string[] = [];
  if (stored.kind) differs.push('kind');
  if (stored.caller !== e.caller) differs.push('caller');
  if (stored.action !== e.action) differs.push('action');
  if (stored.units !== e.units) differs.push('units');
  if ((stored.artifact_digest?.toString('hex') ?? '') !== e.artifact_digest) differs.push('artifact_digest');
  // A retry that leaves ts out means "when received": it cannot contradict the stored time.
  if (e.ts_explicit && stored.ts_explicit && stored.ts !== e.ts_ms) differs.push('ts');
  if (stored.source !== e.source) differs.push('source');
  if (stored.metadata !== e.metadata) differs.push('metadata');
  return differs;
}

/** The answer to a request id already stored as event `id`: a duplicate, or a conflict naming what differs. */
export function repeatOf(id: number, stored: StoredForComparison & { leaf_hash: Buffer }, e: NormalizedEvent): WriteResult {
  const differs = differences(stored, e);
  if (differs.length === 0) return { status: 'duplicate', id, leaf_hash: stored.leaf_hash.toString('hex') };
  return { status: 'conflict', id, differs };
}

/** What both engines store for a new event's artifact digest: the 32 bytes, or null for none. */
export const digestBytes = (e: NormalizedEvent): Buffer | null => (e.artifact_digest === '' ? null : Buffer.from(e.artifact_digest, 'hex'));

/**
 * A new event's stored values, in the column order of both engines' INSERT: namespace,
 * request_id, owner, key_id, caller, action, units, artifact_digest, ts, ts_explicit, received_at,
 * source, metadata, leaf_hash. `flag` stores ts_explicit (SQLite binds no booleans: 1/0).
 */
export function storedValues<F>(item: EventToWrite, hash: Buffer, flag: (explicit: boolean) => F) {
  const e = item.event;
  return [
    e.namespace,
    e.request_id,
    item.owner,
    item.keyId,
    e.caller,
    e.action,
    e.units,
    digestBytes(e),
    e.ts_ms,
    flag(e.ts_explicit),
    e.received_at,
    e.source,
    e.metadata,
    hash,
  ] as const;
}

/**
 * An event's RFC 6962 leaf hash, as `leafHash` (src/event/leaf.ts) computes it, through
 * node:crypto: one native call on the preimage, returned as the Buffer both engines bind, where
 * the browser-safe hash took several µs an event and a copy into a Buffer. The preimage is a
 * Buffer from Node's pool (leafPreimage writes every byte of it).
 */
export const leafHashOf = (e: NormalizedEvent): Buffer => hash('sha256', leafPreimage(e, Buffer.allocUnsafe), 'buffer');
