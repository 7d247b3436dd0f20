// Sending one batch until every event in it has an answer: the sink's answer read, what can be
// retried retried with backoff (or after the sink's Retry-After), a batch too large halved.
import type { FieldError } from '../event/validate.ts';
import { backoffDelay } from '../retry/backoff.ts';
import { UsageClientError } from './errors.ts';
import type { QueuedEvent, Settings } from './options.ts';
import { describe } from './queue.ts';
import type { Sink, SinkAnswer, SinkResult } from './sinks/index.ts';

/** The batch being sent, and how close() cuts its send short when past its deadline. */
export interface InFlight {
  batch: QueuedEvent[];
  /** Events of the batch already answered (a batch too large is sent in halves). */
  answered: Set<QueuedEvent>;
  abort: AbortController | null;
  wake: (() => void) | null;
}

/** What the sender tells the client, and asks of it. */
export interface Delivery {
  readonly sink: Sink;
  readonly o: Settings;
  /** close() gave up: send nothing more, ignore answers that still come. */
  stopped(): boolean;
  inFlight(): InFlight | null;
  /** Delivered; `results` (one per event, optional) may refuse single events. */
  delivered(events: QueuedEvent[], results: readonly SinkResult[] | undefined): void;
  /** Refused as a whole, for good. */
  refused(events: QueuedEvent[], errors: FieldError[]): void;
  /** A failed attempt that will be retried. */
  retrying(error: Error): void;
}

/** Sends one batch until every event has an answer; retries what can be retried. */
export async function sendBatch(d: Delivery, batch: QueuedEvent[]): Promise<void> {
  if (batch.length === 0) return;
  for (let attempt = 0; ; attempt++) {
    if (d.stopped()) return; // close() gave up on these
    let answer: SinkAnswer;
    // A timer cleared when the send ends: AbortSignal.timeout() would keep a signal and its
    // timer alive for the whole timeout after every batch (thousands, under load).
    const timeout = new AbortController();
    const current = d.inFlight();
    if (current) current.abort = timeout;
    const timer = setTimeout(
      () => timeout.abort(new DOMException(`the sink did not answer within ${d.o.timeoutMs} ms`, 'TimeoutError')),
      d.o.timeoutMs,
    );
    try {
      answer = await d.sink.send(batch, timeout.signal);
    } catch (err) {
      answer = { kind: 'retry', error: new UsageClientError('send_failed', `sink ${d.sink.name}: ${describe(err)}`, { cause: err }) };
    } finally {
      clearTimeout(timer);
    }
    if (d.stopped()) return;
    if (answer?.kind === 'done') return d.delivered(batch, answer.results);
    if (answer?.kind === 'too_large' && batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      await sendBatch(d, batch.slice(0, half));
      await sendBatch(d, batch.slice(half));
      return;
    }
    if (answer?.kind === 'refused' || answer?.kind === 'too_large') {
      // Refused as a whole: report each event, never retry.
      return d.refused(
        batch,
        answer.kind === 'refused' ? answer.errors : [{ path: '', rule: 'too_large', message: 'the event alone is too large for the sink' }],
      );
    }
    const retry =
      answer?.kind === 'retry'
        ? answer
        : { error: new UsageClientError('send_failed', `sink ${d.sink.name} gave no answer`), retryAfterMs: null };
    d.retrying(retry.error);
    await wait(d, retry.retryAfterMs ?? backoffDelay(attempt + 1, d.o.retry)); // attempt counts from 0 here
  }
}

/** The delay before a retry; close() past its deadline ends it at once. */
function wait(d: Delivery, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    const current = d.inFlight();
    if (current) current.wake = () => (clearTimeout(timer), resolve());
  });
}
