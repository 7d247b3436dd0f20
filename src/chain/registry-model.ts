// The TypeScript twin of move/sources/registry.move: the same checks in the same order, with
// the same abort names, run on the same vectors (the Move unit tests cannot run where this is
// developed; the twin can). It also serves as the in-memory chain in the anchorer's tests.
import { leafHash, type LeafFields } from '../event/leaf.ts';
import { HASH_SIZE } from '../merkle/hash.ts';
import { verifyInclusion } from '../merkle/proof.ts';

export type AbortName = 'EWrongCap' | 'EEpochOutOfOrder' | 'EBadRootLength' | 'EZeroSize' | 'EBadTimeRange';

/** A Move abort, by the name of its #[error] constant. */
export class MoveAbort extends Error {
  readonly constantName: AbortName;
  constructor(constantName: AbortName) {
    super(`MoveAbort: ${constantName}`);
    this.constantName = constantName;
  }
}

export interface EpochRecord {
  root: Uint8Array;
  size: number;
  first_ts_ms: number;
  last_ts_ms: number;
  anchored_at_ms: number;
}

export class RegistryModel {
  readonly id: string;
  nextEpoch = 0;
  readonly epochs = new Map<number, EpochRecord>();

  constructor(id: string) {
    this.id = id;
  }

  /** registry::anchor */
  anchor(capRegistryId: string, epoch: number, root: Uint8Array, size: number, firstTsMs: number, lastTsMs: number, nowMs: number): void {
    if (capRegistryId !== this.id) throw new MoveAbort('EWrongCap');
    if (epoch !== this.nextEpoch) throw new MoveAbort('EEpochOutOfOrder');
    if (root.length !== HASH_SIZE) throw new MoveAbort('EBadRootLength');
    if (!(size > 0)) throw new MoveAbort('EZeroSize');
    if (firstTsMs > lastTsMs) throw new MoveAbort('EBadTimeRange');
    this.epochs.set(epoch, { root: root.slice(), size, first_ts_ms: firstTsMs, last_ts_ms: lastTsMs, anchored_at_ms: nowMs });
    this.nextEpoch = epoch + 1;
  }

  /** registry::verify_inclusion: false, never an abort, for an unknown epoch or a bad proof. */
  verifyInclusion(epoch: number, leaf: Uint8Array, leafIndex: number, proof: Uint8Array[]): boolean {
    const record = this.epochs.get(epoch);
    if (!record) return false;
    return verifyProof(leaf, leafIndex, record.size, proof, record.root);
  }

  /** registry::verify_event */
  verifyEvent(epoch: number, fields: LeafFields, leafIndex: number, proof: Uint8Array[]): boolean {
    const digest = fields.artifact_digest;
    if (digest !== '' && !/^[0-9a-f]{64}$/.test(digest)) return false;
    return this.verifyInclusion(epoch, leafHash(fields), leafIndex, proof);
  }
}

/** registry::verify_proof (RFC 9162 §2.1.3.2). */
export function verifyProof(leaf: Uint8Array, leafIndex: number, treeSize: number, proof: Uint8Array[], root: Uint8Array): boolean {
  return verifyInclusion(leaf, leafIndex, treeSize, proof, root).ok;
}
