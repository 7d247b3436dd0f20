// Receipt v1 (docs/design.md, "Receipt"): an event's fields and the proof that its leaf is in a
// sealed epoch's tree. A receipt's version is its leaf's: version 2 is a correction (void or
// amend), whose event also has `kind` and `corrects`. Types only: shared by the server that
// builds receipts and the verifier.
import type { CorrectionFields, CorrectionKind, LeafFields } from '../event/leaf.ts';

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

/** The version that replaced a corrected event: a label beside the proof, never part of the leaf. */
export interface CorrectedBy {
  /** The correction's ledger id (its receipt: /v1/events/{id}/receipt). */
  id: number;
  kind: CorrectionKind;
}

interface ReceiptBody {
  /** The event's ledger id (extra to docs/design.md; not used by verification). */
  id?: number;
  /**
   * Set when this version has been replaced (voided or amended) by another event: which one. A
   * label like `id` and `status` (not verified, not in the leaf): the correction's own receipt
   * proves the link, through its `corrects`.
   */
  corrected_by?: CorrectedBy;
  status: ReceiptStatus;
  leaf_hash: string;
  epoch: number | null;
  leaf_index: number | null;
  tree_size: number | null;
  proof: string[] | null;
  root: string | null;
  anchor: Anchor | null;
}
