// Events on PostgreSQL. Writes use group commit: requests queued while the previous commit is in
// flight (or within maxDelayMs) go to the database together as ONE statement, which is its own
// transaction, and each request is answered only after that statement has committed.
//
// ids come from a bigserial and, with several writers, commit out of order; they are the public
// handle only. The ledger order is seq, assigned when the event is sealed (see epochs.ts).
import type pg from 'pg';
import type { NormalizedEvent } from '../../event/validate.ts';
import type { CorrectionResult, CorrectionToWrite, EventPageQuery, EventRecord, EventStore, EventToWrite, WriteResult } from '../types.ts';
import {
  CORRECTION_COLUMNS,
  chainRootOf,
  correctionValues,
  decideCorrection,
  refuseBeforeRead,
  VERSION_COLUMNS,
  type VersionRow,
} from '../corrections.ts';
import {
  CORRECTION_READ_COLUMNS,
  eventRecordOf,
  leafHashOf,
  storedValues,
  repeatOf,
  type EventRow,
  type StoredForComparison,
} from '../event-record.ts';
import { LedgerUnavailableError } from '../errors.ts';
import { GroupCommittedWrites, type CommitJob, type GroupCommitOptions } from '../group-commit.ts';

/** How long latestId() waits for the inserts open when it was called. */
const LATEST_WAIT_MS = 15_000;

export type { GroupCommitOptions } from '../group-commit.ts';

type StoredRow = StoredForComparison & { id: number; namespace: string; request_id: string; leaf_hash: Buffer };

const EVENT_COLUMNS = `id, seq, namespace, request_id, caller, action, units, artifact_digest, ts, leaf_hash, ${CORRECTION_READ_COLUMNS.postgres}`;

/**
 * Advisory lock key "sui-rcpW". Every insert holds it shared from before it draws ids until it
 * commits. latestId() reads the last id drawn, then waits (polling, without taking the lock) until
 * every transaction that held the lock at that moment has ended: after that, the events with
 * id ≤ bound never change, even though ids commit out of order, and no writer ever waited for it.
 */
export const WRITERS_LOCK = 0x7375692d72637057n;
const WRITERS_HIGH = Number(WRITERS_LOCK >> 32n);
const WRITERS_LOW = Number(WRITERS_LOCK & 0xffffffffn);

// The lock comes first: an uncorrelated subquery in WHERE is a one-time filter, run before any
// row is read, so before nextval. A request id already stored (a retry) is answered from what a
// plain read sees, never inserted: its row may be locked by a seal in progress, and an insert
// would wait for that seal, and with it every event of the group. ids are then drawn in arrival
// order (nextval after the ordinality sort), and rows are inserted in (namespace, request_id)
// byte order: every writer takes the unique-index locks in the same order, so two instances
// inserting overlapping new request ids wait for each other, never deadlock. The answer is the
// rows inserted (created) and the stored rows the retries repeat (to compare, in the same trip).
const INSERT_SQL = `WITH input AS MATERIALIZED (
    SELECT t.*
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[],
                $8::bytea[], $9::int8[], $10::bool[], $11::int8[], $12::text[], $13::text[], $14::bytea[])
      WITH ORDINALITY AS t(namespace, request_id, owner, key_id, caller, action, units, artifact_digest,
                           ts, ts_explicit, received_at, source, metadata, leaf_hash, ord)
    WHERE (SELECT count(*) FROM (SELECT pg_advisory_xact_lock_shared($15::int8)) AS lock) = 1),
  known AS MATERIALIZED (
    SELECT e.id, e.namespace, e.request_id, e.caller, e.action, e.units, e.artifact_digest, e.ts,
           e.ts_explicit, e.source, e.metadata, e.leaf_hash, e.kind
    FROM input i JOIN events e ON e.namespace = i.namespace AND e.request_id = i.request_id),
  fresh AS MATERIALIZED (
    SELECT nextval('events_id_seq'::regclass) AS id, i.*
    FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.namespace = i.namespace AND k.request_id = i.request_id)
    ORDER BY i.ord),
  inserted AS (
    INSERT INTO events (id, namespace, request_id, owner, key_id, caller, action, units, artifact_digest, ts,
                        ts_explicit, received_at, source, metadata, leaf_hash)
    SELECT id, namespace, request_id, owner, key_id, caller, action, units, artifact_digest, ts,
           ts_explicit, received_at, source, metadata, leaf_hash
    FROM fresh ORDER BY namespace COLLATE "C", request_id COLLATE "C"
    ON CONFLICT (namespace, request_id) DO NOTHING
    RETURNING id, namespace, request_id)
  SELECT true AS created, id, namespace, request_id, NULL AS caller, NULL AS action, NULL::int8 AS units,
         NULL::bytea AS artifact_digest, NULL::int8 AS ts, NULL::bool AS ts_explicit, NULL AS source,
         NULL AS metadata, NULL::bytea AS leaf_hash, NULL::smallint AS kind
  FROM inserted
  UNION ALL
  SELECT false, * FROM known`;

const EXISTING_SQL = `SELECT e.id, e.namespace, e.request_id, e.caller, e.action, e.units, e.artifact_digest, e.ts,
    e.ts_explicit, e.source, e.metadata, e.leaf_hash, e.kind
  FROM unnest($1::text[], $2::text[]) AS k(namespace, request_id)
  JOIN events e ON e.namespace = k.namespace AND e.request_id = k.request_id`;

// Keyset paging on (ts, id) within the (namespace, ts, id) index; id <= the snapshot bound.
export const PAGE_SQL = `SELECT ${EVENT_COLUMNS} FROM events
  WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4 AND (ts, id) > ($5, $6)
  ORDER BY ts, id LIMIT $7`;
// Newest first: the same index walked backwards.
export const PAGE_DESC_SQL = `SELECT ${EVENT_COLUMNS} FROM events
  WHERE namespace = $1 AND ts >= $2 AND ts < $3 AND id <= $4 AND (ts, id) < ($5, $6)
  ORDER BY ts DESC, id DESC LIMIT $7`;

// A correction's row, inserted in one autocommitted statement that takes the writers' lock first
// (the uncorrelated subquery is a one-time filter, run before nextval draws the id).
const CORRECTION_INSERT_SQL = `INSERT INTO events (${CORRECTION_COLUMNS})
  SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::int8, $8::bytea, $9::int8, $10::bool, $11::int8,
         $12::text, $13::bytea, $14::int2, $15::int8, $16::int8, $17::text, $18::text, $19::int8
  WHERE (SELECT count(*) FROM (SELECT pg_advisory_xact_lock_shared($20::int8)) AS lock) = 1
  RETURNING id`;

/** PostgreSQL text cannot hold U+0000; one such field must fail its own request, not the batch. */
function nulField(e: NormalizedEvent): string | null {
  for (const f of ['namespace', 'request_id', 'caller', 'action', 'source', 'metadata'] as const) {
    if (e[f]?.includes('\u0000')) return f;
  }
  return null;
}

/**
 * One map key per (namespace, request_id): joined by U+0000, which neither can hold here (refuse()
 * turns such an event away before it is queued), so two pairs never share a key. A JSON array
 * was 3–4 serializations an event on the hot path.
 */
const keyOf = (namespace: string, requestId: string) => `${namespace}\u0000${requestId}`;

export class PgEventStore extends GroupCommittedWrites implements EventStore {
  private readonly pool: pg.Pool;

  constructor(pool: pg.Pool, options: GroupCommitOptions = {}) {
    super(options);
    this.pool = pool;
  }

  protected override refuse(items: EventToWrite[]): Error | null {
    for (const item of items) {
      const field = nulField(item.event);
      if (field) return new Error(`${field} contains the character U+0000, which PostgreSQL text cannot store; remove it and retry`);
    }
    return null;
  }

  /** Resolves once everything queued so far is committed (or failed). */
  flush(): Promise<void> {
    return this.flushQueue();
  }

  protected async commitGroup(jobs: CommitJob[]): Promise<WriteResult[][]> {
    // The first occurrence of a (namespace, request_id) in the group is inserted; a later one in
    // the same group is a duplicate or conflict of it, exactly as if it had come in the next commit.
    const first = new Map<string, { item: EventToWrite; hash: Buffer }>();
    const cols: unknown[][] = Array.from({ length: 14 }, () => []);
    const flat = jobs.flatMap((job) => job.items);
    const keys = flat.map((item) => keyOf(item.event.namespace, item.event.request_id)); // once per event
    const hashes = flat.map((item, n) => {
      const k = keys[n]!;
      const seen = first.get(k);
      if (seen) return seen.hash;
      const hash = leafHashOf(item.event);
      first.set(k, { item, hash });
      storedValues(item, hash, (explicit) => explicit).forEach((v, i) => cols[i]!.push(v));
      return hash;
    });

    // One statement, one transaction: committed when it returns.
    const answer = await this.pool.query<StoredRow & { created: boolean }>({
      name: 'events-insert',
      text: INSERT_SQL,
      values: [...cols, WRITERS_LOCK.toString()],
    });
    const created = new Map<string, number>();
    const stored = new Map<string, StoredRow>();
    for (const r of answer.rows) {
      if (r.created) created.set(keyOf(r.namespace, r.request_id), r.id);
      else stored.set(keyOf(r.namespace, r.request_id), r);
    }

    // What else needs its stored row: a repeat within this group of an id it created, and an id
    // that another instance committed while this statement ran (neither seen nor inserted). Stored
    // rows are never deleted: read them now.
    const missing = new Map<string, [string, string]>();
    const claimed = new Set<string>();
    flat.forEach((item, n) => {
      const k = keys[n]!;
      if (created.has(k) && !claimed.has(k)) claimed.add(k);
      else if (!stored.has(k)) missing.set(k, [item.event.namespace, item.event.request_id]);
    });
    if (missing.size > 0) {
      const pairs = [...missing.values()];
      const found = await this.pool.query<StoredRow>({
        name: 'events-existing',
        text: EXISTING_SQL,
        values: [pairs.map((k) => k[0]), pairs.map((k) => k[1])],
      });
      for (const r of found.rows) stored.set(keyOf(r.namespace, r.request_id), r);
    }

    const answered = new Set<string>();
    let i = 0;
    return jobs.map((job) =>
      job.items.map((item): WriteResult => {
        const k = keys[i]!;
        const hash = hashes[i++]!;
        const id = created.get(k);
        if (id !== undefined && !answered.has(k)) {
          answered.add(k);
          return { status: 'created', id, leaf_hash: hash.toString('hex') };
        }
        const row = stored.get(k);
        if (!row)
          throw new Error(`event ${item.event.namespace}/${item.event.request_id} was neither inserted nor found; retry the request`);
        return repeatOf(row.id, row, item.event);
      }),
    );
  }

  async get(id: number): Promise<EventRecord | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    const { rows } = await this.pool.query<EventRow>({
      name: 'events-get',
      text: `SELECT ${EVENT_COLUMNS} FROM events WHERE id = $1`,
      values: [id],
    });
    return rows[0] && eventRecordOf(rows[0]);
  }

  async page(q: EventPageQuery): Promise<EventRecord[]> {
    const text = q.desc ? PAGE_DESC_SQL : PAGE_SQL;
    const { rows } = await this.pool.query<EventRow>({
      name: q.desc ? 'events-page-desc' : 'events-page',
      text,
      values: [q.namespace, q.from, q.to, q.asOf, q.after[0], q.after[1], q.limit],
    });
    return rows.map(eventRecordOf);
  }

  async sourcesOf(keys: ReadonlyArray<readonly [string, string]>): Promise<Array<string | null | undefined>> {
    if (keys.length === 0) return [];
    // One round trip through the (namespace, request_id) unique index, whatever the count.
    const { rows } = await this.pool.query<{ ord: string; source: string | null }>({
      name: 'events-sources-of',
      text: `SELECT k.ord, e.source FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(namespace, request_id, ord)
             JOIN events e ON e.namespace = k.namespace AND e.request_id = k.request_id`,
      values: [keys.map((k) => k[0]), keys.map((k) => k[1])],
    });
    const sources: Array<string | null | undefined> = new Array(keys.length).fill(undefined);
    for (const r of rows) sources[Number(r.ord) - 1] = r.source;
    return sources;
  }

  async correct(items: CorrectionToWrite[]): Promise<CorrectionResult[]> {
    const out: CorrectionResult[] = [];
    for (const item of items) out.push(await this.correctOne(item));
    return out;
  }

  /**
   * One correction: three round trips and no explicit transaction. Reads what is committed (the
   * target; the correction's request id and the chain's latest version in one statement), decides,
   * then inserts in one statement that first takes the writers' lock shared like any insert (so a
   * paged read's snapshot bound stays exact). The unique indexes on corrects_id and on the request
   * id decide a race with another instance: the loser's insert fails, its connection goes back to
   * the pool, and the item is decided again, now seeing the winner.
   */
  private async correctOne(item: CorrectionToWrite): Promise<CorrectionResult> {
    const refused = refuseBeforeRead(item);
    if (refused) return refused;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.tryCorrect(item);
      } catch (err) {
        // 23505: another instance corrected the same version, or took the request id, first.
        if ((err as { code?: string }).code !== '23505' || attempt >= 3) throw err;
      }
    }
  }

  private async tryCorrect(item: CorrectionToWrite): Promise<CorrectionResult> {
    const t = item.target;
    const found = await this.pool.query<VersionRow>(
      'id' in t
        ? { name: 'corrections-target-id', text: `SELECT id, ${VERSION_COLUMNS} FROM events WHERE id = $1`, values: [t.id] }
        : {
            name: 'corrections-target-key',
            text: `SELECT id, ${VERSION_COLUMNS} FROM events WHERE namespace = $1 AND request_id = $2`,
            values: [t.namespace, t.request_id],
          },
    );
    const target = found.rows[0];
    let repeat: VersionRow | undefined;
    let latest: VersionRow | undefined;
    if (target) {
      const { rows } = await this.pool.query<VersionRow & { w: string }>({
        name: 'corrections-around',
        text: `SELECT 'r' AS w, id, ${VERSION_COLUMNS} FROM events WHERE namespace = $1 AND request_id = $2
               UNION ALL
               (SELECT 'h' AS w, id, ${VERSION_COLUMNS} FROM events WHERE chain_id = $3 ORDER BY id DESC LIMIT 1)`,
        values: [target.namespace, item.request_id, chainRootOf(target)],
      });
      repeat = rows.find((r) => r.w === 'r');
      latest = rows.find((r) => r.w === 'h');
    }
    const d = decideCorrection(item, target, repeat, latest);
    if ('answer' in d) return d.answer;
    const { rows } = await this.pool.query<{ id: number }>({
      name: 'corrections-insert',
      text: CORRECTION_INSERT_SQL,
      values: [...correctionValues(d.insert, true), WRITERS_LOCK.toString()],
    });
    return {
      status: 'created',
      id: rows[0]!.id,
      leaf_hash: d.insert.leaf_hash.toString('hex'),
      corrects_id: d.insert.corrects_id,
      chain_id: d.insert.chain_id,
    };
  }

  async byRequestId(namespace: string, requestId: string): Promise<EventRecord | undefined> {
    if (namespace.includes('\u0000') || requestId.includes('\u0000')) return undefined; // PostgreSQL text cannot hold it: nothing stored has it
    const { rows } = await this.pool.query<EventRow>({
      name: 'events-by-request-id',
      text: `SELECT ${EVENT_COLUMNS} FROM events WHERE namespace = $1 AND request_id = $2`,
      values: [namespace, requestId],
    });
    return rows[0] && eventRecordOf(rows[0]);
  }

  async chainOf(id: number): Promise<EventRecord[]> {
    if (!Number.isSafeInteger(id)) return [];
    const { rows } = await this.pool.query<EventRow>({
      name: 'events-chain',
      text: `WITH root AS (SELECT coalesce(chain_id, id) AS r FROM events WHERE id = $1)
             SELECT ${EVENT_COLUMNS} FROM events WHERE id = (SELECT r FROM root)
             UNION ALL
             SELECT ${EVENT_COLUMNS} FROM events WHERE chain_id = (SELECT r FROM root)
             ORDER BY id`,
      values: [id],
    });
    return rows.map(eventRecordOf);
  }

  async latestId(): Promise<number> {
    // The last id drawn, then the writers that may still hold one at or below it: those that hold
    // the writers' lock now (each took it before drawing). Wait for them to end without taking the
    // lock ourselves, so no writer ever queues behind a reader.
    const drawn = await this.pool.query<{ bound: number }>({
      name: 'events-drawn',
      text: 'SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS bound FROM events_id_seq',
    });
    const bound = drawn.rows[0]!.bound;
    const holders = (q: string, values: unknown[]) => this.pool.query<{ v: string }>({ text: q, values });
    let open = (
      await holders(
        `SELECT virtualtransaction AS v FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid AND objid = $2::oid
         AND objsubid = 1 AND granted`,
        [WRITERS_HIGH, WRITERS_LOW],
      )
    ).rows.map((r) => r.v);
    const deadline = Date.now() + LATEST_WAIT_MS;
    for (let pause = 1; open.length > 0; pause = Math.min(pause * 2, 25)) {
      if (Date.now() > deadline)
        throw new LedgerUnavailableError(`${open.length} insert(s) still open after ${LATEST_WAIT_MS} ms; retry the request`);
      await new Promise((r) => setTimeout(r, pause));
      open = (
        await holders(
          `SELECT virtualtransaction AS v FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid AND objid = $2::oid
           AND objsubid = 1 AND granted AND virtualtransaction = ANY($3::text[])`,
          [WRITERS_HIGH, WRITERS_LOW, open],
        )
      ).rows.map((r) => r.v);
    }
    const { rows } = await this.pool.query<{ m: number }>({
      name: 'events-latest',
      text: 'SELECT coalesce(max(id), 0) AS m FROM events WHERE id <= $1',
      values: [bound],
    });
    return rows[0]!.m;
  }

  async unsealed(): Promise<{ events: number; oldestReceivedAt: number | null }> {
    // Both through the partial index of unsealed ids: as cheap with 1e9 sealed events as with none.
    const { rows } = await this.pool.query<{ n: number; oldest: number | null }>({
      name: 'events-unsealed',
      text: 'SELECT count(*) AS n, min(received_at) AS oldest FROM events WHERE seq IS NULL',
    });
    return { events: rows[0]!.n, oldestReceivedAt: rows[0]!.oldest };
  }
}
