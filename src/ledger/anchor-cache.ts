// The anchor cache, once, above the engines: an epoch's anchor, once recorded, never changes
// (record() leaves a recorded epoch as it is), so a found one is kept and read from memory on
// every later receipt. Not-found answers are never kept: the epoch may be anchored any moment.
import type { AnchorAttempt, AnchorRecord, AnchorStore } from './types.ts';

/** Cached anchors at most; the whole cache is dropped when full (recent epochs refill it at once). */
const MAX_CACHED = 100_000;

export class AnchorCache implements AnchorStore {
  private readonly store: AnchorStore;
  private readonly found = new Map<number, AnchorRecord>();

  /** store: the engine's anchors (its SQL and I/O only). */
  constructor(store: AnchorStore) {
    this.store = store;
  }

  async get(epoch: number): Promise<AnchorRecord | null> {
    const cached = this.found.get(epoch);
    if (cached) return cached;
    const record = await this.store.get(epoch);
    if (!record) return null;
    if (this.found.size >= MAX_CACHED) this.found.clear();
    this.found.set(epoch, record);
    return record;
  }

  anchoredThrough(): Promise<number | null> {
    return this.store.anchoredThrough();
  }

  recordAttempt(attempt: AnchorAttempt): Promise<void> {
    return this.store.recordAttempt(attempt);
  }

  attemptsCovering(epoch: number): Promise<string[]> {
    return this.store.attemptsCovering(epoch);
  }

  record(epochs: number[], anchor: AnchorRecord): Promise<void> {
    return this.store.record(epochs, anchor);
  }
}
