// Receipt v1 (docs/design.md, "Receipt"): an event's fields and the proof that its leaf is in a
// sealed epoch's tree. A receipt's version is its leaf's: version 2 is a correction (void or
// amend), whose event also has `kind` and `corrects`. Types only: shared by the server that
// builds receipts and the verifier.
import type { CorrectionFields, LeafFields } from '../event/leaf.ts';

/** The event as a receipt v1 carries it: exactly the fields of leaf v1. */
export type ReceiptEvent = LeafFields;

/** The event of a receipt v2 (a correction): exactly the fields of leaf v2. */
export type CorrectionReceiptEvent = CorrectionFields;

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

/**
 * A receipt v1 (an ordinary event). Kept the name of what the server builds today; code that
 * reads receipts of corrections too takes `AnyReceipt`.
 */
export interface Receipt extends ReceiptBody {
  version: 1;
  event: ReceiptEvent;
}

export interface ReceiptV2 extends ReceiptBody {
  version: 2;
  event: CorrectionReceiptEvent;
}

/** A receipt of either version; `version` tells which `event` it carries. */
export type AnyReceipt = Receipt | ReceiptV2;

interface ReceiptBody {
  /** The event's ledger id (extra to docs/design.md; not used by verification). */
  id?: number;
  status: ReceiptStatus;
  leaf_hash: string;
  epoch: number | null;
  leaf_index: number | null;
  tree_size: number | null;
  proof: string[] | null;
  root: string | null;
  anchor: Anchor | null;
}
