// An event row as both engines read it back, and the one rule for a repeated request id: a
// duplicate (answered with the stored event) or a conflict (naming the fields that differ).
import { hash } from 'node:crypto';
import { leafPreimage } from '../event/leaf.ts';
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
}

export function eventRecordOf(row: EventRow): EventRecord {
  return {
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
}

/**
 * Which fields of a repeated request id differ from what was stored (empty: a true duplicate).
 * One rule for both engines, so a retry is a duplicate or a conflict the same way everywhere.
 */
export function differences(stored: StoredForComparison, e: NormalizedEvent): string[] {
  const differs: string[] = [];
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
