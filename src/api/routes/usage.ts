// GET /v1/usage: counts and unit sums over [from, to) for one namespace the key may read.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseRfc3339 } from '../../event/validate.ts';
import type { Ledger } from '../../ledger/index.ts';
import { GROUP_BY } from '../../ledger/usage.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';

const instant = z.string().transform((s, ctx) => {
  const ms = /^\d+$/.test(s) ? Number(s) : parseRfc3339(s);
  if (ms === undefined || !Number.isSafeInteger(ms)) {
    ctx.addIssue({ code: 'custom', params: { rule: 'epoch_ms_or_rfc3339' }, message: 'must be epoch milliseconds or an RFC 3339 date-time' });
    return z.NEVER;
  }
  return ms;
});

const usageQuery = z.strictObject({
  namespace: z.string().min(1).max(128),
  from: instant.optional(),
  to: instant.optional(),
  group_by: z.enum(GROUP_BY).default('action'),
});

export function usageRoutes(app: FastifyInstance, opts: { ledger: Ledger }): void {
  app.get('/v1/usage', async (request) => {
    const principal = principalOf(request);
    const parsed = usageQuery.safeParse(request.query, { reportInput: true });
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => {
        const path = i.code === 'unrecognized_keys' ? i.keys.join(',') : i.path.join('.');
        const rule =
          i.code === 'unrecognized_keys' ? 'unknown_parameter'
          : i.code === 'invalid_value' ? `one_of:${GROUP_BY.join('|')}`
          : i.code === 'custom' ? String((i.params as { rule?: string })?.rule)
          : i.input === undefined ? 'required'
          : i.code;
        return { path, rule, message: `${path}: ${i.message}` };
      });
      throw new ApiError(400, 'invalid_query', details.map((d) => d.message).join('; '), details);
    }
    const q = parsed.data;
    const from = q.from ?? 0;
    const to = q.to ?? Number.MAX_SAFE_INTEGER;
    if (from >= to) {
      throw new ApiError(400, 'invalid_query', 'from must be before to (the range is [from, to))', [{ path: 'from', rule: 'before_to', message: 'from must be before to' }]);
    }
    if (!principal.allows(q.namespace)) {
      throw new ApiError(403, 'namespace_forbidden', `this key may not read namespace "${q.namespace}"`);
    }
    return opts.ledger.usage.query({ namespace: q.namespace, from, to, groupBy: q.group_by });
  });
}
