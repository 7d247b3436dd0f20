// What close() does: deliver what is queued within a deadline, then stop. What is not delivered
// by then stays in the spool for the next client on it, or without one is dropped, counted and
// reported: never lost silently.
import { UsageClientError } from './errors.ts';
import type { QueuedEvent } from './options.ts';
import type { SpoolKeeper } from './spooling.ts';

/** Whether `flush` ran past `ms` (then the caller gives up on what is left). */
export async function pastDeadline(flush: () => Promise<void>, ms: number): Promise<boolean> {
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const late = await Promise.race([
    flush().then(() => false),
    new Promise<boolean>((resolve) => (deadline = setTimeout(() => resolve(true), ms))),
  ]);
  clearTimeout(deadline);
  return late;
}

/**
 * The events left undelivered when close() gave up after `ms`: those the spool keeps are
 * reported as kept; the rest are lost, reported, and returned (for the dropped count and onDropped).
 */
export function undelivered(
  left: QueuedEvent[],
  keeper: SpoolKeeper | undefined,
  ms: number,
  report: (error: UsageClientError) => void,
): QueuedEvent[] {
  if (left.length === 0) return [];
  let lost = left;
  if (keeper) {
    // Held in memory only while the spool could not write: one more try, else they are lost.
    lost = keeper.notKept(left);
    const kept = left.length - lost.length;
    if (kept > 0)
      report(
        new UsageClientError(
          'close_timeout',
          `close: ${kept} events not delivered within ${ms} ms; they stay in the spool and the next client on it sends them`,
        ),
      );
    if (lost.length === 0) return [];
  }
  const why = keeper ? 'the spool could not write them' : 'no spool; give the client a spool to keep them';
  report(new UsageClientError('close_dropped', `close: ${lost.length} events not delivered within ${ms} ms and dropped (${why})`));
  return lost;
}
