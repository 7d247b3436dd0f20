// Meters (issue 23, docs/api.md "Meters"): named aggregations over leaf fields, per owner (the
// key's), in versions that each apply from a stated time. PUT needs the admin right, reading the
// read right; a meter's usage is answered in windows of the customer's time zone.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ACTION_PATTERN, MAX_ACTION_LENGTH, MAX_NAMESPACE_LENGTH, NAMESPACE_PATTERN } from '../../event/limits.ts';
import { parseRfc3339 } from '../../event/validate.ts';
import {
  AGGREGATIONS,
  checkMeterActions,
  checkMeterName,
  type Ledger,
  MAX_METER_ACTIONS,
  MAX_METER_ENTRIES,
  METER_GROUP_BY,
  METER_NAME_PATTERN,
  MeterError,
  type MeterVersion,
} from '../../ledger/index.ts';
import { checkTimeZone, WINDOWS } from '../../usage/time-zone.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { AUTH_ERRORS, COMMON_ERRORS, errorResponses } from '../schemas.ts';

/** Epoch ms (digits, or a JSON integer) or an RFC 3339 date-time; undefined when it is neither. */
function instantOf(v: string | number): number | undefined {
  const ms = typeof v === 'number' ? v : /^\d{1,16}$/.test(v) ? Number(v) : parseRfc3339(v);
  return ms !== undefined && Number.isSafeInteger(ms) ? ms : undefined;
}

const INSTANT_RULE = { rule: 'epoch_ms_or_rfc3339', message: 'must be epoch milliseconds or an RFC 3339 date-time' };
const instantQuery = z
  .string()
  .max(64)
  .transform((s, ctx) => {
    const ms = instantOf(s);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', params: INSTANT_RULE });
      return z.NEVER;
    }
    return ms;
  });

const NameParams = z.object({ name: z.string().max(256) });

const MeterBody = z.strictObject({
  aggregation: z.enum(AGGREGATIONS).describe('sum, max, min and latest are over units; unique_count counts distinct callers'),
  actions: z
    .array(z.string().max(MAX_ACTION_LENGTH).regex(ACTION_PATTERN))
    .min(1)
    .max(MAX_METER_ACTIONS)
    .optional()
    .describe('the actions it counts (omitted: every action)'),
  from: z
    .union([z.string().max(64), z.number().int()])
    .optional()
    .describe('when this version applies from: events with ts ≥ from (epoch ms or RFC 3339; default now)'),
  retroactive: z.boolean().optional().describe('required for a from in the past: the answers for that past change'),
});

const VersionSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  aggregation: z.enum(AGGREGATIONS),
  actions: z.array(z.string()).nullable().describe('null: every action'),
  from: z.string().describe('RFC 3339 (UTC): applies to events at or after this time, until the next version’s from'),
  from_ms: z.number().int(),
  created_at: z.string(),
  retroactive: z.boolean().describe('from is before the version was made: it changed answers for that past'),
});

const PutResponse = VersionSchema.extend({
  created: z.boolean().describe('false: the definition in force already was this one, nothing was stored'),
});

const UsageQuery = z.strictObject({
  namespace: z.string().max(MAX_NAMESPACE_LENGTH).regex(NAMESPACE_PATTERN),
  from: instantQuery,
  to: instantQuery,
  window: z.enum(WINDOWS).default('day'),
  tz: z.string().max(64).optional().describe('IANA time zone of the windows (default UTC)'),
  group_by: z.enum(METER_GROUP_BY).optional(),
});

const Value = z.union([z.number(), z.string()]).describe('exact: a decimal string beyond 2^53−1');
const UsageResponse = z.object({
  meter: z.string(),
  aggregation: z.enum(AGGREGATIONS),
  namespace: z.string(),
  tz: z.string(),
  window: z.enum(WINDOWS),
  from: z.string(),
  to: z.string(),
  group_by: z.enum(METER_GROUP_BY).optional(),
  windows: z.array(z.object({ start: z.string(), end: z.string(), value: Value, group: z.string().optional() })),
  total: Value.nullable().describe('the aggregation over the whole range (null: no event counted)'),
});

const shown = (v: MeterVersion) => ({
  name: v.name,
  version: v.version,
  aggregation: v.aggregation,
  actions: v.actions,
  from: new Date(v.from_ms).toISOString(),
  from_ms: v.from_ms,
  created_at: new Date(v.created_at).toISOString(),
  retroactive: v.from_ms < v.created_at,
});

/** A refused meter change or question as the API's error, naming the field and the rule. */
function apiErrorOf(e: unknown, badInput: 'invalid_body' | 'invalid_query'): unknown {
  if (!(e instanceof MeterError)) return e;
  const details = [{ path: e.field, rule: e.rule, message: e.message }];
  if (e.status === 404) return new ApiError('not_found', { thing: `meter ${e.message.replace(/^no meter /, '')}` });
  if (e.status === 409) return new ApiError('meter_conflict', { problem: e.message }, details);
  return new ApiError(badInput, { problem: e.message }, details);
}

export function meterRoutes(app: FastifyInstance, opts: { ledger: Ledger; now: () => number }): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const ledger = opts.ledger;

  typed.put(
    '/v1/meters/:name',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['meters'],
        summary: "Defines a meter of the key's owner, or a new version of it from a stated time",
        params: NameParams,
        body: MeterBody,
        response: {
          200: PutResponse,
          201: PutResponse,
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_body', 'unknown_field', 'malformed_json', 'meter_conflict'),
        },
      },
    },
    async (request, reply) => {
      const owner = principalOf(request).owner;
      const b = request.body;
      try {
        const name = checkMeterName(request.params.name);
        const fromMs = b.from === undefined ? undefined : instantOf(b.from);
        if (b.from !== undefined && fromMs === undefined) throw new MeterError('from', INSTANT_RULE.rule, `from ${INSTANT_RULE.message}`);
        const { version, created } = await ledger.meters.define(
          owner,
          name,
          {
            aggregation: b.aggregation,
            actions: checkMeterActions(b.actions),
            ...(fromMs !== undefined && { fromMs }),
            ...(b.retroactive !== undefined && { retroactive: b.retroactive }),
          },
          opts.now(),
        );
        reply.code(created ? 201 : 200);
        return { ...shown(version), created };
      } catch (e) {
        throw apiErrorOf(e, 'invalid_body');
      }
    },
  );

  typed.get(
    '/v1/meters',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['meters'],
        summary: "The key's owner's meters, each as its latest version",
        response: { 200: z.object({ meters: z.array(VersionSchema) }), ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS) },
      },
    },
    async (request) => ({ meters: (await ledger.meters.list(principalOf(request).owner)).map(shown) }),
  );

  typed.get(
    '/v1/meters/:name',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['meters'],
        summary: 'Every version of a meter, oldest first',
        params: NameParams,
        response: {
          200: z.object({ name: z.string(), versions: z.array(VersionSchema) }),
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'not_found'),
        },
      },
    },
    async (request) => {
      const name = request.params.name;
      const versions = METER_NAME_PATTERN.test(name) ? await ledger.meters.versions(principalOf(request).owner, name) : [];
      if (versions.length === 0) throw new ApiError('not_found', { thing: `meter ${JSON.stringify(name.slice(0, 64))}` });
      return { name, versions: versions.map(shown) };
    },
  );

  typed.get(
    '/v1/meters/:name/usage',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['meters'],
        summary: `A meter's value per window (and group) of a time zone over [from, to), and over the whole range; at most ${MAX_METER_ENTRIES} entries`,
        params: NameParams,
        querystring: UsageQuery,
        response: {
          200: UsageResponse,
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_query', 'namespace_forbidden', 'not_found'),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const q = request.query;
      const name = request.params.name;
      if (!METER_NAME_PATTERN.test(name)) throw new ApiError('not_found', { thing: `meter ${JSON.stringify(name.slice(0, 64))}` });
      if (!principal.allows(q.namespace))
        throw new ApiError('namespace_forbidden', { s: '', namespaces: `"${q.namespace}"`, allowed: principal.namespaces.join(', ') });
      if (q.from >= q.to)
        throw new ApiError('invalid_query', { problem: 'from must be before to (the range is [from, to))' }, [
          { path: 'from', rule: 'before_to', message: 'from must be before to' },
        ]);
      let tz = 'UTC';
      if (q.tz !== undefined) {
        try {
          tz = checkTimeZone(q.tz);
        } catch (e) {
          const message = (e as Error).message;
          throw new ApiError('invalid_query', { problem: message }, [{ path: 'tz', rule: 'iana_time_zone', message }]);
        }
      }
      try {
        return await ledger.meters.usage({
          owner: principal.owner,
          name,
          namespace: q.namespace,
          from: q.from,
          to: q.to,
          window: q.window,
          tz,
          ...(q.group_by && { groupBy: q.group_by }),
        });
      } catch (e) {
        throw apiErrorOf(e, 'invalid_query');
      }
    },
  );
}
