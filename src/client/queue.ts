// The client's queue: events waiting to be sent, oldest first, and the next batch taken from it.
// Events the middleware checked when it built them (CheckedEvent) are taken as a block; any
// other event is checked here, off the caller's path, and a bad one is handed to `refuse`.
import { validateEvent, type FieldError } from '../event/validate.ts';
import { CheckedEvent } from './checked.ts';
import type { QueuedEvent } from './options.ts';

/** Stay under the API's 1 MiB body limit with room for the envelope. */
export const MAX_BODY_BYTES = 1_000_000;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is all of ASCII, control characters included, on purpose
const ASCII = /^[\x00-\x7f]*$/;
const utf8 = new TextEncoder();

export class EventQueue {
  /** Queued events are items[head …]; shift() is O(n) on large arrays, a head index is O(1). */
  private items: QueuedEvent[] = [];
  private head = 0;
  /** Index in `items` of the last event that still needs the client's check (-1: none). */
  private lastUnchecked = -1;
  /** The largest JSON size bound among the checked events queued since the queue was last empty. */
  private maxBound = 0;

  size(): number {
    return this.items.length - this.head;
  }

  /** `bound` > 0: the event was checked where it was built, and its JSON takes at most that many bytes. */
  push(event: QueuedEvent, bound: number): void {
    if (bound <= 0) this.lastUnchecked = this.items.length;
    else if (bound > this.maxBound) this.maxBound = bound;
    this.items.push(event);
  }

  /**
   * The oldest queued event, removed. Its slot is cleared: a taken event kept reachable from the
   * queue outlives young-generation collections and is promoted (under load that was most of
   * the middleware's cost, in full collections).
   */
  take(): QueuedEvent {
    const e = this.items[this.head]!;
    (this.items as Array<QueuedEvent | undefined>)[this.head++] = undefined;
    return e;
  }

  /** Everything queued, removed (close() giving up). */
  drain(): QueuedEvent[] {
    const left = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.lastUnchecked = -1;
    this.maxBound = 0;
    return left;
  }

  /** Events taken for a send that failed, back at the front (checked again when next taken). */
  putBack(events: QueuedEvent[]): void {
    if (events.length === 0) return;
    this.items.splice(this.head, 0, ...events);
    this.lastUnchecked = Math.max(this.lastUnchecked + events.length, this.head + events.length - 1);
  }

  /** Lets go of the array's taken part: at once when all was taken, else once it is most of it. */
  compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      this.lastUnchecked = -1;
      this.maxBound = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.lastUnchecked = Math.max(-1, this.lastUnchecked - this.head);
      this.head = 0;
    }
  }

  /**
   * The next batch, at most `batchSize` events and MAX_BODY_BYTES of JSON. Events that fail the
   * check are taken out and handed to `refuse` (left in the queue, one stopped every send after it).
   */
  takeBatch(batchSize: number, refuse: (event: QueuedEvent, errors: FieldError[]) => void): QueuedEvent[] {
    // Only checked events, and even at the largest size bound among them the batch fits in a
    // request: taken as a block (under load, one request at a time, the loop below was a
    // measurable part of each).
    const n = Math.min(this.size(), batchSize);
    if (this.lastUnchecked < this.head && n * this.maxBound <= MAX_BODY_BYTES) {
      let batch: QueuedEvent[];
      if (this.head === 0 && n === this.items.length) {
        batch = this.items;
        this.items = [];
      } else {
        batch = this.items.slice(this.head, this.head + n);
        (this.items as Array<QueuedEvent | undefined>).fill(undefined, this.head, this.head + n);
        this.head += n;
      }
      this.compact();
      return batch;
    }
    const batch: QueuedEvent[] = [];
    let bytes = 0;
    const now = Date.now();
    while (this.size() > 0 && batch.length < batchSize) {
      const e = this.items[this.head]!;
      const bound = CheckedEvent.boundOf(e);
      let errors: FieldError[] | undefined;
      let size = 0;
      try {
        // The server checks the time window; the client checks everything else.
        if (bound > 0) size = bound;
        else {
          const v = validateEvent(e, { now, maxAgeMs: Number.MAX_SAFE_INTEGER, maxFutureMs: Number.MAX_SAFE_INTEGER });
          if (v.ok) size = jsonBytes(JSON.stringify(e)) + 1;
          else errors = v.errors;
        }
      } catch (err) {
        // A BigInt, a getter or a toJSON that throws inside metadata: this event alone is refused.
        errors = [{ path: 'metadata', rule: 'json', message: `the event cannot be serialized as JSON: ${describe(err)}` }];
      }
      if (errors) {
        this.take();
        refuse(e, errors);
        continue;
      }
      if (batch.length > 0 && bytes + size > MAX_BODY_BYTES) break;
      bytes += size;
      batch.push(e);
      this.take();
    }
    this.compact();
    return batch;
  }
}

function jsonBytes(json: string): number {
  return ASCII.test(json) ? json.length : utf8.encode(json).length;
}

/** An error's message for a sentence, whatever was thrown (even an object without toString). */
export function describe(err: unknown): string {
  try {
    const message = (err as { message?: unknown } | null | undefined)?.message;
    return typeof message === 'string' ? message : String(err);
  } catch {
    try {
      return Object.prototype.toString.call(err);
    } catch {
      return `a thrown ${typeof err}`; // a Proxy that throws on every read
    }
  }
}
