// Limits (issue 25, docs/api.md "Limits"): quotas of the key's owner over a namespace's usage in
// a period, in versions that each apply from a stated time. Defining, listing, reading and
// deleting need the admin right; a check needs the read right (its answer discloses usage, which
// is what read guards; the record right alone discloses nothing).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ACTION_PATTERN, MAX_ACTION_LENGTH, MAX_NAMESPACE_LENGTH, NAMESPACE_PATTERN } from '../../event/limits.ts';
import { parseRfc3339 } from '../../event/validate.ts';
import {
  checkLimitId,
  checkLimitInput,
  type Ledger,
  LIMIT_ID_PATTERN,
  LimitError,
  type LimitVersion,
  MAX_METER_ACTIONS,
  MAX_SOFT_THRESHOLDS,
} from '../../ledger/index.ts';
import { alertKey } from '../../ledger/webhooks.ts';
import { CheckRounds, limitStatus, MAX_CHECK_ITEMS } from '../../limits/check.ts';
import { PERIODS } from '../../limits/period.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { AUTH_ERRORS, COMMON_ERRORS, errorResponses } from '../schemas.ts';

const IdParams = z.object({ id: z.string().max(256) });

const LimitBody = z.strictObject({
  namespace: z.string().max(MAX_NAMESPACE_LENGTH).regex(NAMESPACE_PATTERN),
  meter: z.string().max(64).optional().describe('count this meter (a sum or count meter of the owner); excludes actions and measure'),
  actions: z
    .array(z.string().max(MAX_ACTION_LENGTH).regex(ACTION_PATTERN))
    .min(1)
    .max(MAX_METER_ACTIONS)
    .optional()
    .describe('the actions counted (omitted: every action)'),
  measure: z.enum(['units', 'events']).optional().describe('what is counted of those actions (required without meter)'),
  period: z.enum(PERIODS).describe('day or month of tz, or total (never resets)'),
  tz: z.string().max(64).optional().describe('IANA time zone of the period (default UTC)'),
  hard: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional().describe('checks refuse work past this'),
  soft: z.array(z.number().int().min(1).max(100)).min(1).max(MAX_SOFT_THRESHOLDS).optional().describe('alert thresholds, percents of hard'),
  soft_units: z
    .array(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER))
    .min(1)
    .max(MAX_SOFT_THRESHOLDS)
    .optional()
    .describe('alert thresholds, absolute'),
  from: z
    .union([z.string().max(64), z.number().int()])
    .optional()
    .describe('when this version applies from (epoch ms or RFC 3339; default now)'),
  retroactive: z.boolean().optional().describe('required for a from in the past'),
});

const LimitSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  namespace: z.string(),
  meter: z.string().nullable(),
  actions: z.array(z.string()).nullable().describe('null: every action (or the meter’s)'),
  measure: z.enum(['units', 'events', 'meter']),
  period: z.enum(PERIODS),
  tz: z.string(),
  hard: z.number().int().nullable(),
  soft: z.array(z.number().int()).nullable(),
  soft_units: z.array(z.number().int()).nullable(),
  deleted: z.boolean(),
  from: z.string().describe('RFC 3339 (UTC): in force from this time, until the next version’s from'),
  from_ms: z.number().int(),
  created_at: z.string(),
});
const PutResponse = LimitSchema.extend({ created: z.boolean().describe('false: this definition was in force already, nothing stored') });

const CheckItemSchema = z.strictObject({
  namespace: z.string().max(MAX_NAMESPACE_LENGTH).regex(NAMESPACE_PATTERN),
  action: z.string().max(MAX_ACTION_LENGTH).regex(ACTION_PATTERN),
  units: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('what the work will record (default 1)'),
});
// One object (a union's error would name no field): one item, or `checks` alone.
const CheckBody = CheckItemSchema.partial({ namespace: true, action: true }).extend({
  checks: z.array(CheckItemSchema).min(1).max(MAX_CHECK_ITEMS).optional().describe(`a batch: at most ${MAX_CHECK_ITEMS} items`),
});
const Exact = z.union([z.number(), z.string()]).describe('exact: a decimal string beyond 2^53−1');
const CheckAnswerSchema = z.object({
  allowed: z.boolean(),
  limit_id: z.string().nullable().describe('the limit that decided; null: no limit with a hard value applies'),
  used: Exact.nullable(),
  remaining: Exact.nullable(),
  resets_at: z.string().nullable().describe('when the period ends (null: a total limit, or none)'),
  as_of: z.number().int().describe('the ledger position the usage is exact as of'),
});

const shown = (v: LimitVersion) => ({
  id: v.id,
  version: v.version,
  namespace: v.namespace,
  meter: v.meter,
  actions: v.actions,
  measure: v.measure,
  period: v.period,
  tz: v.tz,
  hard: v.hard,
  soft: v.soft,
  soft_units: v.soft_units,
  deleted: v.deleted,
  from: new Date(v.from_ms).toISOString(),
  from_ms: v.from_ms,
  created_at: new Date(v.created_at).toISOString(),
});

/** Epoch ms (digits, or a JSON integer) or an RFC 3339 date-time; undefined when it is neither. */
function instantOf(v: string | number): number | undefined {
  const ms = typeof v === 'number' ? v : /^\d{1,16}$/.test(v) ? Number(v) : parseRfc3339(v);
  return ms !== undefined && Number.isSafeInteger(ms) ? ms : undefined;
}

function apiErrorOf(e: unknown): unknown {
  if (!(e instanceof LimitError)) return e;
  const details = [{ path: e.field, rule: e.rule, message: e.message }];
  if (e.status === 404) return new ApiError('not_found', { thing: e.message.replace(/^no /, '') });
  if (e.status === 409) return new ApiError('limit_conflict', { problem: e.message }, details);
  return new ApiError('invalid_body', { problem: e.message }, details);
}

const notFound = (id: string) => new ApiError('not_found', { thing: `limit ${JSON.stringify(id.slice(0, 64))}` });

export function limitRoutes(app: FastifyInstance, opts: { ledger: Ledger; now: () => number }): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const ledger = opts.ledger;
  const rounds = new CheckRounds(ledger, opts.now);
  const forbidden = (namespace: string, allowed: string[]) =>
    new ApiError('namespace_forbidden', { s: '', namespaces: `"${namespace}"`, allowed: allowed.join(', ') });

  typed.put(
    '/v1/limits/:id',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['limits'],
        summary: "Defines a limit of the key's owner, or a new version of it from a stated time",
        params: IdParams,
        body: LimitBody,
        response: {
          200: PutResponse,
          201: PutResponse,
          ...errorResponses(
            ...COMMON_ERRORS,
            ...AUTH_ERRORS,
            'invalid_body',
            'unknown_field',
            'malformed_json',
            'namespace_forbidden',
            'limit_conflict',
          ),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const b = request.body;
      try {
        const id = checkLimitId(request.params.id);
        const input = checkLimitInput(b);
        if (!principal.allows(input.namespace)) throw forbidden(input.namespace, principal.namespaces);
        if (input.meter !== null) {
          const versions = await ledger.meters.versions(principal.owner, input.meter);
          if (versions.length === 0)
            throw new LimitError('meter', 'exists', `no meter ${input.meter} of this owner (PUT /v1/meters/${input.meter} first)`);
          const agg = versions[0]!.aggregation;
          if (agg !== 'sum' && agg !== 'count')
            throw new LimitError(
              'meter',
              'aggregation:sum|count',
              `meter ${input.meter} is a ${agg} meter; a limit counts a sum or count meter`,
            );
        }
        const fromMs = b.from === undefined ? undefined : instantOf(b.from);
        if (b.from !== undefined && fromMs === undefined)
          throw new LimitError('from', 'epoch_ms_or_rfc3339', 'from must be epoch milliseconds or an RFC 3339 date-time');
        const { version, created } = await ledger.limits.define(
          principal.owner,
          id,
          { ...input, ...(fromMs !== undefined && { fromMs }), ...(b.retroactive !== undefined && { retroactive: b.retroactive }) },
          opts.now(),
        );
        reply.code(created ? 201 : 200);
        return { ...shown(version), created };
      } catch (e) {
        throw apiErrorOf(e);
      }
    },
  );

  typed.get(
    '/v1/limits',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['limits'],
        summary: "The key's owner's limits (one namespace's, if given), each as its latest version",
        querystring: z.strictObject({ namespace: z.string().max(MAX_NAMESPACE_LENGTH).regex(NAMESPACE_PATTERN).optional() }),
        response: {
          200: z.object({ limits: z.array(LimitSchema) }),
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_query'),
        },
      },
    },
    async (request) => ({ limits: (await ledger.limits.list(principalOf(request).owner, request.query.namespace)).map(shown) }),
  );

  // The customer's view (the web page's): what each limit of a namespace has used this period.
  // The read right, as usage: it shows the limits' definitions only as far as a check would.
  typed.get(
    '/v1/limits/usage',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['limits'],
        summary: "Each limit of the key's owner in force on a namespace, with its usage in the current period and the thresholds reached",
        querystring: z.strictObject({ namespace: z.string().max(MAX_NAMESPACE_LENGTH).regex(NAMESPACE_PATTERN) }),
        response: {
          200: z.object({
            namespace: z.string(),
            as_of: z.number().int().describe('the ledger position every used is exact as of'),
            limits: z.array(
              z.object({
                id: z.string(),
                version: z.number().int(),
                meter: z.string().nullable(),
                actions: z.array(z.string()).nullable(),
                measure: z.enum(['units', 'events', 'meter']),
                period: z.enum(PERIODS),
                tz: z.string(),
                from: z.string(),
                to: z.string().nullable().describe('when the period ends (null: a total limit)'),
                hard: z.number().int().nullable(),
                used: Exact,
                remaining: Exact.nullable(),
                thresholds: z.array(
                  z.object({
                    name: z.string(),
                    kind: z.enum(['hard', 'soft']),
                    at: z.number().int(),
                    percent: z.number().int().optional(),
                    crossed: z.boolean(),
                    alerted_at: z
                      .string()
                      .nullable()
                      .describe('when the crossing was seen and its alert queued, this period (null: not yet)'),
                    alerts: z
                      .object({ sent_to: z.number().int(), delivered: z.number().int() })
                      .nullable()
                      .describe("the alert's messages: to how many webhooks, how many delivered so far"),
                  }),
                ),
              }),
            ),
          }),
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_query', 'namespace_forbidden'),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const namespace = request.query.namespace;
      if (!principal.allows(namespace)) throw forbidden(namespace, principal.namespaces);
      const status = await limitStatus(ledger, principal.owner, namespace, opts.now());
      // When each threshold was crossed and what was sent: the alerts the leader raised this period.
      const keyOf = (l: (typeof status.limits)[number], t: string) => alertKey(principal.owner, l.id, t, Date.parse(l.from));
      const alerts = await ledger.webhooks.alertsOf(status.limits.flatMap((l) => l.thresholds.map((t) => keyOf(l, t.name))));
      const limits = status.limits.map((l) => ({
        ...l,
        thresholds: l.thresholds.map((t) => {
          const a = alerts.get(keyOf(l, t.name));
          return {
            ...t,
            alerted_at: a ? new Date(a.created_at).toISOString() : null,
            alerts: a ? { sent_to: a.messages, delivered: a.delivered } : null,
          };
        }),
      }));
      return { namespace, as_of: status.as_of, limits };
    },
  );

  typed.get(
    '/v1/limits/:id',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['limits'],
        summary: 'Every version of a limit, oldest first (a deletion is a version too)',
        params: IdParams,
        response: {
          200: z.object({ id: z.string(), versions: z.array(LimitSchema) }),
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'not_found'),
        },
      },
    },
    async (request) => {
      const id = request.params.id;
      const versions = LIMIT_ID_PATTERN.test(id) ? await ledger.limits.versions(principalOf(request).owner, id) : [];
      if (versions.length === 0) throw notFound(id);
      return { id, versions: versions.map(shown) };
    },
  );

  typed.delete(
    '/v1/limits/:id',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['limits'],
        summary: 'Deletes a limit from now on (a deletion version; its history is kept)',
        params: IdParams,
        response: { 200: LimitSchema, ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'not_found') },
      },
    },
    async (request) => {
      const id = request.params.id;
      const v = LIMIT_ID_PATTERN.test(id) ? await ledger.limits.remove(principalOf(request).owner, id, opts.now()) : null;
      if (!v) throw notFound(id);
      return shown(v);
    },
  );

  typed.post(
    '/v1/limits/check',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['limits'],
        summary: `Whether work may run under the owner's hard limits: one item, or {"checks": [...]} of at most ${MAX_CHECK_ITEMS}; exact as of the ledger position as_of`,
        body: CheckBody,
        response: {
          200: z.union([CheckAnswerSchema, z.object({ results: z.array(CheckAnswerSchema) })]),
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_body', 'unknown_field', 'malformed_json', 'namespace_forbidden'),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const body = request.body;
      const single = body.namespace !== undefined || body.action !== undefined || body.units !== undefined;
      const bad = (path: string, rule: string, message: string) =>
        new ApiError('invalid_body', { problem: message }, [{ path, rule, message }]);
      if (body.checks && single)
        throw bad('checks', 'excludes:namespace|action|units', 'send one item ({namespace, action, units}) or {"checks": [...]}, not both');
      if (!body.checks && body.namespace === undefined)
        throw bad('namespace', 'required', 'namespace is required (or send {"checks": [...]})');
      if (!body.checks && body.action === undefined) throw bad('action', 'required', 'action is required (or send {"checks": [...]})');
      const items = body.checks ?? [
        { namespace: body.namespace!, action: body.action!, ...(body.units !== undefined && { units: body.units }) },
      ];
      for (const item of items) if (!principal.allows(item.namespace)) throw forbidden(item.namespace, principal.namespaces);
      const answers = await rounds.check(principal.owner, items);
      return body.checks ? { results: answers } : answers[0]!;
    },
  );
}
