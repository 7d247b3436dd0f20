// Building receipts from the ledger's stores: the event, the epoch whose run of ledger positions
// holds it (leaf index = seq − first_seq), and the audit path's stored nodes.
//
// A receipt is a hot path, so what never changes is kept in memory, bounded:
// - sealed epoch headers (an epoch is written once, in one transaction, and never rewritten):
//   up to EPOCHS_KEPT, so finding an event's epoch costs no read;
// - the upper tree levels (≥ CACHED_FROM_LEVEL: an eighth of an epoch's nodes, 4 MB of a
//   1,000,000-event epoch) of recently used epochs, whole levels, least recently used dropped
//   beyond `cacheBytes` (64 MB by default), each level read once however many receipts wait;
// and the nodes below come from ONE ledger read (epochs.nodes: one stored chunk, one query on
// PostgreSQL) of the event's block of 8 leaves, beside the anchor's read.
import { hash } from 'node:crypto';
import { bytesToHex } from '../encoding/hex.ts';
import type { AnchorRecord, EpochRecord, EventRecord, Ledger, LeafBlock } from '../ledger/index.ts';
import { HASH_SIZE, nodePreimage } from '../merkle/hash.ts';
import { auditPathNodes } from '../merkle/tree.ts';
import type { Anchor, AnyReceipt, CorrectedBy, ReceiptEvent } from './format.ts';

/** Levels from here up are cached whole: 1/8 of an epoch's nodes. */
const CACHED_FROM_LEVEL = 3;
/** Leaves per block read for the levels below: their subtree holds every lower path node. */
const BLOCK = 2 ** CACHED_FROM_LEVEL;
/** Default bound of the level cache, bytes of hashes. */
export const LEVEL_CACHE_BYTES = 64 * 1024 * 1024;
/** Sealed epoch headers kept (a few hundred bytes each); all are dropped when full. */
const EPOCHS_KEPT = 4096;

/** A block of leaf hashes and the anchor read with the event (EventStore.getWithBlock), for receipt(). */
const READ_WITH = Symbol('read with the event');
type ReadBlock = { at: LeafBlock; hashes: Uint8Array; anchor: AnchorRecord | null };
export type ReceiptRow = EventRecord & { corrected_by?: CorrectedBy; [READ_WITH]?: ReadBlock };

export interface ReceiptReaderOptions {
  /** Bound of the upper-level cache in bytes of hashes (default LEVEL_CACHE_BYTES; 0: no cache). */
  cacheBytes?: number;
}

export class ReceiptReader {
  private readonly ledger: Ledger;
  private readonly cacheBytes: number;
  /** `${epoch}:${level}` → the whole level; Map order is use order (least recent first). */
  private readonly levels = new Map<string, Uint8Array>();
  /** Levels being read, so that concurrent receipts of a cold epoch read each level once. */
  private readonly loading = new Map<string, Promise<Uint8Array>>();
  private levelBytes = 0;
  /** Sealed epochs seen, sorted by first_seq (disjoint runs): binary search by seq. */
  private epochs: EpochRecord[] = [];

  constructor(ledger: Ledger, options: ReceiptReaderOptions = {}) {
    this.ledger = ledger;
    this.cacheBytes = options.cacheBytes ?? LEVEL_CACHE_BYTES;
  }

  /** Where an epoch's root is on chain, as a receipt carries it, or null while it is not anchored (the ledger caches found ones). */
  async anchor(epoch: number): Promise<Anchor | null> {
    return anchorOf(await this.ledger.anchors.get(epoch));
  }

  /**
   * An event, for receipt(): where the engine can (SQLite), read in one go with the block of
   * leaves and the anchor its receipt needs, when its epoch's header is in memory.
   */
  async event(id: number): Promise<ReceiptRow | undefined> {
    const events = this.ledger.events;
    if (!Number.isSafeInteger(id) || id < 1) return undefined; // ids are 1, 2, …: nothing to place or read
    if (!events.getWithBlock) return events.get(id);
    const read = await events.getWithBlock(id, (seq) => {
      const epoch = this.epochInMemory(seq);
      return epoch && blockOf(epoch, seq - epoch.first_seq);
    });
    if (!read) return undefined;
    const row: ReceiptRow = read.event;
    if (read.block) row[READ_WITH] = read.block;
    return row;
  }

  /**
   * The receipt of a stored event: pending until its epoch is sealed. A correction's is a receipt
   * v2 (its event has kind and corrects); a replaced version's says by which event (corrected_by).
   */
  async receipt(row: ReceiptRow): Promise<AnyReceipt> {
    const fields: ReceiptEvent = {
      namespace: row.namespace,
      request_id: row.request_id,
      caller: row.caller,
      action: row.action,
      units: row.units,
      artifact_digest: row.artifact_digest,
      ts_ms: row.ts_ms,
    };
    // v2 exactly when the row is a correction: its event also has kind and corrects.
    const version = row.kind !== undefined ? 2 : 1;
    const event = row.kind !== undefined ? { ...fields, kind: row.kind, corrects: row.corrects! } : fields;
    const epoch = row.seq === null ? undefined : await this.epochHolding(row.seq);
    if (!epoch || row.seq === null) {
      return labelled(
        {
          version,
          id: row.id,
          status: 'pending',
          event,
          leaf_hash: row.leaf_hash,
          epoch: null,
          leaf_index: null,
          tree_size: null,
          proof: null,
          root: null,
          anchor: null,
        } as AnyReceipt,
        row.corrected_by,
      );
    }
    const leafIndex = row.seq - epoch.first_seq;
    const path = auditPathNodes(leafIndex, epoch.size);
    const proof = new Array<string>(path.length);
    // Upper levels from memory. The nodes below them all lie in the subtree of the aligned block
    // of 2^CACHED_FROM_LEVEL leaves holding this one: that block is read (one stored chunk: one
    // lookup), beside the anchor, and the path's lower nodes are hashed from it (≤ 4 hashes,
    // cheaper than a lookup per level). Cache off or too small: the upper nodes are read too.
    const upper: Array<[number, number]> = [];
    const upperAt: number[] = [];
    for (let k = 0; k < path.length; k++) {
      const [level, index] = path[k]!;
      if (level < CACHED_FROM_LEVEL) continue;
      // No promise for a level in memory (a proof is ~20 nodes and receipts are a hot path).
      const hashes = this.levelInMemory(epoch.epoch, level) ?? (await this.loadLevel(epoch, level));
      if (hashes) proof[k] = bytesToHex(nodeOf(hashes, epoch.epoch, level, index));
      else {
        upper.push(path[k]!);
        upperAt.push(k);
      }
    }
    const { first, count } = blockOf(epoch, leafIndex);
    const read = row[READ_WITH];
    let anchor: Anchor | null;
    let block: Uint8Array[];
    let nodes: Uint8Array[];
    // The block read with the event is this one unless the epoch headers changed in between.
    if (read && read.at.epoch === epoch.epoch && read.at.first === first && read.at.count === count) {
      // Read with the event: only upper nodes the cache could not hold are left to read.
      anchor = anchorOf(read.anchor);
      block = Array.from({ length: count }, (_, i) => read.hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
      nodes = upper.length ? await this.ledger.epochs.nodes(epoch.epoch, upper) : [];
    } else {
      const places: Array<[number, number]> = [];
      for (let i = 0; i < count; i++) places.push([0, first + i]);
      for (const p of upper) places.push(p);
      let all: Uint8Array[];
      [anchor, all] = await Promise.all([this.anchor(epoch.epoch), this.ledger.epochs.nodes(epoch.epoch, places)]);
      block = all.slice(0, count);
      nodes = all.slice(count);
    }
    for (let k = 0; k < path.length; k++) {
      const [level, index] = path[k]!;
      if (level < CACHED_FROM_LEVEL) proof[k] = bytesToHex(blockNode(block, level, index - (first >> level)));
    }
    for (let m = 0; m < upper.length; m++) proof[upperAt[m]!] = bytesToHex(nodes[m]!);
    return labelled(
      {
        version,
        id: row.id,
        status: anchor ? 'anchored' : 'sealed',
        event,
        leaf_hash: row.leaf_hash,
        epoch: epoch.epoch,
        leaf_index: leafIndex,
        tree_size: epoch.size,
        proof,
        root: epoch.root,
        anchor,
      } as AnyReceipt,
      row.corrected_by,
    );
  }

  /** The sealed epoch holding seq: from memory, else read (and kept). Undefined while none holds it. */
  private async epochHolding(seq: number): Promise<EpochRecord | undefined> {
    const kept = this.epochInMemory(seq);
    if (kept) return kept;
    const found = await this.ledger.epochs.containing(seq);
    if (found) this.keepEpoch(found);
    return found;
  }

  /** The sealed epoch holding seq if its header is in memory. */
  private epochInMemory(seq: number): EpochRecord | undefined {
    const kept = this.epochs;
    let lo = 0;
    let hi = kept.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = kept[mid]!;
      if (seq < e.first_seq) hi = mid - 1;
      else if (seq > e.last_seq) lo = mid + 1;
      else return e;
    }
    return undefined;
  }

  private keepEpoch(e: EpochRecord): void {
    if (this.epochs.length >= EPOCHS_KEPT) this.epochs = [];
    const kept = this.epochs;
    let i = 0;
    while (i < kept.length && kept[i]!.first_seq < e.first_seq) i++;
    if (kept[i]?.epoch === e.epoch) return; // two receipts of a cold epoch raced: kept once
    kept.splice(i, 0, e);
  }

  /** A whole level if it is in memory (then marked most recently used). */
  private levelInMemory(epoch: number, level: number): Uint8Array | undefined {
    const key = `${epoch}:${level}`;
    const hashes = this.levels.get(key);
    if (hashes) {
      this.levels.delete(key); // most recently used goes last
      this.levels.set(key, hashes);
    }
    return hashes;
  }

  /** Reads a whole level into the cache (once, however many receipts wait), or undefined when it cannot fit. */
  private async loadLevel(epoch: EpochRecord, level: number): Promise<Uint8Array | undefined> {
    // A level's size is known from the epoch's: ceil(size / 2^level) hashes.
    if (Math.ceil(epoch.size / 2 ** level) * HASH_SIZE > this.cacheBytes) return undefined;
    const key = `${epoch.epoch}:${level}`;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.ledger.epochs.level(epoch.epoch, level);
      this.loading.set(key, pending);
      const forget = () => this.loading.delete(key);
      pending.then((read) => {
        forget();
        this.keepLevel(key, read);
      }, forget);
    }
    return pending;
  }

  private keepLevel(key: string, hashes: Uint8Array): void {
    if (this.levels.has(key)) return;
    this.levelBytes += hashes.length;
    this.levels.set(key, hashes);
    while (this.levelBytes > this.cacheBytes && this.levels.size > 0) {
      const [oldest, bytes] = this.levels.entries().next().value!;
      this.levels.delete(oldest);
      this.levelBytes -= bytes.length;
    }
  }
}

/** The aligned block of leaves holding leaf `leafIndex` of an epoch: its subtree holds every lower path node. */
function blockOf(epoch: EpochRecord, leafIndex: number): LeafBlock {
  const first = leafIndex - (leafIndex % BLOCK);
  return { epoch: epoch.epoch, first, count: Math.min(BLOCK, epoch.size - first) };
}

/** An anchor as a receipt carries it. */
function anchorOf(a: AnchorRecord | null): Anchor | null {
  return (
    a && { network: a.network, package_id: a.package_id, registry_id: a.registry_id, tx_digest: a.tx_digest, checkpoint: a.checkpoint }
  );
}

/** A receipt with its corrected_by label, last (beside the proof, outside the leaf), when the version was replaced. */
function labelled(receipt: AnyReceipt, by: CorrectedBy | undefined): AnyReceipt {
  if (by) receipt.corrected_by = { id: by.id, kind: by.kind };
  return receipt;
}

/** Node `index` of a whole level, or an error naming it (a short stored level is never a short hash). */
function nodeOf(hashes: Uint8Array, epoch: number, level: number, index: number): Uint8Array {
  if ((index + 1) * HASH_SIZE > hashes.length) throw new RangeError(`no stored node at epoch ${epoch}, level ${level}, index ${index}`);
  return hashes.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
}

/**
 * Node `index` of `level` in the tree over a block's leaves, as the epoch's tree has it (RFC 6962
 * bottom-up: pairs hashed, a lone last node promoted unchanged). The block is aligned on its
 * size, so its subtree's nodes are the epoch tree's own.
 */
function blockNode(leaves: readonly Uint8Array[], level: number, index: number): Uint8Array {
  if (level === 0) return leaves[index]!;
  const left = blockNode(leaves, level - 1, 2 * index);
  // Nodes at level − 1 within the block: ceil(leaves / 2^(level − 1)).
  if (2 * index + 1 >= Math.ceil(leaves.length / 2 ** (level - 1))) return left;
  const preimage = nodePreimage();
  preimage.set(left, 1);
  preimage.set(blockNode(leaves, level - 1, 2 * index + 1), 1 + HASH_SIZE);
  return hash('sha256', preimage, 'buffer');
}
