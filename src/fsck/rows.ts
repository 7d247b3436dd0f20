// What each stored column read by fsck (and by migrate) must hold, and how a stored value is
// shown in a message. Pure: no database code. A wrong-length blob or a text where an integer
// belongs is named by table, row and column, never left to surface as a TypeError in the tree code.
// NODE_CHUNK comes from the ledger's node-chunks.ts, which is as pure as this file (no I/O):
// fsck checks the stored format against the one both engines write, so another size is reported.
import { NODE_CHUNK } from '../ledger/node-chunks.ts';
import { HASH_SIZE } from '../merkle/hash.ts';

/** int: a safe integer; hash: a 32-byte blob; nodes: 1 … NODE_CHUNK 32-byte hashes; ?: or null. */
export type Kind = 'int' | 'int?' | 'text' | 'text?' | 'hash' | 'hash?' | 'nodes' | 'bool';

/** A row as a driver returns it: integers as numbers or bigints, blobs as Buffers. */
export type Row = Record<string, unknown>;

/** A stored value in a message: never a whole blob or a long text. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint' || typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    // One pass, one character at a time: every non-printable character shown as \uXXXX.
    const shown = JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v).replace(
      /[^\x20-\x7e…]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    return `the text ${shown}`;
  }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `a ${v.length}-byte blob`;
  return typeof v;
}

/** What is wrong with v as a value of kind, or undefined. */
export function kindProblem(kind: Kind, v: unknown): string | undefined {
  if (v === null || v === undefined) return kind.endsWith('?') ? undefined : 'null, but must be set';
  switch (kind) {
    case 'int':
    case 'int?':
      if (typeof v === 'bigint' ? v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) : Number.isSafeInteger(v))
        return undefined;
      return typeof v === 'bigint' ? 'beyond 2^53−1, more than this ledger can hold' : 'not an integer';
    case 'text':
    case 'text?':
      return typeof v === 'string' ? undefined : 'not text';
    case 'bool':
      return typeof v === 'boolean' || v === 0 || v === 1 || v === 0n || v === 1n ? undefined : 'not a boolean';
    case 'hash':
    case 'hash?':
      return Buffer.isBuffer(v) && v.length === HASH_SIZE ? undefined : `not a ${HASH_SIZE}-byte hash`;
    case 'nodes':
      return Buffer.isBuffer(v) && v.length > 0 && v.length % HASH_SIZE === 0 && v.length <= NODE_CHUNK * HASH_SIZE
        ? undefined
        : `not a chunk of 1 … ${NODE_CHUNK} tree-node hashes of ${HASH_SIZE} bytes each (${HASH_SIZE} … ${NODE_CHUNK * HASH_SIZE} bytes, a multiple of ${HASH_SIZE})`;
  }
}

export interface Shape {
  table: string;
  /** The primary key, which names the row in a message. */
  key: string[];
  /** Column → kind, for the columns this shape checks. */
  kinds: Record<string, Kind>;
}

/**
 * Checks the columns of r that the shape knows, and turns its integers into numbers (in place).
 * Returns a sentence naming table, row and column when one is malformed.
 */
export function rowProblem(shape: Shape, r: Row): string | undefined {
  for (const c in r) {
    const kind = shape.kinds[c];
    if (!kind) continue;
    const problem = kindProblem(kind, r[c]);
    if (problem) {
      const row = shape.key.map((k) => `${k} ${describeValue(r[k]).replace(/^the text /, '')}`).join(', ');
      return `${shape.table} row (${row}): ${c} is ${describeValue(r[c])}, ${problem}`;
    }
    if (typeof r[c] === 'bigint') r[c] = Number(r[c]);
  }
  return undefined;
}

/** The columns fsck reads. */
export const EPOCH_SHAPE: Shape = {
  table: 'epochs',
  key: ['epoch'],
  kinds: { epoch: 'int', first_seq: 'int', last_seq: 'int', size: 'int', root: 'hash', first_ts: 'int', last_ts: 'int' },
};
export const EVENT_SHAPE: Shape = {
  table: 'events',
  key: ['seq'],
  kinds: {
    id: 'int',
    seq: 'int?',
    namespace: 'text',
    request_id: 'text',
    caller: 'text',
    action: 'text',
    units: 'int',
    artifact_digest: 'hash?',
    ts: 'int',
    leaf_hash: 'hash',
    // Corrections (schema 010): the row's own columns, then the version it replaces (p_*), joined.
    kind: 'int',
    corrects_id: 'int?',
    chain_id: 'int?',
    prev_caller: 'text?',
    prev_action: 'text?',
    prev_units: 'int?',
    p_leaf_hash: 'hash?',
    p_namespace: 'text?',
    p_ts: 'int?',
    p_caller: 'text?',
    p_action: 'text?',
    p_units: 'int?',
    p_artifact_digest: 'hash?',
    p_kind: 'int?',
    p_chain: 'int?',
  },
};
/** PostgreSQL names an unsealed event by id (it has no seq yet). */
export const UNSEALED_EVENT_SHAPE: Shape = { ...EVENT_SHAPE, key: ['id'] };
export const NODE_SHAPE: Shape = {
  table: 'epoch_nodes',
  key: ['epoch', 'level', 'chunk'],
  kinds: { epoch: 'int', level: 'int', chunk: 'int', hashes: 'nodes' },
};
