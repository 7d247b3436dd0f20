// Health and metrics, outside /v1 and without a key (bind to loopback or a private network).
import type { FastifyInstance } from 'fastify';
import type { Anchorer } from '../../anchor/anchorer.ts';
import type { Ledger } from '../../ledger/index.ts';
import type { Metrics } from '../metrics.ts';

export function operationsRoutes(app: FastifyInstance, opts: { ledger: Ledger; metrics: Metrics; anchorer?: Anchorer }): void {
  // 503 only when the database is gone. A stopped anchorer degrades the service but ingest and
  // receipts still work, so it is reported (and alerted on via receipts_anchoring_failed), not
  // turned into an outage.
  app.get('/healthz', async (_request, reply) => {
    const database = opts.ledger.healthy();
    const anchoring = anchoringCheck(opts.anchorer);
    const status = !database ? 'unavailable' : anchoring.startsWith('failed') ? 'degraded' : 'ok';
    return reply.code(database ? 200 : 503).send({ status, checks: { database: database ? 'ok' : 'unreachable', anchoring } });
  });
  app.get('/metrics', async (_request, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });
}

function anchoringCheck(anchorer: Anchorer | undefined): string {
  if (!anchorer) return 'off';
  try {
    const state = anchorer.state();
    if (state.status === 'failed') return `failed: ${state.error}`;
    if (state.status === 'retrying') return `retrying: ${state.error}`;
    return 'ok';
  } catch {
    return 'unknown';
  }
}
