// Events on SQLite. Writes use group commit: requests arriving close together share one write
// transaction (one WAL sync), and each request is answered only once its rows are committed.
// SQLite has one writer, so ids commit in order and the id is also the ledger position (seq).
import type {
  AnchorRecord,
  CorrectionResult,
  CorrectionToWrite,
  EventPageQuery,
  EventRecord,
  EventStore,
  EventToWrite,
  EventWithBlock,
  LeafBlock,
  WriteResult,
} from '../types.ts';
import { HASH_SIZE } from '../../merkle/hash.ts';
import { nodePlace } from '../node-chunks.ts';
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
import { GroupCommittedWrites, type CommitJob, type GroupCommitOptions } from '../group-commit.ts';
import type { Db } from './db.ts';

export type { GroupCommitOptions } from '../group-commit.ts';

type StoredRow = StoredForComparison & { seq: number; leaf_hash: Buffer };

/** seq is also the public id on SQLite. */
const EVENT_COLUMNS = `seq AS id, seq, namespace, request_id, caller, action, units, artifact_digest, ts, leaf_hash, ${CORRECTION_READ_COLUMNS.sqlite}`;

/** Keyset paging on (ts, seq) within the (namespace, ts) index; seq ≤ the snapshot bound. */
export const PAGE_SQL = `SELECT ${EVENT_COLUMNS} FROM events
  WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ? AND (ts, seq) > (?, ?)
  ORDER BY ts, seq LIMIT ?`;
/** Newest first: the same index walked backwards. */
export const PAGE_DESC_SQL = `SELECT ${EVENT_COLUMNS} FROM events
  WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ? AND (ts, seq) < (?, ?)
  ORDER BY ts DESC, seq DESC LIMIT ?`;

/**
 * A receipt's reads in one statement, so in one read transaction (on a WAL database each
 * statement begins and ends its own: two fcntl calls and an fstat, counted with strace): the
 * event, its block of leaf hashes (a slice of one stored chunk: an aligned block of 8 never
 * straddles a chunk of 64) and the epoch's anchor. In a loop over a 1M-event ledger: 22–31 µs,
 * against 33–45 µs for the three reads apart.
 */
const WITH_BLOCK_SQL = `SELECT ${EVENT_COLUMNS},
    substr((SELECT hashes FROM epoch_nodes WHERE epoch = @epoch AND level = 0 AND chunk = @chunk), @offset, @length) AS block,
    (SELECT json_array(network, package_id, registry_id, tx_digest, checkpoint, anchored_at) FROM anchors WHERE epoch = @epoch) AS anchor
  FROM events WHERE seq = @id`;
// (The event with a LEFT JOIN of anchors instead of the subquery took 66–70 µs by itself in that loop.)

type WithBlockRow = EventRow & { block: Buffer | null; anchor: string | null };
type AnchorArray = [string, string, string, string | null, string | null, number];

export class SqliteEventStore extends GroupCommittedWrites implements EventStore {
  private readonly db: Db;
  private readonly commitJobs: (jobs: CommitJob[]) => WriteResult[][];
  private readonly read: {
    get: (id: number) => EventRecord | undefined;
    withBlock: (id: number, locate: (seq: number) => LeafBlock | undefined) => EventWithBlock | undefined;
    page: (q: EventPageQuery) => EventRecord[];
    latestId: () => number;
    sourceOf: (namespace: string, requestId: string) => { source: string | null } | undefined;
    byRequestId: (namespace: string, requestId: string) => EventRecord | undefined;
    chainOf: (id: number) => EventRecord[];
  };
  private readonly correctBatch: (items: CorrectionToWrite[]) => CorrectionResult[];

  constructor(db: Db, options: GroupCommitOptions = {}) {
    super(options);
    this.db = db;
    const byId = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq = ?`);
    const get = (id: number) => {
      const row = byId.get(id) as EventRow | undefined;
      return row && eventRecordOf(row);
    };
    const withBlock = db.prepare(WITH_BLOCK_SQL);
    const page = db.prepare(PAGE_SQL);
    const pageDesc = db.prepare(PAGE_DESC_SQL);
    const latest = db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck();
    const sourceOf = db.prepare('SELECT source FROM events WHERE namespace = ? AND request_id = ?');
    const byKey = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE namespace = ? AND request_id = ?`);
    const chainRoot = db.prepare('SELECT coalesce(chain_id, seq) AS root FROM events WHERE seq = ?');
    const chain = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq = ? OR chain_id = ? ORDER BY seq`);
    this.read = {
      get,
      page: (q) =>
        ((q.desc ? pageDesc : page).all(q.namespace, q.from, q.to, q.asOf, q.after[0], q.after[1], q.limit) as EventRow[]).map(
          eventRecordOf,
        ),
      withBlock: (id, locate) => {
        // seq is the id here, so the block is known before the read.
        const at = locate(id);
        if (!at) {
          const event = get(id);
          return event && { event };
        }
        const { chunk, offset } = nodePlace(at.first);
        const row = withBlock.get({ id, epoch: at.epoch, chunk, offset, length: at.count * HASH_SIZE }) as WithBlockRow | undefined;
        if (!row) return undefined;
        const event = eventRecordOf(row);
        // A block not stored whole is read again the slow way, which names what is missing.
        if (!row.block || row.block.length !== at.count * HASH_SIZE) return { event };
        let anchor: AnchorRecord | null = null;
        if (row.anchor !== null) {
          const [network, package_id, registry_id, tx_digest, checkpoint, anchored_at_ms] = JSON.parse(row.anchor) as AnchorArray;
          anchor = { network, package_id, registry_id, tx_digest, checkpoint, anchored_at_ms };
        }
        return { event, block: { at, hashes: row.block, anchor } };
      },
      latestId: () => latest.get() as number,
      sourceOf: (namespace, requestId) => sourceOf.get(namespace, requestId) as { source: string | null } | undefined,
      byRequestId: (namespace, requestId) => {
        const row = byKey.get(namespace, requestId) as EventRow | undefined;
        return row && eventRecordOf(row);
      },
      chainOf: (id) => {
        const root = chainRoot.get(id) as { root: number } | undefined;
        return root ? (chain.all(root.root, root.root) as EventRow[]).map(eventRecordOf) : [];
      },
    };

    // Corrections: read the target, the request id's event and the version after the target,
    // decide (../corrections.ts), insert; one IMMEDIATE transaction each, so the check holds.
    const versionById = db.prepare(`SELECT seq AS id, ${VERSION_COLUMNS} FROM events WHERE seq = ?`);
    const versionByKey = db.prepare(`SELECT seq AS id, ${VERSION_COLUMNS} FROM events WHERE namespace = ? AND request_id = ?`);
    const latestOf = db.prepare('SELECT seq AS id, kind FROM events WHERE chain_id = ? ORDER BY seq DESC LIMIT 1');
    const insertCorrection = db.prepare(
      `INSERT INTO events (${CORRECTION_COLUMNS}) VALUES (${Array.from({ length: 19 }, () => '?').join(', ')})`,
    );
    const correctItem = (item: CorrectionToWrite): CorrectionResult => {
      const refused = refuseBeforeRead(item);
      if (refused) return refused;
      const target = (
        'id' in item.target ? versionById.get(item.target.id) : versionByKey.get(item.target.namespace, item.target.request_id)
      ) as VersionRow | undefined;
      const repeat = target && (versionByKey.get(target.namespace, item.request_id) as VersionRow | undefined);
      const latest = target && (latestOf.get(chainRootOf(target)) as { id: number; kind: number } | undefined);
      const d = decideCorrection(item, target, repeat, latest);
      if ('answer' in d) return d.answer;
      const done = insertCorrection.run(...correctionValues(d.insert, 1));
      return {
        status: 'created',
        id: Number(done.lastInsertRowid),
        leaf_hash: d.insert.leaf_hash.toString('hex'),
        corrects_id: d.insert.corrects_id,
        chain_id: d.insert.chain_id,
      };
    };
    // One IMMEDIATE transaction for a batch: SQLite has one writer, so the checks of every item
    // hold until its insert, and a batch of 1,000 is one commit, not 1,000.
    const correctTx = db.transaction((items: CorrectionToWrite[]) => items.map(correctItem));
    this.correctBatch = (items) => correctTx.immediate(items);

    const insert = db.prepare(`INSERT INTO events
      (namespace, request_id, owner, key_id, caller, action, units, artifact_digest, ts, ts_explicit,
       received_at, source, metadata, leaf_hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (namespace, request_id) DO NOTHING`);
    const existing = db.prepare(`SELECT seq, caller, action, units, artifact_digest, ts, ts_explicit, source, metadata, leaf_hash, kind
      FROM events WHERE namespace = ? AND request_id = ?`);

    const writeOne = (item: EventToWrite): WriteResult => {
      const e = item.event;
      const hash = leafHashOf(e);
      // run() and lastInsertRowid, not RETURNING: RETURNING made the insert the costliest line of ingest.
      const done = insert.run(...storedValues(item, hash, (explicit) => (explicit ? 1 : 0)));
      if (done.changes === 1) return { status: 'created', id: Number(done.lastInsertRowid), leaf_hash: hash.toString('hex') };
      const stored = existing.get(e.namespace, e.request_id) as StoredRow;
      return repeatOf(stored.seq, stored, e);
    };

    // IMMEDIATE: take the write lock up front, so a concurrent writer (the CLI) waits on the
    // busy timeout instead of failing mid-transaction. Synchronous: a group commits at once.
    const tx = db.transaction((jobs: CommitJob[]) => jobs.map((job) => job.items.map(writeOne)));
    this.commitJobs = (jobs) => tx.immediate(jobs);
  }

  protected commitGroup(jobs: CommitJob[]): WriteResult[][] {
    return this.commitJobs(jobs);
  }

  async get(id: number): Promise<EventRecord | undefined> {
    return this.read.get(id);
  }

  async getWithBlock(id: number, locate: (seq: number) => LeafBlock | undefined): Promise<EventWithBlock | undefined> {
    return this.read.withBlock(id, locate);
  }

  async page(q: EventPageQuery): Promise<EventRecord[]> {
    return this.read.page(q);
  }

  async sourcesOf(keys: ReadonlyArray<readonly [string, string]>): Promise<Array<string | null | undefined>> {
    return keys.map(([namespace, requestId]) => this.read.sourceOf(namespace, requestId)?.source);
  }

  async correct(items: CorrectionToWrite[]): Promise<CorrectionResult[]> {
    // Anything queued for group commit goes first: a correction may name an event just recorded.
    await this.flushQueue();
    return items.length === 0 ? [] : this.correctBatch(items);
  }

  async byRequestId(namespace: string, requestId: string): Promise<EventRecord | undefined> {
    return this.read.byRequestId(namespace, requestId);
  }

  async chainOf(id: number): Promise<EventRecord[]> {
    return Number.isSafeInteger(id) ? this.read.chainOf(id) : [];
  }

  async latestId(): Promise<number> {
    return this.read.latestId();
  }

  async unsealed(): Promise<{ events: number; oldestReceivedAt: number | null }> {
    const last = this.db.prepare('SELECT last_seq FROM epochs ORDER BY epoch DESC LIMIT 1').get() as { last_seq: number } | undefined;
    const after = last?.last_seq ?? 0;
    const oldest = this.db.prepare('SELECT received_at FROM events WHERE seq > ? ORDER BY seq LIMIT 1').get(after) as
      | { received_at: number }
      | undefined;
    if (!oldest) return { events: 0, oldestReceivedAt: null };
    return { events: this.read.latestId() - after, oldestReceivedAt: oldest.received_at };
  }

  /**
   * Commits everything queued, synchronously (a commit on SQLite is): an exit path may call it
   * without waiting. A failed commit rolls back whole and fails each of its requests.
   */
  flush(): void {
    void this.flushQueue();
  }
}
