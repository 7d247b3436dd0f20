// The TypeScript twin of move/sources/registry.move: the same checks in the same order, with
// the same abort names, run on the same vectors as the generated Move tests
// (test/chain/move-vectors.test.ts). It also serves as the in-memory chain in the anchorer's
// tests (test/anchor/fake-chain.ts). Test-only: nothing in src/ uses it.
import { leafHash, type LeafFields } from '../../src/event/leaf.ts';
import { HASH_SIZE, hashChildren } from '../../src/merkle/hash.ts';
import { equalBytes } from '../../src/merkle/proof.ts';

export type AbortName = 'EWrongCap' | 'EEpochOutOfOrder' | 'EBadRootLength' | 'EZeroSize' | 'EBadTimeRange' | 'EWrongVersion' | 'ENotNewer';

/** registry::VERSION */
export const VERSION = 1;

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

/** registry::EpochAnchored */
export interface EpochAnchored {
  registry_id: string;
  epoch: number;
  root: Uint8Array;
  size: number;
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * A Move u64 argument, exactly. Move cannot hold anything else, so neither does the twin: a
 * fraction, a negative, 2^64 or more, or a number past 2^53 (already rounded, so not the value
 * meant) is a bug in the caller, not a case to answer.
 */
export function u64(value: number | bigint, name: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value))
    throw new TypeError(`${name} = ${value} is not an exact integer: pass u64 values past 2^53 − 1 as bigint`);
  const n = BigInt(value);
  if (n < 0n || n > U64_MAX) throw new TypeError(`${name} = ${n} is outside u64 (0 … 2^64 − 1)`);
  return n;
}

export class RegistryModel {
  readonly id: string;
  nextEpoch = 0;
  version = VERSION;
  readonly epochs = new Map<number, EpochRecord>();
  readonly events: EpochAnchored[] = [];

  constructor(id: string) {
    this.id = id;
  }

  private checkVersion(): void {
    if (this.version !== VERSION) throw new MoveAbort('EWrongVersion');
  }

  /** registry::anchor */
  anchor(capRegistryId: string, epoch: number, root: Uint8Array, size: number, firstTsMs: number, lastTsMs: number, nowMs: number): void {
    for (const [name, v] of Object.entries({ epoch, size, firstTsMs, lastTsMs, nowMs })) u64(v, name);
    this.checkVersion();
    if (capRegistryId !== this.id) throw new MoveAbort('EWrongCap');
    if (epoch !== this.nextEpoch) throw new MoveAbort('EEpochOutOfOrder');
    if (root.length !== HASH_SIZE) throw new MoveAbort('EBadRootLength');
    if (!(size > 0)) throw new MoveAbort('EZeroSize');
    if (firstTsMs > lastTsMs) throw new MoveAbort('EBadTimeRange');
    this.events.push({ registry_id: this.id, epoch, root: root.slice(), size });
    this.epochs.set(epoch, { root: root.slice(), size, first_ts_ms: firstTsMs, last_ts_ms: lastTsMs, anchored_at_ms: nowMs });
    this.nextEpoch = epoch + 1;
  }

  /** registry::migrate */
  migrate(capRegistryId: string): void {
    if (capRegistryId !== this.id) throw new MoveAbort('EWrongCap');
    if (!(this.version < VERSION)) throw new MoveAbort('ENotNewer');
    this.version = VERSION;
  }

  /** registry::verify_inclusion: false, never an abort (but EWrongVersion), for an unknown epoch or a bad proof. */
  verifyInclusion(epoch: number | bigint, leaf: Uint8Array, leafIndex: number | bigint, proof: Uint8Array[]): boolean {
    const e = u64(epoch, 'epoch');
    this.checkVersion();
    const record = e <= BigInt(Number.MAX_SAFE_INTEGER) ? this.epochs.get(Number(e)) : undefined;
    if (!record) return false;
    return verifyProof(leaf, leafIndex, record.size, proof, record.root);
  }

  /** registry::verify_event */
  verifyEvent(epoch: number | bigint, fields: LeafFields, leafIndex: number | bigint, proof: Uint8Array[]): boolean {
    this.checkVersion();
    const digest = fields.artifact_digest;
    if (digest !== '' && !/^[0-9a-f]{64}$/.test(digest)) return false;
    return this.verifyInclusion(epoch, leafHash(fields), leafIndex, proof);
  }

  /** registry::epoch_times: (first_ts_ms, last_ts_ms, anchored_at_ms); Move aborts on an epoch not anchored. */
  epochTimes(epoch: number): [number, number, number] {
    this.checkVersion();
    const r = this.epochs.get(epoch);
    if (!r) throw new Error(`epoch ${epoch} is not anchored (Move: a table abort)`);
    return [r.first_ts_ms, r.last_ts_ms, r.anchored_at_ms];
  }
}

/**
 * registry::verify_proof (RFC 9162 §2.1.3.2), line for line, in u64 arithmetic: unlike
 * src/merkle/proof.ts (exact to 2^53), it takes any u64 index and size, as Move does.
 */
export function verifyProof(
  leaf: Uint8Array,
  leafIndex: number | bigint,
  treeSize: number | bigint,
  proof: Uint8Array[],
  root: Uint8Array,
): boolean {
  const index = u64(leafIndex, 'leaf_index');
  const size = u64(treeSize, 'tree_size');
  if (index >= size) return false;
  if (leaf.length !== HASH_SIZE) return false;
  let node = index;
  let last = size - 1n;
  let hash = leaf;
  for (const sibling of proof) {
    if (sibling.length !== HASH_SIZE) return false;
    if (last === 0n) return false;
    if (node % 2n === 1n || node === last) {
      hash = hashChildren(sibling, hash);
      if (node % 2n === 0n) {
        while (node % 2n === 0n && node !== 0n) {
          node >>= 1n;
          last >>= 1n;
        }
      }
    } else {
      hash = hashChildren(hash, sibling);
    }
    node >>= 1n;
    last >>= 1n;
  }
  return last === 0n && equalBytes(hash, root);
}
