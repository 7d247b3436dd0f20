// Prometheus metrics, one registry per server instance (tests run several in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Ledger } from '../ledger/index.ts';

/** What the backlog gauges read on each scrape. */
export interface LedgerGaugeSource {
  ledger: Ledger;
  now: () => number;
  /** Whether this service anchors: without it, every epoch stays unanchored by design and those gauges are left out. */
  anchoring: boolean;
}

export function createMetrics(source?: LedgerGaugeSource) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  if (source) ledgerGauges(registry, source);
  return {
    registry,
    requests: new Counter({
      name: 'receipts_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'receipts_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    events: new Counter({
      name: 'receipts_ingest_events_total',
      help: 'Ingested events by result (created, duplicate, conflict, rejected)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    commitBatch: new Histogram({
      name: 'receipts_ledger_commit_batch_events',
      help: 'Events per group commit',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    commitDuration: new Histogram({
      name: 'receipts_ledger_commit_duration_seconds',
      help: 'Time to write and commit one group',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: [registry],
    }),
    epochsSealed: new Counter({ name: 'receipts_epochs_sealed_total', help: 'Epochs sealed', registers: [registry] }),
    sealErrors: new Counter({
      name: 'receipts_seal_errors_total',
      help: 'Failed seal attempts (retried on the next tick)',
      registers: [registry],
    }),
    sealDuration: new Histogram({
      name: 'receipts_seal_duration_seconds',
      help: 'Time to seal one epoch',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    epochSize: new Histogram({
      name: 'receipts_epoch_events',
      help: 'Events per sealed epoch',
      buckets: [1, 10, 100, 1000, 10_000, 100_000, 1_000_000],
      registers: [registry],
    }),
    epochsAnchored: new Counter({
      name: 'receipts_epochs_anchored_total',
      help: 'Epochs recorded as anchored on chain',
      registers: [registry],
    }),
    anchorRetries: new Counter({
      name: 'receipts_anchor_retries_total',
      help: 'Anchoring attempts retried after a transient error',
      registers: [registry],
    }),
    anchoringFailed: new Gauge({
      name: 'receipts_anchoring_failed',
      help: '1 when anchoring stopped on a Move abort or a root mismatch and needs a person',
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'receipts_leader',
      help: '1 while this instance seals and anchors (the leader), 0 while it follows',
      registers: [registry],
    }),
    bodyBytesInFlight: new Gauge({
      name: 'receipts_http_body_bytes_in_flight',
      help: 'Bytes of request bodies being received right now (as announced)',
      registers: [registry],
    }),
    bodiesRefused: new Counter({
      name: 'receipts_http_bodies_refused_total',
      help: 'Requests refused with 503 because too many body bytes were being received at once',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

interface Backlog {
  unsealed: number;
  unsealedOldestMs: number | null;
  lastSealedMs: number | null;
  unanchored: number;
  unanchoredOldestMs: number | null;
  lastAnchoredMs: number | null;
  lastCheckpoint: number | null;
}

/**
 * What an operator watches, read from the ledger when scraped (not kept in memory, so every
 * instance of a cluster reports the shared ledger, and a restart loses nothing). One read per
 * scrape serves every gauge: a handful of indexed lookups, none of them growing with the ledger
 * (the PostgreSQL unsealed count walks the partial index of what waits, the same read that the
 * seal scheduler makes every tick). A failed read is counted and shows as NaN, never as a
 * stale or zero backlog.
 */
function ledgerGauges(registry: Registry, { ledger, now, anchoring }: LedgerGaugeSource): void {
  let inFlight: Promise<Backlog | null> | undefined;
  const readErrors = new Counter({
    name: 'receipts_ledger_gauge_read_errors_total',
    help: 'Scrapes whose ledger read for the backlog gauges failed (those gauges show NaN)',
    registers: [registry],
    // Waits for this scrape's read, so the scrape that failed already counts itself.
    async collect() {
      await snapshot();
    },
  });
  const read = async (): Promise<Backlog> => {
    const [waiting, latest, through] = await Promise.all([
      ledger.events.unsealed(),
      ledger.epochs.latest(),
      anchoring ? ledger.anchors.anchoredThrough() : null,
    ]);
    const firstUnanchored = (through ?? -1) + 1;
    const unanchored = anchoring && latest ? Math.max(0, latest.epoch - firstUnanchored + 1) : 0;
    const [oldestUnanchored, lastAnchor] = await Promise.all([
      unanchored > 0 ? ledger.epochs.get(firstUnanchored) : undefined,
      through !== null ? ledger.anchors.get(through) : null,
    ]);
    const checkpoint = lastAnchor?.checkpoint != null ? Number(lastAnchor.checkpoint) : null;
    return {
      unsealed: waiting.events,
      unsealedOldestMs: waiting.oldestReceivedAt,
      lastSealedMs: latest?.sealed_at_ms ?? null,
      unanchored,
      unanchoredOldestMs: oldestUnanchored?.sealed_at_ms ?? null,
      lastAnchoredMs: lastAnchor?.anchored_at_ms ?? null,
      lastCheckpoint: checkpoint !== null && Number.isSafeInteger(checkpoint) ? checkpoint : null,
    };
  };
  // prom-client collects every metric of a scrape concurrently: they share one read.
  const snapshot = (): Promise<Backlog | null> =>
    (inFlight ??= read()
      .catch(() => {
        readErrors.inc();
        return null;
      })
      .finally(() => (inFlight = undefined)));
  const gauge = (name: string, help: string, value: (b: Backlog, at: number) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const b = await snapshot();
        this.set(b ? value(b, now()) : Number.NaN);
      },
    });
  const age = (ms: number | null, at: number) => (ms === null ? 0 : Math.max(0, at - ms) / 1000);
  const seconds = (ms: number | null) => (ms === null ? 0 : ms / 1000);

  gauge('receipts_unsealed_events', 'Events stored and not yet sealed into an epoch', (b) => b.unsealed);
  gauge(
    'receipts_unsealed_oldest_age_seconds',
    'How long the oldest unsealed event has waited since it was received (0 when none waits)',
    (b, at) => age(b.unsealedOldestMs, at),
  );
  gauge('receipts_last_sealed_timestamp_seconds', 'When the newest epoch was sealed, Unix seconds (0 before the first)', (b) =>
    seconds(b.lastSealedMs),
  );
  if (!anchoring) return;
  gauge('receipts_unanchored_epochs', 'Epochs sealed and not yet recorded as anchored on chain', (b) => b.unanchored);
  gauge(
    'receipts_unanchored_oldest_age_seconds',
    'How long the oldest unanchored epoch has waited since it was sealed (0 when none waits)',
    (b, at) => age(b.unanchoredOldestMs, at),
  );
  gauge(
    'receipts_last_anchored_timestamp_seconds',
    'When the newest anchored epoch was recorded as anchored, Unix seconds (0 before the first)',
    (b) => seconds(b.lastAnchoredMs),
  );
  gauge(
    'receipts_last_anchored_checkpoint',
    'The Sui checkpoint holding the newest anchored epoch (0 before the first, or when it is not known)',
    (b) => b.lastCheckpoint ?? 0,
  );
}
