// Prometheus metrics, one registry per server instance (tests run several in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
    sealErrors: new Counter({ name: 'receipts_seal_errors_total', help: 'Failed seal attempts (retried on the next tick)', registers: [registry] }),
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
    epochsAnchored: new Counter({ name: 'receipts_epochs_anchored_total', help: 'Epochs recorded as anchored on chain', registers: [registry] }),
    anchorRetries: new Counter({ name: 'receipts_anchor_retries_total', help: 'Anchoring attempts retried after a transient error', registers: [registry] }),
    anchoringFailed: new Gauge({
      name: 'receipts_anchoring_failed',
      help: '1 when anchoring stopped on a Move abort or a root mismatch and needs a person',
      registers: [registry],
    }),
    leader: new Gauge({ name: 'receipts_leader', help: '1 while this instance seals and anchors (the leader), 0 while it follows', registers: [registry] }),
    bodyBytesInFlight: new Gauge({ name: 'receipts_http_body_bytes_in_flight', help: 'Bytes of request bodies being received right now (as announced)', registers: [registry] }),
    bodiesRefused: new Counter({
      name: 'receipts_http_bodies_refused_total',
      help: 'Requests refused with 503 because too many body bytes were being received at once',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
