// What the anchorer needs from a chain. The Sui adapter (sui.ts) implements it over gRPC; the
// tests implement it over the registry twin with injected faults.
import type { EpochToAnchor } from './ptb.ts';

export interface AnchoredEpoch {
  /** 64 hex characters. */
  root: string;
  size: number;
}

export interface AnchorSubmission {
  digest: string;
  /** Checkpoint sequence number once final. */
  checkpoint: string | null;
  /** Gas of the transaction in MIST (computation + storage − rebate), when known. */
  gasMist?: bigint;
}

/** The chain ran the transaction and a Move check refused it: retrying cannot help. */
export class MoveAbortError extends Error {
  readonly constantName: string;
  readonly digest: string | null;
  constructor(constantName: string, message: string, digest: string | null = null) {
    super(message);
    this.name = 'MoveAbortError';
    this.constantName = constantName;
    this.digest = digest;
  }
}

export interface AnchorChain {
  readonly network: string;
  readonly packageId: string;
  readonly registryId: string;
  /** The registry's next expected epoch. */
  nextEpoch(): Promise<number>;
  /** The root and size anchored for `epoch`, or null when it is not anchored. */
  readEpoch(epoch: number): Promise<AnchoredEpoch | null>;
  /** The checkpoint of a transaction, once final; null if unknown. */
  checkpointOf(digest: string): Promise<string | null>;
  /**
   * Anchors consecutive epochs in one transaction and waits until it is final. `beforeSend`
   * receives the digest before the transaction leaves, so a crash after execution can be
   * reconciled. Throws MoveAbortError on a Move abort; any other error may be transient.
   */
  anchor(epochs: EpochToAnchor[], hooks?: { beforeSend?: (digest: string) => void | Promise<void> }): Promise<AnchorSubmission>;
}
