// Receipt v1 (DESIGN.md, "Receipt"): an event's fields and the proof that its leaf is in a
// sealed epoch's tree. Types only: shared by the server that builds receipts and the verifier.

export interface ReceiptEvent {
  namespace: string;
  request_id: string;
  caller: string;
  action: string;
  units: number;
  /** 64 lowercase hex characters, or '' for none. */
  artifact_digest: string;
  ts_ms: number;
}

export interface Anchor {
  network: string;
  package_id: string;
  registry_id: string;
  tx_digest: string;
  checkpoint: string;
}

export type ReceiptStatus = 'pending' | 'sealed' | 'anchored';

export interface Receipt {
  version: 1;
  /** The event's ledger id (extra to DESIGN.md; not used by verification). */
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
