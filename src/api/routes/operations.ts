// Health and metrics, outside /v1 and without a key (bind to loopback or a private network).
import type { FastifyInstance } from 'fastify';
import type { Ledger, Role } from '../../ledger/index.ts';
import type { Metrics } from '../metrics.ts';
import { z } from 'zod';
import { HealthSchema } from '../schemas.ts';

/** What the service reports beside the database: anchoring, and this instance's role. */
export interface HealthReport {
  /** `off`, `ok`, `retrying: …`, `failed: …`, or `follower` (another instance anchors). */
  anchoring: string;
  role: Role;
  /** Engine and, on PostgreSQL, the leader's fencing term and name. */
  ledger: { engine: string; term?: number; leader?: string | null };
}

export function operationsRoutes(app: FastifyInstance, opts: { ledger: Ledger; metrics: Metrics; health: () => Promise<HealthReport> }): void {
  // 503 only when the database is gone. A stopped anchorer degrades the service but ingest and
  // receipts still work, so it is reported (and alerted on via receipts_anchoring_failed), not
  // turned into an outage.
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Health: 200 while the database answers (anchoring trouble is reported, not an outage), 503 when it does not', response: { 200: HealthSchema, 503: HealthSchema } } }, async (_request, reply) => {
    const database = await opts.ledger.healthy();
    const report = await opts.health();
    const status = !database ? 'unavailable' : report.anchoring.startsWith('failed') ? 'degraded' : 'ok';
    return reply.code(database ? 200 : 503).send({
      status,
      role: report.role,
      checks: { database: database ? 'ok' : 'unreachable', anchoring: report.anchoring },
      ledger: report.ledger,
    });
  });
  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics', response: { 200: { content: { 'text/plain': { schema: z.string() } } } } } }, async (_request, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });
}
