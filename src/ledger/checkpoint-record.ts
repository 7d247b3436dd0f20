// A checkpoint row as both engines store it, and the StoredCheckpoint it is handed out as.
import type { StoredCheckpoint } from './epoch-log.ts';

export const CHECKPOINT_COLUMNS = 'size, root, note, signed_at';

export interface CheckpointRow {
  size: number;
  root: Uint8Array;
  note: string;
  signed_at: number;
}

export function checkpointOf(r: CheckpointRow | undefined): StoredCheckpoint | undefined {
  if (!r) return undefined;
  return { size: Number(r.size), root: new Uint8Array(r.root), note: r.note, signed_at_ms: Number(r.signed_at) };
}
