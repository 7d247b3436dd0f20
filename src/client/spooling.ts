// The client's use of its spool: every event in before record() returns, when the disk allows,
// and out once answered. A spool that cannot write must not cost the event: it is held in memory
// (bounded by maxQueue like every queued event) and sent from there; the failure is reported
// once, and the spool tried again at most every SPOOL_RETRY_MS, when what memory holds meanwhile
// is written to it first.
import { UsageClientError } from './errors.ts';
import type { QueuedEvent, Spool } from './options.ts';
import { describe } from './queue.ts';

/** While the spool cannot write, it is tried again at most this often (on the next record()). */
export const SPOOL_RETRY_MS = 1000;

export class SpoolKeeper {
  /** 0 while the spool works; else when to try writing again. */
  private retryAt = 0;
  /** The spool's remove() failed last time (reported once until it works again). */
  private removeFailing = false;
  /** Events this client holds that are not in the spool, by request id, in record order. */
  private readonly memoryOnly = new Map<string, QueuedEvent>();

  private readonly spool: Spool;
  private readonly maxQueue: number;
  private readonly report: (error: UsageClientError) => void;

  constructor(spool: Spool, maxQueue: number, report: (error: UsageClientError) => void) {
    this.spool = spool;
    this.maxQueue = maxQueue;
    this.report = report;
  }

  add(e: QueuedEvent): void {
    if (this.retryAt === 0) {
      try {
        this.spool.add(e);
        return;
      } catch (err) {
        if (!serializable(e)) return; // the event's fault, not the disk's: rejected when taken for a send
        this.memoryOnly.set(e.request_id, e);
        this.failed(`could not write (${describe(err)})`, err);
        return;
      }
    }
    this.memoryOnly.set(e.request_id, e);
    if (Date.now() >= this.retryAt && this.writeHeld()) {
      this.retryAt = 0;
      this.report(
        new UsageClientError('spool_recovered', 'the spool works again: events are spooled again, those held in memory meanwhile included'),
      );
    }
  }

  /**
   * Answered (or dropped) events out of the spool. A spool that fails here (a full or read-only
   * disk) is reported, not a fault of the send: the answer stands, and rows left behind are sent
   * again by the next client on the spool, as duplicates the service ignores. A dropped event
   * left behind is sent by the next client too: reported dropped, it may yet be billed.
   */
  remove(ids: string[]): void {
    if (this.memoryOnly.size > 0) for (const id of ids) this.memoryOnly.delete(id);
    try {
      this.spool.remove(ids);
      this.removeFailing = false;
    } catch (err) {
      // Once until a remove works again (a full disk fails every batch's).
      if (!this.removeFailing)
        this.report(
          new UsageClientError(
            'spool_remove_failed',
            `the spool could not remove ${ids.length} answered events (${describe(err)}); the next client on it sends them again, as duplicates`,
            { cause: err },
          ),
        );
      this.removeFailing = true;
    }
  }

  /**
   * Of `events` (not delivered when close() gave up), those the spool does not hold after one
   * more try to write what memory holds: they are lost.
   */
  notKept(events: QueuedEvent[]): QueuedEvent[] {
    if (this.memoryOnly.size > 0) this.writeHeld();
    const lost = events.filter((e) => this.memoryOnly.has(e.request_id));
    this.memoryOnly.clear();
    return lost;
  }

  close(): void {
    this.spool.close();
  }

  /** What memory holds that the spool does not, into the spool; false (and retried later) if it cannot write. */
  private writeHeld(): boolean {
    const held = [...this.memoryOnly.values()].filter((e) => serializable(e));
    try {
      if (this.spool.addMany) this.spool.addMany(held);
      else for (const e of held) this.spool.add(e), this.memoryOnly.delete(e.request_id);
    } catch {
      this.retryAt = Date.now() + SPOOL_RETRY_MS;
      return false;
    }
    this.memoryOnly.clear();
    return true;
  }

  /** Reported on the first failure only: a full disk under load is thousands of them. */
  private failed(what: string, cause: unknown): void {
    const first = this.retryAt === 0;
    this.retryAt = Date.now() + SPOOL_RETRY_MS;
    if (first) {
      this.report(
        new UsageClientError(
          'spool_write_failed',
          `the spool ${what}; events are kept in memory (at most maxQueue, ${this.maxQueue}; beyond it onDropped) and sent from there, but do not survive a crash until the spool works again (tried every ${SPOOL_RETRY_MS} ms)`,
          { cause },
        ),
      );
    }
  }
}

/** Whether the event can be written as JSON (a BigInt or a throwing getter in metadata cannot). */
function serializable(e: QueuedEvent): boolean {
  try {
    JSON.stringify(e);
    return true;
  } catch {
    return false;
  }
}
