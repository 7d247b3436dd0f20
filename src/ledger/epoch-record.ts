// An epoch row as both engines store it (the columns keep their schema names: first_ts, not
// first_ts_ms) and the EpochRecord it is handed out as.
import type { EpochRecord } from './types.ts';

export const EPOCH_COLUMNS = 'epoch, first_seq, last_seq, size, root, first_ts, last_ts, sealed_at';

export interface EpochRow {
  epoch: number;
  first_seq: number;
  last_seq: number;
  size: number;
  root: Uint8Array;
  first_ts: number;
  last_ts: number;
  sealed_at: number;
}

export function epochRecordOf(r: EpochRow): EpochRecord {
  return {
    epoch: r.epoch,
    first_seq: r.first_seq,
    last_seq: r.last_seq,
    size: r.size,
    root: Buffer.from(r.root.buffer, r.root.byteOffset, r.root.byteLength).toString('hex'),
    first_ts_ms: r.first_ts,
    last_ts_ms: r.last_ts,
    sealed_at_ms: r.sealed_at,
  };
}

/** The row list() reads: epochs strictly between after and before (open ends: all). */
export const listBounds = (q: { after?: number; before?: number }): [number, number] => [
  q.after ?? -1,
  q.before ?? Number.MAX_SAFE_INTEGER,
];

/** containing(seq): the first epoch ending at or after seq holds it only if it also starts at or before it. */
export const holding = (row: EpochRow | undefined, seq: number): EpochRecord | undefined =>
  row && row.first_seq <= seq ? epochRecordOf(row) : undefined;
