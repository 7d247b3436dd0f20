// GET /v1/classification: the billable classification in force and its whole history, as a
// verifier needs it to recompute billable totals from receipts (classify each event's action at
// its ts_ms with the period in force then, sum the units of the billable ones).
import type { FastifyInstance } from 'fastify';
import { ACTION_CLASSES, effectiveHistory, periodAt, UNCONFIGURED } from '../../event/classification.ts';
import type { Ledger } from '../../ledger/index.ts';

export function classificationRoutes(app: FastifyInstance, opts: { ledger: Ledger; now: () => number }): void {
  app.get('/v1/classification', async () => {
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
  });
}
