// An AnchorChain over the Move registry's TypeScript twin, with faults injected per call.
import { MoveAbortError, type AnchorChain, type AnchoredEpoch, type AnchorSubmission } from '../../src/chain/chain.ts';
import type { EpochToAnchor } from '../../src/chain/ptb.ts';
import { MoveAbort, RegistryModel } from '../chain/registry-model.ts';
import { bytesToHex, hexToBytes } from '../../src/event/leaf.ts';

/** What the next anchor call does instead of succeeding plainly. */
export type Fault = 'timeout-before' | 'timeout-after' | 'failed-tx' | 'crash-after';

/** The process "died" right after the chain executed the transaction. */
export class CrashAfterExecution extends Error {}

export class FakeChain implements AnchorChain {
  readonly network = 'localnet';
  readonly packageId = `0x${'a'.repeat(64)}`;
  readonly registryId = `0x${'b'.repeat(64)}`;
  readonly model = new RegistryModel(this.registryId);
  readonly faults: Fault[] = [];
  /** Every transaction the chain executed, in order. */
  readonly executed: Array<{ digest: string; epochs: number[] }> = [];
  /** Every call to anchor, executed or not. */
  calls = 0;
  /** How many upcoming nextEpoch() reads fail with a timeout. */
  readTimeouts = 0;
  private readonly checkpoints = new Map<string, string>();

  async nextEpoch(): Promise<number> {
    if (this.readTimeouts > 0) {
      this.readTimeouts--;
      throw new Error('deadline exceeded reading the registry (fake)');
    }
    return this.model.nextEpoch;
  }

  async readEpoch(epoch: number): Promise<AnchoredEpoch | null> {
    const r = this.model.epochs.get(epoch);
    return r ? { root: bytesToHex(r.root), size: r.size } : null;
  }

  async checkpointOf(digest: string): Promise<string | null> {
    return this.checkpoints.get(digest) ?? null;
  }

  async anchor(epochs: EpochToAnchor[], hooks?: { beforeSend?: (digest: string) => void | Promise<void> }): Promise<AnchorSubmission> {
    this.calls++;
    const digest = `Digest${this.calls}`;
    await hooks?.beforeSend?.(digest);
    const fault = this.faults.shift();
    if (fault === 'timeout-before') throw new Error('deadline exceeded before the transaction reached a validator (fake)');
    if (fault === 'failed-tx') throw new Error('transaction failed: InsufficientGas (fake)');
    // A PTB is atomic: all anchors or none.
    const before = this.model.nextEpoch;
    try {
      for (const e of epochs) this.model.anchor(this.registryId, e.epoch, hexToBytes(e.root), e.size, e.first_ts_ms, e.last_ts_ms, 1);
    } catch (err) {
      for (let e = before; e < this.model.nextEpoch; e++) this.model.epochs.delete(e);
      this.model.nextEpoch = before;
      if (err instanceof MoveAbort)
        throw new MoveAbortError(err.constantName, `MoveAbort in registry::anchor: ${err.constantName}`, digest);
      throw err;
    }
    const checkpoint = String(1000 + this.executed.length);
    this.checkpoints.set(digest, checkpoint);
    this.executed.push({ digest, epochs: epochs.map((e) => e.epoch) });
    if (fault === 'timeout-after') throw new Error('deadline exceeded waiting for the effects (fake)');
    if (fault === 'crash-after') throw new CrashAfterExecution('crashed after execution');
    return { digest, checkpoint };
  }
}
