// Health and metrics, outside /v1 and without a key (bind to loopback or a private network).
import type { FastifyInstance } from 'fastify';
import type { LeadershipState, Ledger, Role } from '../../ledger/index.ts';
import type { Metrics } from '../metrics.ts';
import { z } from 'zod';
import { HealthSchema, type AnchoringHealthStatus } from '../schemas.ts';
import type { WitnessHealth } from '../../witness/submitter.ts';

/** What the service reports beside the database: anchoring, this instance's role, who leads. */
export interface HealthReport {
  /** `off` (not configured), `follower` (another instance anchors), `ok`, `retrying`, `failed`, or `unknown`; error says why for the last three. */
  anchoring: { status: AnchoringHealthStatus; error: string | null };
  /** `off` (this instance does not seal in the background), `ok`, or `stopped` (for good, until a restart: error says why). */
  sealing: { status: 'off' | 'ok' | 'stopped'; error: string | null };
  role: Role;
  leadership: LeadershipState;
  /** With `serve --witness`: each witness's state (this instance submits only while it leads). */
  witnesses?: WitnessHealth[];
}

export function operationsRoutes(
  app: FastifyInstance,
  opts: { ledger: Ledger; metrics: Metrics; health: () => Promise<HealthReport> },
): void {
  // 503 only when the database is gone. A stopped anchorer degrades the service but ingest and
  // receipts still work, so it is reported (and alerted on via receipts_anchoring_failed), not
  // turned into an outage.
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Health: 200 while the database answers (anchoring trouble is reported, not an outage), 503 when it does not',
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_request, reply) => {
      const database = await opts.ledger.healthy();
      const { anchoring, sealing, role, leadership, witnesses } = await opts.health();
      // A witness that refuses or disagrees needs a person; one that is down only retries.
      const witnessTrouble = witnesses?.some((w) => w.status === 'refused' || w.status === 'conflict') ?? false;
      const status = !database
        ? 'unavailable'
        : anchoring.status === 'failed' || sealing.status === 'stopped' || witnessTrouble
          ? 'degraded'
          : 'ok';
      return reply.code(database ? 200 : 503).send({
        status,
        role,
        // checks.anchoring keeps its one-string form ("failed: <why>") for existing readers; anchoring is the structured one.
        checks: {
          database: database ? 'ok' : 'unreachable',
          anchoring: anchoring.error === null ? anchoring.status : `${anchoring.status}: ${anchoring.error}`,
        },
        anchoring,
        sealing,
        ledger: { engine: opts.ledger.engine, term: leadership.term, leader: leadership.holder, election_error: leadership.error },
        ...(witnesses && { witnesses }),
      });
    },
  );
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        response: { 200: { content: { 'text/plain': { schema: z.string() } } } },
      },
    },
    async (_request, reply) => {
      reply.type(opts.metrics.registry.contentType);
      return opts.metrics.registry.metrics();
    },
  );
}
