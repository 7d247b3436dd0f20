// Epochs and their tree nodes on PostgreSQL.
//
// The ordering rule. Concurrent writers draw ids from one sequence but commit in any order, so
// "the events after the last sealed id" would skip an event whose transaction was still open.
// Instead an event gets its ledger position, seq, only when it is sealed: the leader reads the
// COMMITTED events with seq IS NULL in id order, up to maxEvents, and builds the tree over their
// leaf hashes in that order; then one short fenced transaction numbers exactly those events
// last_seq + 1 … and stores the tree with the epoch row. An event still uncommitted is invisible
// to the read and simply goes into a later epoch. Nothing is skipped (every event is seq IS NULL
// until some epoch takes it) and nothing is sealed twice (the write stores nothing unless every
// event read is still unsealed and the last epoch is still the one read; seq UNIQUE, and the
// epoch number as primary key). Reading and hashing hold no lock, so ingest (a duplicate of an
// event being sealed waits on its row) waits at most for the write, never for the hashing.
import type pg from 'pg';
import { HASH_SIZE } from '../../merkle/hash.ts';
import { EPOCH_COLUMNS, holding, listBounds, epochRecordOf, type EpochRow } from '../epoch-record.ts';
import { nodeChunks, nodePlace, storedNode } from '../node-chunks.ts';
import { sealWith, type Run, type SealIO } from '../sealing.ts';
import type { EpochListQuery, EpochRecord, EpochStore, SealRequest } from '../types.ts';
import type { PgLeadership } from './leadership.ts';
import { CHECKPOINT_COLUMNS, checkpointOf, type CheckpointRow } from '../checkpoint-record.ts';
import { transaction } from './db.ts';
import { catchUpRollups, clearRollups, rollUpEpoch } from './rollups.ts';
import type { RollupProgress } from '../rollup-check.ts';
import { nextCheckpoint, type StoredCheckpoint } from '../epoch-log.ts';

/** Chunks per INSERT statement (≈ 1 MB of hex text: node-postgres builds it in one synchronous call). */
const CHUNKS_PER_STATEMENT = 256;

/**
 * The share of a lease one epoch's tree build may take. The build is synchronous: while it runs
 * the lock connection sends no heartbeat (every lease / 3) and PostgreSQL ends the leader's
 * session after a lease, so a build longer than that costs the term every time, on every leader
 * in turn, and nothing is ever sealed. Runs are cut to what this process hashed in this long on
 * its last seal (more, smaller epochs; never more events than asked).
 */
const BUILD_SHARE_OF_LEASE = 1 / 4;
/** Fewest events a run is cut to, whatever the measured speed (one slow build must not starve sealing). */
const MIN_RUN = 100;
/** An epoch this large is followed by ANALYZE of the seq column (analyzeSeq). */
const ANALYZE_AFTER_EVENTS = 10_000;

/** Unsealed events per read while a run is read (a page parses in a few ms). */
const READ_PAGE = 5_000;

/** A run, and the ids of exactly the events read (numbered by the write, or nothing is stored). */
type PgRun = Run & { ids: number[] };

export class PgEpochStore implements EpochStore {
  private readonly pool: pg.Pool;
  private readonly io: SealIO<PgRun>;
  private readonly leadership: PgLeadership;
  /** Build time per event on this process's last seal, ms (0 until measured). */
  private buildMsPerEvent = 0;

  constructor(pool: pg.Pool, leadership: PgLeadership) {
    this.pool = pool;
    this.leadership = leadership;
    this.io = sealIO(pool, leadership);
  }

  private async one(name: string, text: string, values: unknown[]): Promise<EpochRow | undefined> {
    const { rows } = await this.pool.query<EpochRow>({ name, text, values });
    return rows[0];
  }

  async get(epoch: number): Promise<EpochRecord | undefined> {
    const row = await this.one('epochs-get', `SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch = $1`, [epoch]);
    return row && epochRecordOf(row);
  }

  async latest(): Promise<EpochRecord | undefined> {
    const row = await this.one('epochs-latest', `SELECT ${EPOCH_COLUMNS} FROM epochs ORDER BY epoch DESC LIMIT 1`, []);
    return row && epochRecordOf(row);
  }

  async list(q: EpochListQuery): Promise<EpochRecord[]> {
    const { rows } = await this.pool.query<EpochRow>({
      name: q.desc ? 'epochs-list-desc' : 'epochs-list',
      text: `SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch > $1 AND epoch < $2 ORDER BY epoch ${q.desc ? 'DESC' : ''} LIMIT $3`,
      values: [...listBounds(q), q.limit],
    });
    return rows.map(epochRecordOf);
  }

  async containing(seq: number): Promise<EpochRecord | undefined> {
    return holding(
      await this.one('epochs-containing', `SELECT ${EPOCH_COLUMNS} FROM epochs WHERE last_seq >= $1 ORDER BY last_seq LIMIT 1`, [seq]),
      seq,
    );
  }

  async node(epoch: number, level: number, index: number): Promise<Uint8Array> {
    const { chunk, offset } = nodePlace(index);
    const { rows } = await this.pool.query<{ h: Buffer }>({
      name: 'epochs-node',
      text: 'SELECT substring(hashes FROM $1 FOR 32) AS h FROM epoch_nodes WHERE epoch = $2 AND level = $3 AND chunk = $4',
      values: [offset, epoch, level, chunk],
    });
    return storedNode(rows[0]?.h, epoch, level, index);
  }

  async level(epoch: number, level: number): Promise<Uint8Array> {
    const { rows } = await this.pool.query<{ hashes: Buffer }>({
      name: 'epochs-level',
      text: 'SELECT hashes FROM epoch_nodes WHERE epoch = $1 AND level = $2 ORDER BY chunk',
      values: [epoch, level],
    });
    return Buffer.concat(rows.map((r) => r.hashes));
  }

  // One round trip for a whole path, one stored chunk read once however many of its places are
  // asked. LATERAL: one primary-key lookup per chunk, whatever the planner guesses of unnest; a
  // chunk not stored comes back null, and a missing place is named below.
  async nodes(epoch: number, places: ReadonlyArray<readonly [level: number, index: number]>): Promise<Uint8Array[]> {
    if (places.length === 0) return [];
    const at = new Map<string, number>();
    const levels: number[] = [];
    const chunks: number[] = [];
    for (const [level, index] of places) {
      const { chunk } = nodePlace(index);
      const key = `${level}:${chunk}`;
      if (at.has(key)) continue;
      at.set(key, levels.length);
      levels.push(level);
      chunks.push(chunk);
    }
    const { rows } = await this.pool.query<[Buffer | null]>({
      name: 'epochs-nodes',
      text: `SELECT n.hashes FROM unnest($2::int4[], $3::int8[]) WITH ORDINALITY AS u(l, c, i)
             LEFT JOIN LATERAL (SELECT hashes FROM epoch_nodes WHERE epoch = $1 AND level = u.l AND chunk = u.c) n ON true
             ORDER BY u.i`,
      values: [epoch, levels, chunks],
      rowMode: 'array',
    });
    return places.map(([level, index]) => {
      const { chunk, offset } = nodePlace(index);
      const hashes = rows[at.get(`${level}:${chunk}`)!]?.[0];
      return storedNode(hashes?.subarray(offset - 1, offset - 1 + HASH_SIZE), epoch, level, index);
    });
  }

  async sealNext(request: SealRequest): Promise<EpochRecord | null> {
    // Epochs sealed before rollups existed (or after a rebuild) are rolled up first, in order,
    // each in its own fenced transaction (only the leader writes rollups).
    if (this.leadership.role() === 'leader')
      await catchUpRollups(
        this.pool,
        (fn) => this.leadership.fenced(this.pool, fn),
        (p) => request.progress?.('rollup-catch-up', { epoch: p.epoch, size: p.events, done: p.done, of: p.of }),
      );
    const budget = this.leadership.leaseMs() * BUILD_SHARE_OF_LEASE;
    const maxEvents =
      this.buildMsPerEvent > 0
        ? Math.min(request.maxEvents, Math.max(MIN_RUN, Math.floor(budget / this.buildMsPerEvent)))
        : request.maxEvents;
    const sealed = await sealWith(this.io, {
      ...request,
      maxEvents,
      build: async (leaves) => {
        const started = performance.now();
        const tree = await request.build(leaves);
        this.buildMsPerEvent = (performance.now() - started) / Math.max(1, leaves.length / HASH_SIZE);
        return tree;
      },
    });
    if (sealed && sealed.size >= ANALYZE_AFTER_EVENTS) await this.analyzeSeq(sealed, request);
    return sealed;
  }

  /**
   * A large epoch just turned many unsealed rows (seq IS NULL) into sealed ones. Until autovacuum
   * analyzes the table again (a minute or more later), the planner still believes they are
   * unsealed and reads the usage tail ("seq IS NULL", at most an epoch) by a parallel scan of the
   * whole table: 2M events, one day by action 309 ms against 7 ms once analyzed. So the column is
   * analyzed now (a sample: ~0.25 s for 2M events; it blocks no writer). Best effort, never
   * holding up the next seal: only a role that owns the table (PostgreSQL skips the others with a
   * mere warning), a lock wait of 1 s at most (a VACUUM or index build holds the lock ANALYZE
   * needs), 30 s in all. A failure is reported (the scheduler logs it) and the seal stands.
   */
  private async analyzeSeq(sealed: EpochRecord, request: SealRequest): Promise<void> {
    let ok = false;
    try {
      ok = await transaction(this.pool, async (client) => {
        const owner = await client.query<{ ok: boolean }>(
          `SELECT pg_has_role(relowner, 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS ok
             FROM pg_class WHERE oid = 'events'::regclass`,
        );
        if (owner.rows[0]?.ok !== true) return false;
        await client.query("SET LOCAL lock_timeout = '1s'");
        await client.query("SET LOCAL statement_timeout = '30s'");
        await client.query('ANALYZE events (seq)');
        return true;
      });
    } catch {
      ok = false;
    }
    if (ok) return;
    try {
      request.progress?.('analyze-failed', { epoch: sealed.epoch, size: sealed.size });
    } catch {
      // A progress callback's own error must not fail a seal already committed.
    }
  }

  async clearRollups(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await clearRollups(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async catchUpRollups(progress?: RollupProgress): Promise<number> {
    if (this.leadership.role() !== 'leader') return 0;
    return catchUpRollups(this.pool, (fn) => this.leadership.fenced(this.pool, fn), progress);
  }

  async checkpoint(): Promise<StoredCheckpoint | undefined> {
    const { rows } = await this.pool.query<CheckpointRow>({
      name: 'checkpoint-latest',
      text: `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1`,
    });
    return checkpointOf(rows[0]);
  }
}

function sealIO(pool: pg.Pool, leadership: PgLeadership): SealIO<PgRun> {
  return {
    // 1. Read (and then hash) outside any transaction: no lock is held while the run is read and
    //    its tree built, so a leader paused or slow here holds up no one (a duplicate insert of an
    //    event being sealed waits only for the short write in step 2).
    async readRun(maxEvents) {
      // Only a leader reads and hashes (the fenced write below checks again, against the term).
      if (leadership.role() !== 'leader') return leadership.fenced(pool, async () => null);
      const last = await pool.query<{ epoch: number; last_seq: number }>({
        name: 'seal-last',
        text: 'SELECT epoch, last_seq FROM epochs ORDER BY epoch DESC LIMIT 1',
      });
      const epoch = last.rows[0] ? last.rows[0].epoch + 1 : 0;
      const firstSeq = last.rows[0] ? last.rows[0].last_seq + 1 : 1;
      // Committed and unsealed, in id order, a page at a time: one large result is parsed in one
      // synchronous turn of the event loop (100,000 rows: ~100 ms of a leader serving ingest). An
      // event committed between pages with a lower id than the last page's simply goes into a
      // later epoch, as one committed after the read does.
      // Each page is copied out at once, so its row objects die young (no long major GC later).
      const ids: number[] = [];
      const pages: Uint8Array[] = [];
      let firstTs = Infinity;
      let lastTs = -Infinity;
      for (let after = 0; ids.length < maxEvents; ) {
        const { rows } = await pool.query<[number, number, Buffer]>({
          name: 'seal-pick',
          text: 'SELECT id, ts, leaf_hash FROM events WHERE seq IS NULL AND id > $1 ORDER BY id LIMIT $2',
          values: [after, Math.min(READ_PAGE, maxEvents - ids.length)],
          rowMode: 'array',
        });
        const page = new Uint8Array(rows.length * HASH_SIZE);
        rows.forEach(([id, ts, leaf], i) => {
          ids.push(id);
          page.set(leaf, i * HASH_SIZE);
          if (ts < firstTs) firstTs = ts;
          if (ts > lastTs) lastTs = ts;
        });
        if (rows.length > 0) pages.push(page);
        if (rows.length < READ_PAGE) break;
        after = ids.at(-1)!;
      }
      const size = ids.length;
      if (size === 0) return null;
      const leaves = new Uint8Array(new SharedArrayBuffer(size * HASH_SIZE)); // read in place by the tree-hashing threads
      let at = 0;
      for (const page of pages) {
        leaves.set(page, at);
        at += page.length;
      }
      return { epoch, firstSeq, lastSeq: firstSeq + size - 1, size, firstTs, lastTs, leaves, ids };
    },

    // 2. The write, fenced and short: number exactly the events read (still unsealed, or nothing
    //    is stored), store the nodes and the epoch, in one transaction.
    store: (run, tree, now, progress, log) =>
      leadership.fenced(pool, async (client) => {
        const { epoch, size } = run;
        const current = await client.query<{ epoch: number }>({
          name: 'seal-last-check',
          text: 'SELECT epoch FROM epochs ORDER BY epoch DESC LIMIT 1',
        });
        const next = current.rows[0] ? current.rows[0].epoch + 1 : 0;
        if (next !== epoch)
          throw new Error(`sealing epoch ${epoch}: epoch ${next - 1} was sealed meanwhile; nothing was stored, the next round retries`);
        const numbered = await client.query({
          name: 'seal-number',
          // The ids as one array literal, the seqs counted by the server: node-postgres escapes an
          // array element by element (100,000 ids and seqs stalled the event loop ~100 ms).
          text: `UPDATE events SET seq = $2::int8 + u.n - 1 FROM unnest($1::int8[]) WITH ORDINALITY AS u(id, n)
                 WHERE events.id = u.id AND events.seq IS NULL`,
          values: [`{${run.ids.join(',')}}`, run.firstSeq],
        });
        if (numbered.rowCount !== size)
          throw new Error(`sealing epoch ${epoch}: numbered ${numbered.rowCount} of ${size} events; nothing was stored, retry`);
        progress('numbered', { epoch, size });

        let batch: { l: number[]; c: number[]; h: Buffer[] } = { l: [], c: [], h: [] };
        const send = async () => {
          if (batch.h.length === 0) return;
          await client.query({
            name: 'seal-nodes',
            text: `INSERT INTO epoch_nodes (epoch, level, chunk, hashes)
                   SELECT $1, u.l, u.c, u.h FROM unnest($2::int4[], $3::int4[], $4::bytea[]) AS u(l, c, h)`,
            values: [epoch, batch.l, batch.c, batch.h],
          });
          batch = { l: [], c: [], h: [] };
        };
        for (const c of nodeChunks(tree.levels)) {
          batch.l.push(c.level);
          batch.c.push(c.chunk);
          batch.h.push(c.hashes);
          if (batch.h.length >= CHUNKS_PER_STATEMENT) await send();
        }
        await send();
        await client.query({
          name: 'seal-epoch',
          text: `INSERT INTO epochs (${EPOCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          values: [epoch, run.firstSeq, run.lastSeq, size, Buffer.from(tree.root), run.firstTs, run.lastTs, now],
        });
        // The epoch's usage rollups, in the same fenced transaction (behind: the catch-up adds them).
        if (await rollUpEpoch(client, epoch, run.firstSeq, run.lastSeq)) progress('rolled-up', { epoch, size });
        progress('stored', { epoch, size });
        if (log) {
          // The epoch log's new checkpoint, signed by the fenced leader in this transaction:
          // refused (and nothing stored) unless the log is consistent with the last checkpoint.
          const epochs = await client.query<EpochRow>({ name: 'log-epochs', text: `SELECT ${EPOCH_COLUMNS} FROM epochs ORDER BY epoch` });
          const last = await client.query<CheckpointRow>({
            name: 'checkpoint-latest',
            text: `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1`,
          });
          const c = nextCheckpoint(epochs.rows.map(epochRecordOf), checkpointOf(last.rows[0]), log, now);
          await client.query({
            name: 'checkpoint-insert',
            text: `INSERT INTO checkpoints (${CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4)`,
            values: [c.size, Buffer.from(c.root), c.note, c.signed_at_ms],
          });
          progress('signed', { epoch, size: c.size });
        }
        return true;
      }),
  };
}
