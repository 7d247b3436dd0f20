// Events whose every field was checked where they were built (the metering middleware: its
// fields come from a fixed allow-list and checked option values), so the client takes them
// without its own check. The mark is a private field of this class: only code that imports
// this module can make such an event (not a key any caller can add, as the registered symbol
// it replaces was), and JSON leaves it out, so an event read back from the spool is checked again.
import type { QueuedEvent } from './options.ts';

export class CheckedEvent implements QueuedEvent {
  request_id: string;
  namespace: string;
  caller: string;
  action: string;
  units: number;
  ts: number;
  metadata: Record<string, string | number | boolean>;
  /** A bound of the event's JSON size in bytes (for the client's batch size limit), > 0. */
  readonly #bound: number;
  constructor(
    requestId: string,
    namespace: string,
    caller: string,
    action: string,
    units: number,
    ts: number,
    metadata: Record<string, string | number | boolean>,
    bound: number,
  ) {
    this.request_id = requestId;
    this.namespace = namespace;
    this.caller = caller;
    this.action = action;
    this.units = units;
    this.ts = ts;
    this.metadata = metadata;
    this.#bound = bound > 0 ? bound : 1;
  }

  /** The size bound of a checked event; 0 for any other object (which the client checks). */
  static boundOf(event: unknown): number {
    return typeof event === 'object' && event !== null && #bound in event ? (event as CheckedEvent).#bound : 0;
  }
}
