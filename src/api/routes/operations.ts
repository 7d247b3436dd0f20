// Health and metrics, outside /v1 and without a key (bind to loopback or a private network).
import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../../ledger/index.ts';
import type { Metrics } from '../metrics.ts';

export function operationsRoutes(app: FastifyInstance, opts: { ledger: Ledger; metrics: Metrics }): void {
  app.get('/healthz', async (_request, reply) => {
    const database = opts.ledger.healthy();
    return reply.code(database ? 200 : 503).send({ status: database ? 'ok' : 'unavailable', checks: { database: database ? 'ok' : 'unreachable' } });
  });
  app.get('/metrics', async (_request, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });
}
