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
import type { EpochListQuery, EpochRecord, EpochStore, SealRequest } from '../types.ts';
import type { PgLeadership } from './leadership.ts';

/** Stored node chunks: up to 64 hashes (2 KiB), so a proof reads one slice per level. */
export const NODE_CHUNK = 64;
/** Chunks per INSERT statement (≈ 4 MB of hex text). */
const CHUNKS_PER_STATEMENT = 1024;

const EPOCH_COLUMNS = 'epoch, first_seq, last_seq, size, root, first_ts, last_ts, sealed_at';
type EpochRow = { epoch: number; first_seq: number; last_seq: number; size: number; root: Buffer; first_ts: number; last_ts: number; sealed_at: number };

function toRecord(r: EpochRow): EpochRecord {
  return {
    epoch: r.epoch,
    first_seq: r.first_seq,
    last_seq: r.last_seq,
    size: r.size,
    root: r.root.toString('hex'),
    first_ts_ms: r.first_ts,
    last_ts_ms: r.last_ts,
    sealed_at_ms: r.sealed_at,
  };
}

export class PgEpochStore implements EpochStore {
  private readonly pool: pg.Pool;
  private readonly leadership: PgLeadership;

  constructor(pool: pg.Pool, leadership: PgLeadership) {
    this.pool = pool;
    this.leadership = leadership;
  }

  private async one(name: string, text: string, values: unknown[]): Promise<EpochRecord | undefined> {
    const { rows } = await this.pool.query<EpochRow>({ name, text, values });
    return rows[0] && toRecord(rows[0]);
  }

  get(epoch: number): Promise<EpochRecord | undefined> {
    return this.one('epochs-get', `SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch = $1`, [epoch]);
  }

  latest(): Promise<EpochRecord | undefined> {
    return this.one('epochs-latest', `SELECT ${EPOCH_COLUMNS} FROM epochs ORDER BY epoch DESC LIMIT 1`, []);
  }

  async list(q: EpochListQuery): Promise<EpochRecord[]> {
    const { rows } = await this.pool.query<EpochRow>({
      name: q.desc ? 'epochs-list-desc' : 'epochs-list',
      text: `SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch > $1 AND epoch < $2 ORDER BY epoch ${q.desc ? 'DESC' : ''} LIMIT $3`,
      values: [q.after ?? -1, q.before ?? Number.MAX_SAFE_INTEGER, q.limit],
    });
    return rows.map(toRecord);
  }

  async containing(seq: number): Promise<EpochRecord | undefined> {
    const row = await this.one('epochs-containing', `SELECT ${EPOCH_COLUMNS} FROM epochs WHERE last_seq >= $1 ORDER BY last_seq LIMIT 1`, [seq]);
    return row && row.first_seq <= seq ? row : undefined;
  }

  async node(epoch: number, level: number, index: number): Promise<Uint8Array> {
    const { rows } = await this.pool.query<{ h: Buffer }>({
      name: 'epochs-node',
      text: 'SELECT substring(hashes FROM $1 FOR 32) AS h FROM epoch_nodes WHERE epoch = $2 AND level = $3 AND chunk = $4',
      values: [(index % NODE_CHUNK) * HASH_SIZE + 1, epoch, level, Math.floor(index / NODE_CHUNK)],
    });
    const h = rows[0]?.h;
    if (!h || h.length !== HASH_SIZE) throw new RangeError(`no stored node at epoch ${epoch}, level ${level}, index ${index}`);
    return h;
  }

  async level(epoch: number, level: number): Promise<Uint8Array> {
    const { rows } = await this.pool.query<{ hashes: Buffer }>({
      name: 'epochs-level',
      text: 'SELECT hashes FROM epoch_nodes WHERE epoch = $1 AND level = $2 ORDER BY chunk',
      values: [epoch, level],
    });
    return Buffer.concat(rows.map((r) => r.hashes));
  }

  async sealNext(request: SealRequest): Promise<EpochRecord | null> {
    const progress = request.progress ?? (() => {});
    if (!(Number.isSafeInteger(request.maxEvents) && request.maxEvents >= 1)) {
      throw new RangeError(`maxEvents must be a positive integer, got ${request.maxEvents}`);
    }
    // Only a leader reads and hashes (the fenced write below checks again, against the term).
    if (this.leadership.role() !== 'leader') return this.leadership.fenced(this.pool, async () => null);

    // 1. Read and hash outside any transaction: no lock is held while the run is read and its
    //    tree built, so a leader paused or slow here holds up no one (a duplicate insert of an
    //    event being sealed waits only for the short write in step 2).
    const last = await this.pool.query<{ epoch: number; last_seq: number }>({
      name: 'seal-last', text: 'SELECT epoch, last_seq FROM epochs ORDER BY epoch DESC LIMIT 1',
    });
    const epoch = last.rows[0] ? last.rows[0].epoch + 1 : 0;
    const firstSeq = last.rows[0] ? last.rows[0].last_seq + 1 : 1;
    // Committed and unsealed, in id order.
    const picked = await this.pool.query<[number, number, Buffer]>({
      name: 'seal-pick',
      text: 'SELECT id, ts, leaf_hash FROM events WHERE seq IS NULL ORDER BY id LIMIT $1',
      values: [request.maxEvents],
      rowMode: 'array',
    });
    const size = picked.rows.length;
    if (size === 0) return null; // an empty interval makes no epoch
    const ids = new Array<number>(size);
    const seqs = new Array<number>(size);
    const leaves = new Uint8Array(size * HASH_SIZE);
    let firstTs = Infinity;
    let lastTs = -Infinity;
    picked.rows.forEach(([id, ts, leaf], i) => {
      ids[i] = id;
      seqs[i] = firstSeq + i;
      leaves.set(leaf, i * HASH_SIZE);
      if (ts < firstTs) firstTs = ts;
      if (ts > lastTs) lastTs = ts;
    });
    const lastSeq = firstSeq + size - 1;
    progress('read', { epoch, size });

    const tree = request.build(leaves);
    if (tree.levels[0]?.length !== leaves.length) throw new Error('the tree builder returned a leaf level of the wrong size');
    progress('hashed', { epoch, size });

    // 2. The write, fenced and short: number exactly the events read (still unsealed, or nothing is
    //    stored), store the nodes and the epoch, in one transaction.
    return this.leadership.fenced(this.pool, async (client) => {
      const now = await client.query<{ epoch: number }>({
        name: 'seal-last-check', text: 'SELECT epoch FROM epochs ORDER BY epoch DESC LIMIT 1',
      });
      const current = now.rows[0] ? now.rows[0].epoch + 1 : 0;
      if (current !== epoch) throw new Error(`sealing epoch ${epoch}: epoch ${current - 1} was sealed meanwhile; nothing was stored, the next round retries`);
      const numbered = await client.query({
        name: 'seal-number',
        text: `UPDATE events SET seq = u.seq FROM unnest($1::int8[], $2::int8[]) AS u(id, seq)
               WHERE events.id = u.id AND events.seq IS NULL`,
        values: [ids, seqs],
      });
      if (numbered.rowCount !== size) throw new Error(`sealing epoch ${epoch}: numbered ${numbered.rowCount} of ${size} events; nothing was stored, retry`);
      progress('numbered', { epoch, size });

      const bytes = NODE_CHUNK * HASH_SIZE;
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
      for (const [l, level] of tree.levels.entries()) {
        for (let c = 0; c * bytes < level.length; c++) {
          const chunk = level.subarray(c * bytes, (c + 1) * bytes);
          batch.l.push(l);
          batch.c.push(c);
          batch.h.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if (batch.h.length >= CHUNKS_PER_STATEMENT) await send();
        }
      }
      await send();
      await client.query({
        name: 'seal-epoch',
        text: `INSERT INTO epochs (${EPOCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        values: [epoch, firstSeq, lastSeq, size, Buffer.from(tree.root), firstTs, lastTs, request.now],
      });
      progress('stored', { epoch, size });
      return {
        epoch,
        first_seq: firstSeq,
        last_seq: lastSeq,
        size,
        root: Buffer.from(tree.root).toString('hex'),
        first_ts_ms: firstTs,
        last_ts_ms: lastTs,
        sealed_at_ms: request.now,
      };
    });
  }
}
