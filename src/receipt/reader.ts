// Building receipts from the ledger's stores: the event, the epoch whose run of ledger positions
// holds it (leaf index = seq − first_seq), and one stored node per tree level.
// Upper levels (≥ 3: an eighth of the nodes) of recently used epochs are kept in memory, so a
// proof costs 3 node reads whatever the epoch size.
import { bytesToHex } from '../encoding/hex.ts';
import type { EventRecord, Ledger } from '../ledger/index.ts';
import { HASH_SIZE } from '../merkle/hash.ts';
import { auditPathNodes } from '../merkle/tree.ts';
import type { Anchor, Receipt } from './format.ts';

/** Levels from here up are cached whole: 1/8 of an epoch's nodes (4 MB for a 1M-event epoch). */
const CACHED_FROM_LEVEL = 3;
const LEVEL_CACHE_BYTES = 64 * 1024 * 1024;

export class ReceiptReader {
  private readonly ledger: Ledger;
  private readonly levels = new Map<string, Uint8Array>();
  private levelBytes = 0;

  constructor(ledger: Ledger) {
    this.ledger = ledger;
  }

  /** Where an epoch's root is on chain, as a receipt carries it, or null while it is not anchored (the ledger caches found ones). */
  async anchor(epoch: number): Promise<Anchor | null> {
    const a = await this.ledger.anchors.get(epoch);
    return (
      a && { network: a.network, package_id: a.package_id, registry_id: a.registry_id, tx_digest: a.tx_digest, checkpoint: a.checkpoint }
    );
  }

  /** The receipt of a stored event: pending until its epoch is sealed. */
  async receipt(row: EventRecord): Promise<Receipt> {
    const event = {
      namespace: row.namespace,
      request_id: row.request_id,
      caller: row.caller,
      action: row.action,
      units: row.units,
      artifact_digest: row.artifact_digest,
      ts_ms: row.ts_ms,
    };
    const epoch = row.seq === null ? undefined : await this.ledger.epochs.containing(row.seq);
    if (!epoch || row.seq === null) {
      return {
        version: 1,
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
      };
    }
    const leafIndex = row.seq - epoch.first_seq;
    const anchor = await this.anchor(epoch.epoch);
    // Lower levels are read from the ledger; upper ones come from memory without a promise each
    // (a proof is ~20 nodes and receipts are a hot path).
    const proof: string[] = [];
    for (const [level, index] of auditPathNodes(leafIndex, epoch.size)) {
      const node = this.cachedNode(epoch.epoch, level, index) ?? (await this.readNode(epoch.epoch, level, index));
      proof.push(bytesToHex(node));
    }
    return {
      version: 1,
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
    };
  }

  /** A node of a level held in memory, or undefined (then readNode). */
  private cachedNode(epoch: number, level: number, index: number): Uint8Array | undefined {
    if (level < CACHED_FROM_LEVEL) return undefined;
    const key = `${epoch}:${level}`;
    const hashes = this.levels.get(key);
    if (!hashes) return undefined;
    this.levels.delete(key); // most recently used goes last
    this.levels.set(key, hashes);
    return hashes.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  /** A node not held in memory: read it, or (upper levels) read and keep its whole level. */
  private async readNode(epoch: number, level: number, index: number): Promise<Uint8Array> {
    if (level < CACHED_FROM_LEVEL) return this.ledger.epochs.node(epoch, level, index);
    const hashes = await this.ledger.epochs.level(epoch, level);
    this.levelBytes += hashes.length;
    while (this.levelBytes > LEVEL_CACHE_BYTES && this.levels.size > 0) {
      const [oldest, bytes] = this.levels.entries().next().value!;
      this.levels.delete(oldest);
      this.levelBytes -= bytes.length;
    }
    this.levels.set(`${epoch}:${level}`, hashes);
    return hashes.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }
}
