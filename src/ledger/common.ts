// What both engines share, so their behaviour cannot drift: numbered SQL migrations, the
// duplicate-or-conflict rule of idempotent writes, and exact unit sums.
import { readdirSync, readFileSync } from 'node:fs';
import type { NormalizedEvent } from '../event/validate.ts';
import type { EventToWrite, Units, WriteResult } from './types.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The engine's numbered migrations (`NNN_name.sql`), in order. */
export function loadMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: readFileSync(dir + f, 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

export class SchemaTooNewError extends Error {
  constructor(location: string, found: number, known: number) {
    super(
      `database ${location} has schema version ${found}, newer than this build of sui-receipts knows (${known}). ` +
        'Upgrade sui-receipts, or point --db at another ledger.',
    );
    this.name = 'SchemaTooNewError';
  }
}

/** A sum of units: a number while exact in JSON (≤ 2^53−1), a decimal string beyond. */
export function exactUnits(n: bigint): Units {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
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
  if (e.ts_explicit && Boolean(stored.ts_explicit) && stored.ts !== e.ts_ms) differs.push('ts');
  if (stored.source !== e.source) differs.push('source');
  if (stored.metadata !== e.metadata) differs.push('metadata');
  return differs;
}

export interface GroupCommitOptions {
  /**
   * Longest a queued request waits for others to share its commit, ms. 0 (the default): commit
   * once the requests that arrived in the same turn of the event loop are queued.
   */
  maxDelayMs?: number;
  /** Commit at once when this many events are queued (PostgreSQL: also the most one statement carries). */
  maxBatchEvents?: number;
}

/** One request's events waiting for a group commit, answered once it committed. */
export interface CommitJob {
  items: EventToWrite[];
  resolve: (results: WriteResult[]) => void;
  reject: (err: unknown) => void;
}
