// The anchorer: sends sealed epochs to the registry in order, waits for finality, and records
// where each root landed. It never skips an epoch and never sends one twice:
// - every step starts from the chain's own next expected epoch, and records what is already
//   there (same root) without sending it again;
// - the digest of each attempt is stored before the transaction leaves, so a crash between
//   execution and recording still finds it;
// - transport errors are retried with exponential backoff and full jitter;
// - a Move abort, or a root on chain that differs from the ledger's, stops anchoring loudly.
import type { FastifyBaseLogger } from 'fastify';
import { MoveAbortError, type AnchorChain, type AnchorSubmission } from '../chain/chain.ts';
import { MAX_EPOCHS_PER_PTB, type EpochToAnchor } from '../chain/ptb.ts';
import type { Ledger } from '../ledger/index.ts';
import { backoffDelay } from '../retry/backoff.ts';

/** The ledger and the chain disagree: anchoring cannot go on without a person. */
export class ReconcileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReconcileError';
  }
}

export type AnchoringStatus = 'running' | 'retrying' | 'failed' | 'stopped';

export interface AnchorerState {
  status: AnchoringStatus;
  /** Why anchoring failed or is retrying. */
  error: string | null;
  /** Highest epoch recorded as anchored, or null. */
  anchoredThrough: number | null;
}

export interface AnchorerOptions {
  ledger: Ledger;
  chain: AnchorChain;
  logger?: FastifyBaseLogger;
  /** How often to look for newly sealed epochs, ms. */
  pollMs?: number;
  /** Backoff after a transport error: base and cap, ms (full jitter). */
  backoff?: { baseMs: number; maxMs: number };
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  onAnchored?: (epochs: number[], submission: AnchorSubmission) => void;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  onFailed?: (error: Error) => void;
}

export class Anchorer {
  private readonly o: Required<Pick<AnchorerOptions, 'pollMs' | 'backoff' | 'random' | 'sleep' | 'now'>> & AnchorerOptions;
  private status: AnchoringStatus = 'running';
  private error: string | null = null;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(options: AnchorerOptions) {
    this.o = {
      pollMs: 1000,
      backoff: { baseMs: 500, maxMs: 30_000 },
      random: Math.random,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: Date.now,
      ...options,
    };
  }

  async state(): Promise<AnchorerState> {
    return { status: this.status, error: this.error, anchoredThrough: await this.o.ledger.anchors.anchoredThrough() };
  }

  /** Runs until stop() or a failure that needs a person. */
  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    if (this.status !== 'failed') this.status = 'stopped';
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (this.status === 'running' || this.status === 'retrying') {
      try {
        const sent = await this.step();
        attempt = 0;
        if (this.status === 'retrying') {
          this.status = 'running';
          this.error = null;
        }
        if (sent === 0) await this.pause(this.o.pollMs);
      } catch (err) {
        if (err instanceof MoveAbortError || err instanceof ReconcileError) {
          this.fail(err);
          return;
        }
        attempt++;
        const delay = Math.round(backoffDelay(attempt, this.o.backoff, this.o.random));
        if ((this.status as AnchoringStatus) === 'stopped') return;
        this.status = 'retrying';
        this.error = (err as Error).message;
        this.o.logger?.warn(
          { err: { message: (err as Error).message }, attempt, retry_in_ms: delay },
          'anchoring: transient error, retrying',
        );
        this.o.onRetry?.(err, attempt, delay);
        await this.pause(delay);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      void this.o.sleep(ms).then(resolve);
    });
  }

  private fail(err: Error): void {
    this.status = 'failed';
    this.error = err.message;
    this.o.logger?.error(
      { err: { name: err.name, message: err.message } },
      'ANCHORING STOPPED: no further epoch will be anchored until this is resolved and the service restarted',
    );
    this.o.onFailed?.(err);
  }

  /**
   * One round: read the chain's next expected epoch, record what is already there, then send the
   * next sealed epochs (at most one PTB). Returns how many epochs were sent.
   */
  async step(): Promise<number> {
    const chainNext = await this.o.chain.nextEpoch();
    await this.reconcile(chainNext);
    const batch = await this.o.ledger.epochs.list({ after: chainNext - 1, limit: MAX_EPOCHS_PER_PTB });
    if (batch.length === 0) return 0;
    const epochs: EpochToAnchor[] = batch.map((e) => ({
      epoch: e.epoch,
      root: e.root,
      size: e.size,
      first_ts_ms: e.first_ts_ms,
      last_ts_ms: e.last_ts_ms,
    }));
    let submission: AnchorSubmission;
    try {
      submission = await this.o.chain.anchor(epochs, {
        beforeSend: (digest) =>
          this.o.ledger.anchors.recordAttempt({
            tx_digest: digest,
            first_epoch: epochs[0]!.epoch,
            last_epoch: epochs.at(-1)!.epoch,
            created_at_ms: this.o.now(),
          }),
      });
    } catch (err) {
      if (err instanceof MoveAbortError) {
        throw new MoveAbortError(
          err.constantName,
          `anchoring epochs ${epochs[0]!.epoch}–${epochs.at(-1)!.epoch} aborted on chain with ${err.constantName}: ${err.message}`,
          err.digest,
        );
      }
      throw err;
    }
    await this.record(
      epochs.map((e) => e.epoch),
      submission.digest,
      submission.checkpoint,
    );
    this.o.logger?.info(
      { epochs: [epochs[0]!.epoch, epochs.at(-1)!.epoch], tx_digest: submission.digest, checkpoint: submission.checkpoint },
      'anchored epochs',
    );
    this.o.onAnchored?.(
      epochs.map((e) => e.epoch),
      submission,
    );
    return epochs.length;
  }

  /** Records epochs the chain already has, after checking each root against the ledger's. */
  private async reconcile(chainNext: number): Promise<void> {
    const first = ((await this.o.ledger.anchors.anchoredThrough()) ?? -1) + 1;
    for (let e = first; e < chainNext; e++) {
      const local = await this.o.ledger.epochs.get(e);
      if (!local) {
        throw new ReconcileError(
          `the registry has epoch ${e} on chain but this ledger never sealed it: the sui config points at another deployment's registry, or the ledger was replaced`,
        );
      }
      const onChain = await this.o.chain.readEpoch(e);
      if (!onChain) throw new Error(`the registry reports epoch ${e} anchored but it could not be read; will retry`);
      const root = local.root;
      if (onChain.root !== root || onChain.size !== local.size) {
        throw new ReconcileError(
          `epoch ${e} is on chain with root ${onChain.root} (size ${onChain.size}) but this ledger sealed root ${root} (size ${local.size}); anchoring stopped: find out which is right before anything else is anchored`,
        );
      }
      const { digest, checkpoint } = await this.findAttempt(e);
      await this.record([e], digest, checkpoint);
      this.o.logger?.info(
        { epoch: e, tx_digest: digest },
        'anchoring: epoch already on chain with the same root, recorded without sending',
      );
    }
  }

  /** Which of our recorded attempts put epoch e on chain (the one the chain knows). */
  private async findAttempt(e: number): Promise<{ digest: string | null; checkpoint: string | null }> {
    const candidates = await this.o.ledger.anchors.attemptsCovering(e);
    for (const digest of candidates) {
      const checkpoint = await this.o.chain.checkpointOf(digest);
      if (checkpoint !== null) return { digest, checkpoint };
    }
    return { digest: null, checkpoint: null };
  }

  private record(epochs: number[], digest: string | null, checkpoint: string | null): Promise<void> {
    const { network, packageId, registryId } = this.o.chain;
    return this.o.ledger.anchors.record(epochs, {
      network,
      package_id: packageId,
      registry_id: registryId,
      tx_digest: digest,
      checkpoint,
      anchored_at_ms: this.o.now(),
    });
  }
}
