// Writing events with group commit: requests arriving close together share one write
// transaction (one WAL sync), and each request is answered only once its rows are committed.
import type { NormalizedEvent } from '../event/validate.ts';
import { leafHash } from '../event/leaf.ts';
import type { Db } from './db.ts';

export interface EventToWrite {
  event: NormalizedEvent;
  owner: string;
  keyId: string;
}

export type WriteResult =
  | { status: 'created'; id: number; leaf_hash: string }
  | { status: 'duplicate'; id: number; leaf_hash: string }
  | { status: 'conflict'; id: number; differs: string[] };

export interface GroupCommitOptions {
  /**
   * Longest a queued request waits for others to share its commit, ms. 0 (the default): commit
   * once the requests that arrived in the same turn of the event loop are queued.
   */
  maxDelayMs?: number;
  /** Commit at once when this many events are queued. */
  maxBatchEvents?: number;
  /** Called after every commit with the number of events and the time it took. */
  onCommit?: (events: number, seconds: number) => void;
}

interface Job {
  items: EventToWrite[];
  resolve: (results: WriteResult[]) => void;
  reject: (err: unknown) => void;
}

type StoredRow = {
  seq: number;
  caller: string;
  action: string;
  units: number;
  artifact_digest: Buffer | null;
  ts: number;
  ts_explicit: number;
  source: string | null;
  metadata: string | null;
  leaf_hash: Buffer;
};

export class EventWriter {
  private readonly db: Db;
  private readonly maxDelayMs: number;
  private readonly maxBatchEvents: number;
  /** Called after every commit (metrics hook it here). */
  onCommit: GroupCommitOptions['onCommit'];
  private queue: Job[] = [];
  private queuedEvents = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly commitBatch: (jobs: Job[]) => WriteResult[][];

  constructor(db: Db, options: GroupCommitOptions = {}) {
    this.db = db;
    this.maxDelayMs = options.maxDelayMs ?? 0;
    this.maxBatchEvents = options.maxBatchEvents ?? 5000;
    this.onCommit = options.onCommit;

    const insert = db.prepare(`INSERT INTO events
      (namespace, request_id, owner, key_id, caller, action, units, artifact_digest, ts, ts_explicit,
       received_at, source, metadata, leaf_hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (namespace, request_id) DO NOTHING`);
    const existing = db.prepare(`SELECT seq, caller, action, units, artifact_digest, ts, ts_explicit, source, metadata, leaf_hash
      FROM events WHERE namespace = ? AND request_id = ?`);

    const writeOne = (item: EventToWrite): WriteResult => {
      const e = item.event;
      const hash = Buffer.from(leafHash(e));
      const digest = e.artifact_digest === '' ? null : Buffer.from(e.artifact_digest, 'hex');
      // run() and lastInsertRowid, not RETURNING: RETURNING made the insert the costliest line of ingest.
      const done = insert.run(e.namespace, e.request_id, item.owner, item.keyId, e.caller, e.action, e.units, digest,
        e.ts_ms, e.ts_explicit ? 1 : 0, e.received_at, e.source, e.metadata, hash);
      if (done.changes === 1) return { status: 'created', id: Number(done.lastInsertRowid), leaf_hash: hash.toString('hex') };
      const stored = existing.get(e.namespace, e.request_id) as StoredRow;
      const differs = differences(stored, e);
      if (differs.length === 0) return { status: 'duplicate', id: stored.seq, leaf_hash: stored.leaf_hash.toString('hex') };
      return { status: 'conflict', id: stored.seq, differs };
    };

    // IMMEDIATE: take the write lock up front, so a concurrent writer (the CLI) waits on the
    // busy timeout instead of failing mid-transaction.
    const tx = db.transaction((jobs: Job[]) => jobs.map((job) => job.items.map(writeOne)));
    this.commitBatch = (jobs) => tx.immediate(jobs);
  }

  /** Queues events for the next group commit; resolves with one result per event once committed. */
  write(items: EventToWrite[]): Promise<WriteResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.queuedEvents += items.length;
      if (this.queuedEvents >= this.maxBatchEvents) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        if (this.maxDelayMs > 0) this.timer = setTimeout(() => this.flush(), this.maxDelayMs);
        else setImmediate(() => this.flush());
      }
    });
  }

  /** Commits everything queued now. A failed commit rolls back whole and fails each of its requests. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.scheduled = false;
    const jobs = this.queue;
    if (jobs.length === 0) return;
    this.queue = [];
    const events = this.queuedEvents;
    this.queuedEvents = 0;
    const started = performance.now();
    let results: WriteResult[][];
    try {
      results = this.commitBatch(jobs);
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    this.onCommit?.(events, (performance.now() - started) / 1000);
    jobs.forEach((job, i) => job.resolve(results[i]!));
  }
}

/** Which fields of a repeated request id differ from what was stored (empty: a true duplicate). */
function differences(stored: StoredRow, e: NormalizedEvent): string[] {
  const differs: string[] = [];
  if (stored.caller !== e.caller) differs.push('caller');
  if (stored.action !== e.action) differs.push('action');
  if (stored.units !== e.units) differs.push('units');
  if ((stored.artifact_digest?.toString('hex') ?? '') !== e.artifact_digest) differs.push('artifact_digest');
  // A retry that leaves ts out means "when received": it cannot contradict the stored time.
  if (e.ts_explicit && stored.ts_explicit === 1 && stored.ts !== e.ts_ms) differs.push('ts');
  if (stored.source !== e.source) differs.push('source');
  if (stored.metadata !== e.metadata) differs.push('metadata');
  return differs;
}
