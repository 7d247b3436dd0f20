// GET /v1/classification: the billable classification in force and its whole history, as a
// verifier needs it to recompute billable totals from receipts (classify each event's action at
// its ts_ms with the period in force then, sum the units of the billable ones).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ACTION_CLASSES, effectiveHistory, periodAt, UNCONFIGURED } from '../../event/classification.ts';
import type { Ledger } from '../../ledger/index.ts';
import { AUTH_ERRORS, COMMON_ERRORS, errorResponses } from '../schemas.ts';

const ActionClassSchema = z.enum(ACTION_CLASSES);
const PeriodSchema = z.object({
  from_ms: z.number().int().min(0).describe('start of the period: events with ts_ms ≥ this (until the next period) are classified by it'),
  billable: z.array(z.string()).readonly(),
  non_billable: z.array(z.string()).readonly(),
  other: ActionClassSchema.describe('the class of any action in neither list'),
});
const ClassificationSchema = z
  .object({
    in_force: PeriodSchema,
    history: z.array(PeriodSchema),
    scheduled: z.array(PeriodSchema).optional(),
    configured: z.boolean(),
    classes: z.array(ActionClassSchema).readonly(),
    default_when_unconfigured: PeriodSchema,
    rule: z.string(),
  })
  .describe('The billable classification: the period in force now and every period since the first');

export function classificationRoutes(app: FastifyInstance, opts: { ledger: Ledger; now: () => number }): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/classification',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['usage'],
        summary: 'The billable classification in force and its history, to recompute billable totals from receipts',
        response: { 200: ClassificationSchema, ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS) },
      },
    },
    async () => {
      const stored = await opts.ledger.classification.history();
      const history = effectiveHistory(stored);
      const now = opts.now();
      const scheduled = stored.filter((p) => p.from_ms > now);
      return {
        in_force: periodAt(now, history),
        history,
        ...(scheduled.length > 0 && { scheduled }),
        configured: stored.length > 0,
        classes: ACTION_CLASSES,
        /** Before the first configured period (and on a ledger with none), every action is billable. */
        default_when_unconfigured: UNCONFIGURED,
        rule:
          'An event is classified by its action under the period in force at its ts_ms: the last period with from_ms <= ts_ms. ' +
          'An action listed in billable is billable, one listed in non_billable is non_billable, any other has the class `other`. ' +
          'billable_units in /v1/usage is the sum of units of billable events.',
      };
    },
  );
}
