// The epoch log (docs/design.md, "Epoch log and signed checkpoints"): the RFC 6962 tree over
// epoch_leaf_hash of every epoch header in epoch order, and the checkpoint the service signs of
// it when an epoch is sealed. Both engines call nextCheckpoint inside the seal's transaction;
// it refuses (EpochLogError, nothing stored) a log that is not consistent with the last
// checkpoint stored. The signer holds the log key: it never reaches the database or a log line.
import { ed25519Signer, epochLeafHash, formatCheckpoint, signNote, verifierKeyOf, type SigningKey } from '../checkpoint/index.ts';
import { HASH_SIZE } from '../merkle/hash.ts';
import { equalBytes } from '../merkle/proof.ts';
import { buildTree, rootOf, type Tree } from '../merkle/tree.ts';
import type { EpochRecord } from './types.ts';

/** Signs checkpoints of the epoch log: its origin is the log key's name. */
export interface LogSigner {
  readonly origin: string;
  /** The verifier key (`name+hex8+base64`), public. */
  readonly vkey: string;
  /** The signed note of a checkpoint text. */
  sign(text: string): string;
}

export function logSigner(key: SigningKey): LogSigner {
  const signer = ed25519Signer(key);
  return { origin: key.name, vkey: verifierKeyOf(key), sign: (text) => signNote(text, [signer]) };
}

/** A signed checkpoint as stored (one row per size). */
export interface StoredCheckpoint {
  size: number;
  root: Uint8Array;
  /** The signed note text, as served at GET /checkpoint. */
  note: string;
  signed_at_ms: number;
}

/** The log cannot be signed: it is not what the last checkpoint committed to. */
export class EpochLogError extends Error {
  override readonly name = 'EpochLogError';
}

/** The epoch log's leaf hashes, concatenated, of epochs 0 … n − 1 (refused unless dense from 0). */
export function epochLogLeaves(epochs: readonly EpochRecord[]): Uint8Array {
  const out = new Uint8Array(epochs.length * HASH_SIZE);
  epochs.forEach((e, i) => {
    if (e.epoch !== i)
      throw new EpochLogError(`the epoch log needs epochs 0 … ${epochs.length - 1} in order; found epoch ${e.epoch} at ${i}`);
    out.set(
      epochLeafHash({
        epoch: e.epoch,
        root: Buffer.from(e.root, 'hex'),
        size: e.size,
        first_ts_ms: e.first_ts_ms,
        last_ts_ms: e.last_ts_ms,
      }),
      i * HASH_SIZE,
    );
  });
  return out;
}

/** The epoch log tree over epochs 0 … n − 1 (n ≥ 1). */
export function epochLogTree(epochs: readonly EpochRecord[]): Tree {
  return buildTree(epochLogLeaves(epochs));
}

/** The root of the first `size` leaves of a tree's leaf level. */
export function rootAt(tree: Tree, size: number): Uint8Array {
  return size === tree.size ? rootOf(tree) : rootOf(buildTree(tree.levels[0]!.subarray(0, size * HASH_SIZE)));
}

/**
 * The checkpoint to store after a seal: the log of every epoch (0 … n − 1), checked against the
 * last checkpoint stored (its root must be the log's root at its size), then signed. Throws
 * EpochLogError when the log is not consistent with it: the caller stores nothing.
 */
export function nextCheckpoint(
  epochs: readonly EpochRecord[],
  last: Pick<StoredCheckpoint, 'size' | 'root'> | undefined,
  signer: LogSigner,
  now: number,
): StoredCheckpoint {
  if (epochs.length === 0) throw new EpochLogError('no epoch to sign a checkpoint of');
  const tree = epochLogTree(epochs);
  if (last) {
    if (last.size > tree.size)
      throw new EpochLogError(
        `the epoch log has ${tree.size} epochs but a checkpoint of size ${last.size} was signed: epochs are missing; refusing to sign`,
      );
    if (!equalBytes(rootAt(tree, last.size), last.root))
      throw new EpochLogError(
        `the epoch log is not consistent with the checkpoint of size ${last.size} signed before: an epoch among the first ${last.size} changed; refusing to sign (sealing stops until this is investigated)`,
      );
  }
  const root = rootOf(tree);
  const note = signer.sign(formatCheckpoint({ origin: signer.origin, size: tree.size, root, extensions: [] }));
  return { size: tree.size, root, note, signed_at_ms: now };
}
