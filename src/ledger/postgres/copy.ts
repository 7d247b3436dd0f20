// Bulk copy of a whole ledger's raw rows into an empty PostgreSQL ledger (`receipts migrate`),
// in one transaction: the target ends up with everything or nothing. ids, seqs, epochs and
// nodes are kept as they are, so every receipt already handed out stays valid.
import type pg from 'pg';
import { transaction } from './db.ts';
import { DEFAULT_RIGHTS, rightsJson } from '../api-keys.ts';
import {
  CLASSIFICATIONS,
  LIMITS,
  METERS,
  type TableSpec,
  WEBHOOK_ALERTS,
  WEBHOOK_ATTEMPTS,
  WEBHOOK_MESSAGES,
  WEBHOOKS,
} from '../copy-tables.ts';

type Int = number | bigint;
type Blob = Uint8Array;

/**
 * Rows handed over a slice at a time: an array, or a source that reads each slice on demand
 * (slices come in order, each from where the last ended or again from 0; epochs are read twice),
 * so that a large ledger's rows never need to be in memory all at once (`receipts migrate`).
 */
export interface RowSource<R> {
  readonly length: number;
  slice(start: number, end: number): R[];
}

/** Rows with the SQLite engine's column names; blobs as Buffers (or Uint8Arrays). */
export interface CopyData {
  keys: RowSource<{
    id: string;
    owner: string;
    namespaces: string;
    key_hash: Blob;
    created_at: Int;
    revoked_at: Int | null;
    rights?: string;
  }>;
  /**
   * SQLite rows carry `seq` only (id = seq); the events after the last epoch become unsealed
   * (seq null) and are sealed in the same order later. PostgreSQL rows carry `id` and `seq`.
   */
  events: RowSource<{
    id?: Int;
    seq: Int | null;
    namespace: string;
    request_id: string;
    owner: string;
    key_id: string;
    caller: string;
    action: string;
    units: Int;
    artifact_digest: Blob | null;
    ts: Int;
    ts_explicit: number | boolean;
    received_at: Int;
    source: string | null;
    metadata: string | null;
    leaf_hash: Blob;
    /** Absent in a source from before corrections (schema < 10): an ordinary event. */
    kind?: Int;
    corrects_id?: Int | null;
    chain_id?: Int | null;
    prev_caller?: string | null;
    prev_action?: string | null;
    prev_units?: Int | null;
  }>;
  epochs: RowSource<{ epoch: Int; first_seq: Int; last_seq: Int; size: Int; root: Blob; first_ts: Int; last_ts: Int; sealed_at: Int }>;
  nodes: RowSource<{ epoch: Int; level: Int; chunk: Int; hashes: Blob }>;
  attempts: RowSource<{ tx_digest: string; first_epoch: Int; last_epoch: Int; created_at: Int }>;
  anchors: RowSource<{
    epoch: Int;
    network: string;
    package_id: string;
    registry_id: string;
    tx_digest: string | null;
    checkpoint: string | null;
    anchored_at: Int;
  }>;
  /** The billable classification history (a source from before it existed has none). */
  classifications?: RowSource<{ from_ms: Int; billable: string; non_billable: string; other: string; created_at: Int }>;
  /** Every version of every meter (a source from before schema 008 has none). */
  meters?: RowSource<{
    owner: string;
    name: string;
    version: Int;
    aggregation: string;
    actions: string | null;
    from_ms: Int;
    created_at: Int;
  }>;
  /** Every version of every limit (a source from before schema 011 has none); deleted 0/1 or boolean. */
  limits?: RowSource<{
    owner: string;
    id: string;
    version: Int;
    namespace: string;
    meter: string | null;
    actions: string | null;
    measure: string;
    period: string;
    tz: string;
    hard: Int | null;
    soft: string | null;
    soft_units: string | null;
    deleted: number | bigint | boolean;
    from_ms: Int;
    created_at: Int;
  }>;
  /** Webhooks with their signing secret, the alerts raised, the outbox and the attempt log (schema 012). */
  webhooks?: RowSource<{ id: string; owner: string; url: string; namespaces: string; secret: string; created_at: Int }>;
  webhookAlerts?: RowSource<{ key: string; owner: string; namespace: string; created_at: Int; messages: Int }>;
  webhookMessages?: RowSource<{
    id: string;
    webhook_id: string;
    alert_key: string;
    owner: string;
    payload: string;
    created_at: Int;
    attempts: Int;
    next_at: Int | null;
    delivered_at: Int | null;
    gave_up_at: Int | null;
  }>;
  webhookAttempts?: RowSource<{
    message_id: string;
    attempt: Int;
    webhook_id: string;
    at: Int;
    ms: Int;
    status: Int | null;
    error: string | null;
    outcome: string;
  }>;
}

export interface CopyCounts {
  keys: number;
  events: number;
  epochs: number;
  nodes: number;
  attempts: number;
  anchors: number;
  classifications?: number;
  /** Meter versions (rows), when the source has the meters table. */
  meters?: number;
  /** Limit versions (rows), when the source has the limits table. */
  limits?: number;
  /** Rows of the webhook tables, when the source has them. */
  webhooks?: number;
  webhook_alerts?: number;
  webhook_messages?: number;
  webhook_attempts?: number;
}

const BATCH = 1000;

function int(v: Int | null, what: string): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what}: ${String(v)} is not an integer in 0 … 2^53−1`);
  return n;
}

function blob(v: Blob | null): Buffer | null {
  if (v === null || v === undefined) return null;
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * The columns of a table of plain integers, texts and booleans, in its spec's order (src/ledger/
 * copy-tables.ts): integers checked and bound as int8 (an int4 column takes them by assignment,
 * refusing one out of its range), SQLite's 0/1 as booleans (its CHECK allows nothing else; the
 * source's rows are checked on reading).
 */
function plainColumns(spec: TableSpec): Array<[string, string, (r: Record<string, unknown>) => unknown]> {
  return Object.entries(spec.kinds).map(([name, kind]): [string, string, (r: Record<string, unknown>) => unknown] => {
    if (kind === 'int' || kind === 'int?') return [name, 'int8', (r) => int(r[name] as Int | null, `${spec.table}.${name}`)];
    if (kind === 'text' || kind === 'text?') return [name, 'text', (r) => r[name]];
    if (kind === 'bool') return [name, 'bool', (r) => r[name] === true || r[name] === 1 || r[name] === 1n];
    throw new Error(`${spec.table}.${name}: a ${kind} column is not copied as a plain one`);
  });
}

/** Inserts rows in batches through unnest: one array parameter per column. */
async function insertRows<R>(
  client: pg.PoolClient,
  table: string,
  columns: Array<[name: string, type: string, get: (r: R) => unknown]>,
  rows: RowSource<R>,
): Promise<void> {
  const names = columns.map((c) => c[0]).join(', ');
  const arrays = columns.map((c, i) => `$${i + 1}::${c[1]}[]`).join(', ');
  const text = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${arrays})`;
  for (let start = 0; start < rows.length; start += BATCH) {
    const slice = rows.slice(start, start + BATCH);
    await client.query({ name: `copy-${table}`, text, values: columns.map((c) => slice.map(c[2])) });
  }
}

/** Whether the database holds anything of a ledger: keys, events, epochs, anchor attempts, classification periods, meters, limits or webhooks. */
export async function holdsLedger(db: pg.Pool | pg.ClientBase): Promise<boolean> {
  const { rows } = await db.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM events)
    OR EXISTS (SELECT 1 FROM epochs) OR EXISTS (SELECT 1 FROM anchor_attempts) OR EXISTS (SELECT 1 FROM classifications)
    OR EXISTS (SELECT 1 FROM meters) OR EXISTS (SELECT 1 FROM limits) OR EXISTS (SELECT 1 FROM webhooks)
    OR EXISTS (SELECT 1 FROM webhook_alerts) AS any`);
  return rows[0]!.any;
}

/** Writes everything into an empty ledger in one transaction. Refuses a ledger that holds anything. */
export async function copyRows(pool: pg.Pool, data: CopyData): Promise<CopyCounts> {
  return transaction(pool, async (client) => {
    // No instance may write or seal meanwhile; readers go on.
    await client.query(
      `LOCK TABLE api_keys, events, epochs, epoch_nodes, anchor_attempts, anchors, classifications, meters, limits,
        webhooks, webhook_alerts, webhook_messages, webhook_attempts IN EXCLUSIVE MODE`,
    );
    if (await holdsLedger(client))
      throw new Error(
        'the target database already holds a ledger (keys, events, epochs, anchor attempts, classification periods, meters, limits or webhooks); copy into an empty one',
      );

    let lastSealed = 0;
    for (let start = 0; start < data.epochs.length; start += BATCH) {
      for (const e of data.epochs.slice(start, start + BATCH)) lastSealed = Math.max(lastSealed, int(e.last_seq, 'epochs.last_seq')!);
    }
    await insertRows(
      client,
      'api_keys',
      [
        ['id', 'text', (r) => r.id],
        ['owner', 'text', (r) => r.owner],
        ['namespaces', 'text', (r) => r.namespaces],
        ['key_hash', 'bytea', (r) => blob(r.key_hash)],
        ['created_at', 'int8', (r) => int(r.created_at, 'api_keys.created_at')],
        ['revoked_at', 'int8', (r) => int(r.revoked_at, 'api_keys.revoked_at')],
        // A row from before key rights: record and read, as migration 007 gives such keys.
        ['rights', 'text', (r) => r.rights ?? rightsJson(DEFAULT_RIGHTS)],
      ],
      data.keys,
    );
    await insertRows(
      client,
      'events',
      [
        ['id', 'int8', (r) => int(r.id ?? r.seq, 'events.id')],
        [
          'seq',
          'int8',
          (r) => {
            const seq = int(r.seq, 'events.seq');
            if (r.id !== undefined) return seq; // a PostgreSQL row: as it was
            return seq !== null && seq <= lastSealed ? seq : null; // SQLite: sealed ones keep their place
          },
        ],
        ['namespace', 'text', (r) => r.namespace],
        ['request_id', 'text', (r) => r.request_id],
        ['owner', 'text', (r) => r.owner],
        ['key_id', 'text', (r) => r.key_id],
        ['caller', 'text', (r) => r.caller],
        ['action', 'text', (r) => r.action],
        ['units', 'int8', (r) => int(r.units, 'events.units')],
        ['artifact_digest', 'bytea', (r) => blob(r.artifact_digest)],
        ['ts', 'int8', (r) => int(r.ts, 'events.ts')],
        ['ts_explicit', 'bool', (r) => r.ts_explicit === true || r.ts_explicit === 1],
        ['received_at', 'int8', (r) => int(r.received_at, 'events.received_at')],
        ['source', 'text', (r) => r.source],
        ['metadata', 'text', (r) => r.metadata],
        ['leaf_hash', 'bytea', (r) => blob(r.leaf_hash)],
        ['kind', 'int2', (r) => int(r.kind ?? 0, 'events.kind')],
        ['corrects_id', 'int8', (r) => int(r.corrects_id ?? null, 'events.corrects_id')],
        ['chain_id', 'int8', (r) => int(r.chain_id ?? null, 'events.chain_id')],
        ['prev_caller', 'text', (r) => r.prev_caller ?? null],
        ['prev_action', 'text', (r) => r.prev_action ?? null],
        ['prev_units', 'int8', (r) => int(r.prev_units ?? null, 'events.prev_units')],
      ],
      data.events,
    );
    await insertRows(
      client,
      'epochs',
      [
        ['epoch', 'int8', (r) => int(r.epoch, 'epochs.epoch')],
        ['first_seq', 'int8', (r) => int(r.first_seq, 'epochs.first_seq')],
        ['last_seq', 'int8', (r) => int(r.last_seq, 'epochs.last_seq')],
        ['size', 'int8', (r) => int(r.size, 'epochs.size')],
        ['root', 'bytea', (r) => blob(r.root)],
        ['first_ts', 'int8', (r) => int(r.first_ts, 'epochs.first_ts')],
        ['last_ts', 'int8', (r) => int(r.last_ts, 'epochs.last_ts')],
        ['sealed_at', 'int8', (r) => int(r.sealed_at, 'epochs.sealed_at')],
      ],
      data.epochs,
    );
    await insertRows(
      client,
      'epoch_nodes',
      [
        ['epoch', 'int8', (r) => int(r.epoch, 'epoch_nodes.epoch')],
        ['level', 'int4', (r) => int(r.level, 'epoch_nodes.level')],
        ['chunk', 'int4', (r) => int(r.chunk, 'epoch_nodes.chunk')],
        ['hashes', 'bytea', (r) => blob(r.hashes)],
      ],
      data.nodes,
    );
    await insertRows(
      client,
      'anchor_attempts',
      [
        ['tx_digest', 'text', (r) => r.tx_digest],
        ['first_epoch', 'int8', (r) => int(r.first_epoch, 'anchor_attempts.first_epoch')],
        ['last_epoch', 'int8', (r) => int(r.last_epoch, 'anchor_attempts.last_epoch')],
        ['created_at', 'int8', (r) => int(r.created_at, 'anchor_attempts.created_at')],
      ],
      data.attempts,
    );
    await insertRows(
      client,
      'anchors',
      [
        ['epoch', 'int8', (r) => int(r.epoch, 'anchors.epoch')],
        ['network', 'text', (r) => r.network],
        ['package_id', 'text', (r) => r.package_id],
        ['registry_id', 'text', (r) => r.registry_id],
        ['tx_digest', 'text', (r) => r.tx_digest],
        ['checkpoint', 'text', (r) => r.checkpoint],
        ['anchored_at', 'int8', (r) => int(r.anchored_at, 'anchors.anchored_at')],
      ],
      data.anchors,
    );
    // The tables of plain integers, texts and booleans: each column as its spec says.
    const plain: Array<[TableSpec, RowSource<Record<string, unknown>> | undefined]> = [
      [CLASSIFICATIONS, data.classifications],
      [METERS, data.meters],
      [LIMITS, data.limits],
      [WEBHOOKS, data.webhooks],
      [WEBHOOK_ALERTS, data.webhookAlerts],
      [WEBHOOK_MESSAGES, data.webhookMessages],
      [WEBHOOK_ATTEMPTS, data.webhookAttempts],
    ];
    for (const [spec, rows] of plain) if (rows) await insertRows(client, spec.table, plainColumns(spec), rows);

    // The copy must be a ledger this engine can go on from: epochs 0 … n−1 without gaps, each a
    // dense run right after the one before, holding exactly the events numbered into it.
    const check = await client.query<{ bad: string | null }>(`
      WITH e AS (SELECT epoch, first_seq, last_seq, row_number() OVER (ORDER BY epoch) - 1 AS want,
                        lag(last_seq, 1, 0::bigint) OVER (ORDER BY epoch) AS prev FROM epochs)
      SELECT CASE
        WHEN EXISTS (SELECT 1 FROM e WHERE epoch <> want) THEN 'epochs are not numbered 0, 1, 2 … without gaps'
        WHEN EXISTS (SELECT 1 FROM e WHERE first_seq <> prev + 1) THEN 'an epoch does not start right after the one before'
        WHEN (SELECT count(*) FROM events WHERE seq IS NOT NULL) <> (SELECT coalesce(sum(size), 0) FROM epochs)
          THEN 'the sealed events do not match the epochs'' sizes'
        WHEN EXISTS (SELECT 1 FROM events WHERE seq > (SELECT coalesce(max(last_seq), 0) FROM epochs))
          THEN 'an event is numbered past the last epoch'
        WHEN EXISTS (SELECT 1 FROM epochs p WHERE NOT EXISTS
          (SELECT 1 FROM epoch_nodes n WHERE n.epoch = p.epoch AND n.level = 0 AND n.chunk = 0))
          THEN 'an epoch has no stored tree nodes'
      END AS bad`);
    if (check.rows[0]!.bad) throw new Error(`refusing the copy, nothing was written: ${check.rows[0]!.bad}`);

    // New events continue after the highest copied id, and that id counts as drawn: latestId()
    // reads the sequence's last value only once it is called, so with is_called false the
    // position of every read (limit checks, usage as_of) was 0 until the first new event.
    await client.query(`SELECT CASE WHEN m.id > 0 THEN setval('events_id_seq'::regclass, m.id, true)
      ELSE setval('events_id_seq'::regclass, 1, false) END FROM (SELECT coalesce(max(id), 0) AS id FROM events) m`);
    return {
      keys: data.keys.length,
      events: data.events.length,
      epochs: data.epochs.length,
      nodes: data.nodes.length,
      attempts: data.attempts.length,
      anchors: data.anchors.length,
      ...(data.classifications && { classifications: data.classifications.length }),
      ...(data.meters && { meters: data.meters.length }),
      ...(data.limits && { limits: data.limits.length }),
      ...(data.webhooks && { webhooks: data.webhooks.length }),
      ...(data.webhookAlerts && { webhook_alerts: data.webhookAlerts.length }),
      ...(data.webhookMessages && { webhook_messages: data.webhookMessages.length }),
      ...(data.webhookAttempts && { webhook_attempts: data.webhookAttempts.length }),
    };
  });
}
