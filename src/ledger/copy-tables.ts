// A whole-ledger copy (`receipts migrate`) in terms both engines share: the tables it moves,
// what each column must hold, a row of either engine in one comparable form, and the row-by-row
// comparison of a copy with its source. Pure: each engine's readers (src/ledger/*/readers.ts)
// supply the rows, from one snapshot each.
import type { Kind, Row, Shape } from '../fsck/rows.ts';

export interface TableSpec extends Shape {
  /** In messages and progress. */
  label: string;
  /** Names the row (in its comparable form) in a message. */
  name: (row: Cell[]) => string;
  /** Columns whose values no message shows (a webhook's signing secret): a difference is named, never printed. */
  secret?: readonly string[];
}

/**
 * Every table of one ledger, read from one snapshot. Rows come in key order (text keys in byte
 * order), checked against their spec, integers as numbers, with the columns of `columnsOf` —
 * events carrying both `id` and `seq` (null for an event no epoch holds yet).
 */
export interface TableRows {
  /** The tables this ledger has (a ledger from before billable classification has no classifications, one from before schema 008 no meters, 011 no limits, 012 no webhook tables). */
  readonly tables: readonly TableSpec[];
  count(spec: TableSpec): Promise<number>;
  batches(spec: TableSpec): AsyncIterable<Row[]>;
}

/** A row of the source is not what its table must hold: the message names table, row and column. */
export class MalformedRowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedRowError';
  }
}

// kinds: the columns as SQLite stores them, in order, and what each must hold in the source.
export const KEYS: TableSpec = {
  table: 'api_keys',
  label: 'keys',
  key: ['id'],
  kinds: { id: 'text', owner: 'text', namespaces: 'text', key_hash: 'hash', created_at: 'int', revoked_at: 'int?', rights: 'text' },
  name: (r) => `key ${String(r[0])}`,
};
export const EVENTS: TableSpec = {
  table: 'events',
  label: 'events',
  key: ['seq'],
  kinds: {
    seq: 'int',
    namespace: 'text',
    request_id: 'text',
    owner: 'text',
    key_id: 'text',
    caller: 'text',
    action: 'text',
    units: 'int',
    artifact_digest: 'hash?',
    ts: 'int',
    ts_explicit: 'int',
    received_at: 'int',
    source: 'text?',
    metadata: 'text?',
    leaf_hash: 'hash',
    // Corrections (schema 010); a source from before has none: kind 0, the rest null.
    kind: 'int',
    corrects_id: 'int?',
    chain_id: 'int?',
    prev_caller: 'text?',
    prev_action: 'text?',
    prev_units: 'int?',
  },
  name: (r) => `event ${String(r[0])}`,
};
export const EPOCHS: TableSpec = {
  table: 'epochs',
  label: 'epochs',
  key: ['epoch'],
  kinds: { epoch: 'int', first_seq: 'int', last_seq: 'int', size: 'int', root: 'hash', first_ts: 'int', last_ts: 'int', sealed_at: 'int' },
  name: (r) => `epoch ${String(r[0])}`,
};
export const NODES: TableSpec = {
  table: 'epoch_nodes',
  label: 'tree nodes',
  key: ['epoch', 'level', 'chunk'],
  kinds: { epoch: 'int', level: 'int', chunk: 'int', hashes: 'nodes' },
  name: (r) => `epoch ${String(r[0])} (tree level ${String(r[1])}, chunk ${String(r[2])})`,
};
export const ATTEMPTS: TableSpec = {
  table: 'anchor_attempts',
  label: 'anchor attempts',
  key: ['tx_digest'],
  kinds: { tx_digest: 'text', first_epoch: 'int', last_epoch: 'int', created_at: 'int' },
  name: (r) => `anchor attempt ${String(r[0])}`,
};
export const ANCHORS: TableSpec = {
  table: 'anchors',
  label: 'anchors',
  key: ['epoch'],
  kinds: {
    epoch: 'int',
    network: 'text',
    package_id: 'text',
    registry_id: 'text',
    tx_digest: 'text?',
    checkpoint: 'text?',
    anchored_at: 'int',
  },
  name: (r) => `anchor of epoch ${String(r[0])}`,
};
export const CLASSIFICATIONS: TableSpec = {
  table: 'classifications',
  label: 'classification periods',
  key: ['from_ms'],
  kinds: { from_ms: 'int', billable: 'text', non_billable: 'text', other: 'text', created_at: 'int' },
  name: (r) => `classification period from ${String(r[0])}`,
};
// Every version of every meter (schema 008): versions are never rewritten, so each one a past
// answer used must reach the target as it was.
export const METERS: TableSpec = {
  table: 'meters',
  label: 'meter versions',
  key: ['owner', 'name', 'version'],
  kinds: { owner: 'text', name: 'text', version: 'int', aggregation: 'text', actions: 'text?', from_ms: 'int', created_at: 'int' },
  name: (r) => `meter ${String(r[1])} of ${String(r[0])} (version ${String(r[2])})`,
};
// Every version of every limit (schema 011), deletions included: a check applies the version in
// force, so a version missing or changed would change what a check answers. deleted is 0/1 on
// SQLite and a boolean on PostgreSQL.
export const LIMITS: TableSpec = {
  table: 'limits',
  label: 'limit versions',
  key: ['owner', 'id', 'version'],
  kinds: {
    owner: 'text',
    id: 'text',
    version: 'int',
    namespace: 'text',
    meter: 'text?',
    actions: 'text?',
    measure: 'text',
    period: 'text',
    tz: 'text',
    hard: 'int?',
    soft: 'text?',
    soft_units: 'text?',
    deleted: 'bool',
    from_ms: 'int',
    created_at: 'int',
  },
  name: (r) => `limit ${String(r[1])} of ${String(r[0])} (version ${String(r[2])})`,
};
// Webhooks (schema 012) with their signing secret: receivers verify with it, so the target signs
// with the same one. The alerts make each alert once only, the messages carry their webhook-id
// and where each delivery stands, the attempts are the delivery log: without them the target
// would send again what was sent, and its deliveries would start empty.
export const WEBHOOKS: TableSpec = {
  table: 'webhooks',
  label: 'webhooks',
  key: ['id'],
  kinds: { id: 'text', owner: 'text', url: 'text', namespaces: 'text', secret: 'text', created_at: 'int' },
  name: (r) => `webhook ${String(r[0])}`,
  secret: ['secret'],
};
export const WEBHOOK_ALERTS: TableSpec = {
  table: 'webhook_alerts',
  label: 'webhook alerts',
  key: ['key'],
  kinds: { key: 'text', owner: 'text', namespace: 'text', created_at: 'int', messages: 'int' },
  name: (r) => `webhook alert ${String(r[0])}`,
};
export const WEBHOOK_MESSAGES: TableSpec = {
  table: 'webhook_messages',
  label: 'webhook messages',
  key: ['id'],
  kinds: {
    id: 'text',
    webhook_id: 'text',
    alert_key: 'text',
    owner: 'text',
    payload: 'text',
    created_at: 'int',
    attempts: 'int',
    next_at: 'int?',
    delivered_at: 'int?',
    gave_up_at: 'int?',
  },
  name: (r) => `webhook message ${String(r[0])}`,
};
export const WEBHOOK_ATTEMPTS: TableSpec = {
  table: 'webhook_attempts',
  label: 'webhook attempts',
  key: ['message_id', 'attempt'],
  kinds: {
    message_id: 'text',
    attempt: 'int',
    webhook_id: 'text',
    at: 'int',
    ms: 'int',
    status: 'int?',
    error: 'text?',
    outcome: 'text',
  },
  name: (r) => `attempt ${String(r[1])} of webhook message ${String(r[0])}`,
};
export const TABLES: readonly TableSpec[] = [
  KEYS,
  EVENTS,
  EPOCHS,
  NODES,
  ATTEMPTS,
  ANCHORS,
  CLASSIFICATIONS,
  METERS,
  LIMITS,
  WEBHOOKS,
  WEBHOOK_ALERTS,
  WEBHOOK_MESSAGES,
  WEBHOOK_ATTEMPTS,
];
/** Tables a source ledger may predate (its schema has not got them yet): such a ledger has none of their rows. */
export const OPTIONAL_TABLES: readonly TableSpec[] = [
  CLASSIFICATIONS,
  METERS,
  LIMITS,
  WEBHOOKS,
  WEBHOOK_ALERTS,
  WEBHOOK_MESSAGES,
  WEBHOOK_ATTEMPTS,
];
/** The events columns a source from before corrections (schema < 10) lacks, and what it holds instead. */
export const CORRECTION_DEFAULTS: Readonly<Record<string, string>> = {
  kind: '0',
  corrects_id: 'NULL',
  chain_id: 'NULL',
  prev_caller: 'NULL',
  prev_action: 'NULL',
  prev_units: 'NULL',
};

/** The columns as SQLite stores them (and the copy takes them). */
export const sqliteColumns = (spec: TableSpec): string[] => Object.keys(spec.kinds);
/** The columns read for a comparison: events with their id as well. */
export const columnsOf = (spec: TableSpec): string[] => (spec === EVENTS ? ['id', ...sqliteColumns(spec)] : sqliteColumns(spec));

export type Cell = string | number | boolean | null | Buffer;

type Fail = (message: string, epoch?: number) => never;

/** A row of either engine in one comparable form: integers as numbers, blobs as Buffers, ts_explicit and booleans as booleans. */
function cells(spec: TableSpec, r: Row, fail: Fail): Cell[] {
  const num = (c: string): number => {
    const v = r[c];
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) fail(`${spec.table}.${c}: ${String(v)} is not an integer in 0 … 2^53−1`);
    return n as number;
  };
  return columnsOf(spec).map((c): Cell => {
    const v = r[c];
    if (c === 'ts_explicit') return v === true || v === 1 || v === 1n;
    // An event's id is its SQLite seq; its seq is null until an epoch holds it.
    const kind: Kind = spec !== EVENTS ? spec.kinds[c]! : c === 'id' ? 'int' : c === 'seq' ? 'int?' : spec.kinds[c]!;
    if (kind === 'int') return num(c); // a null too: refused, never compared as equal
    if (kind === 'bool') {
      // SQLite's 0/1, PostgreSQL's boolean; anything else is refused, never taken as false.
      if (v === true || v === 1 || v === 1n) return true;
      if (v === false || v === 0 || v === 0n) return false;
      fail(`${spec.table}.${c}: ${typeof v === 'string' ? 'a text' : String(v)} is not a boolean`);
    }
    if (v === null || v === undefined) return null;
    if (kind === 'int?') return num(c);
    if (kind.startsWith('text')) return String(v);
    return Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array);
  });
}

function same(a: Cell, b: Cell): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  return a === b;
}
// A long text (a webhook message's payload holds up to 64 KiB) shown by its start.
const show = (v: Cell): string =>
  Buffer.isBuffer(v)
    ? v.length <= 32
      ? v.toString('hex')
      : `${v.length} bytes ${v.subarray(0, 8).toString('hex')}…`
    : typeof v === 'string' && v.length > 200
      ? `${JSON.stringify(v.slice(0, 200))}… (${v.length} characters)`
      : JSON.stringify(v);

/** Compares a table row by row, in key order; returns how many rows matched. `fail` names the first difference. */
export async function compareTable(
  spec: TableSpec,
  source: AsyncIterable<Row[]>,
  target: AsyncIterable<Row[]>,
  fail: Fail,
  tick: (done: number) => void,
): Promise<number> {
  const names = columnsOf(spec);
  const epochOf = (row: Cell[]) => (spec === NODES || spec === EPOCHS || spec === ANCHORS ? (row[0] as number) : undefined);
  const src = (async function* () {
    for await (const batch of source) for (const r of batch) yield cells(spec, r, fail);
  })();
  let n = 0;
  for await (const batch of target) {
    for (const r of batch) {
      const t = cells(spec, r, fail);
      const s = await src.next();
      if (s.done) fail(`${spec.label}: the copy holds ${spec.name(t)}, which the source does not have`, epochOf(t));
      const i = s.value.findIndex((v, k) => !same(v, t[k]!));
      if (i >= 0)
        fail(
          spec.secret?.includes(names[i]!)
            ? `${spec.name(s.value)}: ${names[i]} differs between the copy and the source (not shown: a secret)`
            : `${spec.name(s.value)}: ${names[i]} is ${show(t[i]!)} in the copy but ${show(s.value[i]!)} in the source`,
          epochOf(s.value),
        );
      n++;
    }
    tick(n);
  }
  const rest = await src.next();
  if (!rest.done) fail(`${spec.name(rest.value)} of the source is missing from the copy`, epochOf(rest.value));
  return n;
}
