// Receipt v1 (docs/design.md, "Receipt"): an event's fields and the proof that its leaf is in a
// sealed epoch's tree. Types only: shared by the server that builds receipts and the verifier.
import type { LeafFields } from '../event/leaf.ts';

/** The event as a receipt carries it: exactly the fields of leaf v1. */
export type ReceiptEvent = LeafFields;

/** Where an epoch's root is on chain. The registry (not the transaction) is what a verifier reads. */
export interface Anchor {
  network: string;
  package_id: string;
  registry_id: string;
  /** The anchoring transaction; null only if the epoch was found on chain without a recorded attempt. */
  tx_digest: string | null;
  checkpoint: string | null;
}

export type ReceiptStatus = 'pending' | 'sealed' | 'anchored';

export interface Receipt {
  version: 1;
  /** The event's ledger id (extra to docs/design.md; not used by verification). */
  id?: number;
  status: ReceiptStatus;
  event: ReceiptEvent;
  leaf_hash: string;
  epoch: number | null;
  leaf_index: number | null;
  tree_size: number | null;
  proof: string[] | null;
  root: string | null;
  anchor: Anchor | null;
}
