// Webhooks (issue 25, docs/api.md "Webhooks"): where an owner's limit alerts are sent. Every route
// needs the admin right; a webhook belongs to the key's owner and its namespace patterns must lie
// within the key's. The secret is answered once, by the POST that made it, and never again.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  type Ledger,
  MAX_WEBHOOK_NAMESPACES,
  MAX_WEBHOOK_URL_LENGTH,
  type Webhook,
  WEBHOOK_ID_PATTERN,
  WebhookError,
} from '../../ledger/index.ts';
import { checkWebhookTarget, type Resolver, type UrlPolicy } from '../../webhooks/url.ts';
import { NAMESPACE_PATTERN_RULE } from '../../ledger/api-keys.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { AUTH_ERRORS, COMMON_ERRORS, errorResponses } from '../schemas.ts';

export interface WebhookRouteOptions {
  ledger: Ledger;
  now: () => number;
  policy: UrlPolicy;
  /** How a webhook's host is resolved when it is created (tests stand one in). */
  resolver?: Resolver;
}

const CreateBody = z.strictObject({
  url: z.string().max(MAX_WEBHOOK_URL_LENGTH).describe('http(s) URL of a public address, without credentials'),
  namespaces: z
    .array(z.string().max(128).regex(NAMESPACE_PATTERN_RULE))
    .min(1)
    .max(MAX_WEBHOOK_NAMESPACES)
    .describe('namespace patterns (`*` matches any run) whose alerts it receives; each within the key’s own'),
});

const WebhookSchema = z.object({
  id: z.string(),
  url: z.string(),
  namespaces: z.array(z.string()),
  created_at: z.string().describe('RFC 3339 (UTC)'),
});

const IdParams = z.object({ id: z.string().max(64) });

const DeliveriesQuery = z.strictObject({
  limit: z
    .string()
    .regex(/^\d{1,4}$/)
    .transform(Number)
    .pipe(z.number().min(1).max(1000))
    .optional()
    .describe('at most this many messages and attempts, 1 to 1,000 (default 100)'),
});

const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const shown = (w: Webhook) => ({ id: w.id, url: w.url, namespaces: w.namespaces, created_at: new Date(w.created_at_ms).toISOString() });

function apiErrorOf(e: unknown): unknown {
  if (!(e instanceof WebhookError)) return e;
  const details = [{ path: e.field, rule: e.rule, message: e.message }];
  if (e.status === 409) return new ApiError('webhook_conflict', { problem: e.message }, details);
  return new ApiError('invalid_body', { problem: e.message }, details);
}

const notFound = (id: string) => new ApiError('not_found', { thing: `webhook ${JSON.stringify(id.slice(0, 64))}` });

export function webhookRoutes(app: FastifyInstance, opts: WebhookRouteOptions): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { ledger } = opts;

  typed.post(
    '/v1/webhooks',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['webhooks'],
        summary: "Adds a webhook of the key's owner: limit alerts of its namespaces are POSTed there, signed (Standard Webhooks)",
        body: CreateBody,
        response: {
          201: WebhookSchema.extend({
            secret: z.string().describe('whsec_…: verifies the webhook-signature of every message; shown this once'),
          }),
          ...errorResponses(
            ...COMMON_ERRORS,
            ...AUTH_ERRORS,
            'invalid_body',
            'unknown_field',
            'malformed_json',
            'namespace_forbidden',
            'webhook_conflict',
          ),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { url, namespaces } = request.body;
      // A pattern with stars is within the key's when a key pattern matches it taken literally:
      // each of its stars then falls in a run one of the key's stars covers.
      const outside = namespaces.filter((p) => !principal.allows(p));
      if (outside.length > 0)
        throw new ApiError(
          'namespace_forbidden',
          {
            s: outside.length > 1 ? 's' : '',
            namespaces: outside.map((n) => `"${n.slice(0, 128)}"`).join(', '),
            allowed: principal.namespaces.join(', '),
          },
          outside.map((n) => ({
            path: `namespaces.${namespaces.indexOf(n)}`,
            rule: 'namespace_forbidden',
            message: 'a webhook takes only namespaces its key may touch',
          })),
        );
      try {
        await checkWebhookTarget(url, opts.policy, opts.resolver);
        const { webhook, secret } = await ledger.webhooks.create(principal.owner, { url, namespaces }, opts.now());
        reply.code(201);
        return { ...shown(webhook), secret };
      } catch (e) {
        throw apiErrorOf(e);
      }
    },
  );

  typed.get(
    '/v1/webhooks',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['webhooks'],
        summary: "The key's owner's webhooks, oldest first (never a secret)",
        response: { 200: z.object({ webhooks: z.array(WebhookSchema) }), ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS) },
      },
    },
    async (request) => ({ webhooks: (await ledger.webhooks.list(principalOf(request).owner)).map(shown) }),
  );

  typed.delete(
    '/v1/webhooks/:id',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['webhooks'],
        summary: 'Deletes a webhook with its messages and attempt log; messages not yet delivered are discarded (counted)',
        params: IdParams,
        response: {
          200: z.object({ id: z.string(), deleted: z.literal(true), discarded: z.number().int().describe('messages never delivered') }),
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'not_found'),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const done = WEBHOOK_ID_PATTERN.test(id) ? await ledger.webhooks.delete(id, principalOf(request).owner) : null;
      if (!done) throw notFound(id);
      return { id, deleted: true as const, discarded: done.discarded };
    },
  );

  typed.get(
    '/v1/webhooks/:id/deliveries',
    {
      config: { right: 'admin' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['webhooks'],
        summary: "A webhook's messages (one per alert: its webhook-id and state) and every delivery attempt, newest first",
        params: IdParams,
        querystring: DeliveriesQuery,
        response: {
          200: z.object({
            webhook_id: z.string(),
            messages: z.array(
              z.object({
                id: z.string().describe('the webhook-id header, the same on every attempt'),
                alert: z.string().describe('the alert key: owner, limit, threshold and period start'),
                state: z.enum(['pending', 'delivered', 'gave_up']),
                attempts: z.number().int(),
                created_at: z.string(),
                next_attempt_at: z.string().nullable(),
                delivered_at: z.string().nullable(),
                gave_up_at: z.string().nullable(),
              }),
            ),
            attempts: z.array(
              z.object({
                message_id: z.string(),
                attempt: z.number().int(),
                at: z.string(),
                ms: z.number().int(),
                status: z.number().int().nullable().describe("the receiver's HTTP status; null when none came"),
                error: z.string().nullable(),
                outcome: z.enum(['delivered', 'retry', 'gave_up']),
              }),
            ),
          }),
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_query', 'not_found'),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = WEBHOOK_ID_PATTERN.test(id)
        ? await ledger.webhooks.deliveries(id, principalOf(request).owner, request.query.limit ?? 100)
        : null;
      if (!found) throw notFound(id);
      return {
        webhook_id: id,
        messages: found.messages.map((m) => ({
          id: m.id,
          alert: m.alert_key,
          state: m.state,
          attempts: m.attempts,
          created_at: at(m.created_at_ms)!,
          next_attempt_at: at(m.next_at_ms),
          delivered_at: at(m.delivered_at_ms),
          gave_up_at: at(m.gave_up_at_ms),
        })),
        attempts: found.attempts.map((a) => ({
          message_id: a.message_id,
          attempt: a.attempt,
          at: at(a.at_ms)!,
          ms: a.ms,
          status: a.status,
          error: a.error,
          outcome: a.outcome,
        })),
      };
    },
  );
}
