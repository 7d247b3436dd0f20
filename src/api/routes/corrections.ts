// Corrections (issue 24, docs/api.md "Corrections"): void or amend a recorded event. Each is a new
// event with a leaf v2 that names the exact version it replaces; the original stays in its epoch.
//   POST /v1/events/:id/void    { request_id, reason? }
//   POST /v1/events/:id/amend   { request_id, reason?, units?, caller?, action?, artifact_digest? }
//   POST /v1/corrections        one { kind, namespace, corrects_request_id, request_id, … } or
//                               { corrections: [...] } of up to 1,000, one result per item
// All need the `correct` right; the key must also cover the event's namespace.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { FieldError } from '../../event/field-errors.ts';
import {
  ACTION_PATTERN,
  MAX_ACTION_LENGTH,
  MAX_CALLER_LENGTH,
  MAX_EVENTS_PER_REQUEST,
  MAX_NAMESPACE_LENGTH,
  MAX_REQUEST_ID_LENGTH,
  MAX_UNITS,
  NAMESPACE_PATTERN,
} from '../../event/limits.ts';
import type { CorrectionResult, CorrectionToWrite, Ledger } from '../../ledger/index.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { AUTH_ERRORS, COMMON_ERRORS, errorResponses } from '../schemas.ts';

/** Longest reason kept (in metadata, never in the leaf). */
export const MAX_REASON_LENGTH = 1024;

const Changes = {
  units: z.number().int().min(0).max(MAX_UNITS).optional().describe('new units'),
  caller: z.string().min(1).max(MAX_CALLER_LENGTH).optional().describe('new caller'),
  action: z.string().min(1).max(MAX_ACTION_LENGTH).regex(ACTION_PATTERN).optional().describe('new action'),
  artifact_digest: z
    .string()
    .regex(/^([0-9a-fA-F]{64})?$/)
    .optional()
    .describe('new artifact digest: 64 hex (stored lowercase, as ingest does), or "" for none'),
};
const Common = {
  request_id: z.string().min(1).max(MAX_REQUEST_ID_LENGTH).describe("the correction's own idempotency key"),
  reason: z.string().max(MAX_REASON_LENGTH).optional().describe('kept in metadata ({"reason": …}), not in the leaf'),
};

const IdParams = z.object({
  id: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/)
    .transform(Number)
    .describe('the event id'),
});
const VoidBody = z.strictObject(Common);
const AmendBody = z.strictObject({ ...Common, ...Changes });
const CorrectionItem = z.strictObject({
  kind: z.enum(['void', 'amend']),
  namespace: z.string().min(1).max(MAX_NAMESPACE_LENGTH).regex(NAMESPACE_PATTERN),
  corrects_request_id: z.string().min(1).max(MAX_REQUEST_ID_LENGTH).describe('the request id of the version it replaces'),
  ...Common,
  ...Changes,
});
const CorrectionsBody = z.union([
  CorrectionItem,
  z.strictObject({ corrections: z.array(CorrectionItem).min(1).max(MAX_EVENTS_PER_REQUEST) }),
]);

const Created = z.object({
  status: z.enum(['created', 'duplicate']),
  id: z.number().int(),
  request_id: z.string(),
  kind: z.enum(['void', 'amend']),
  leaf_hash: z.string().describe('leaf v2 hash (64 hex)'),
  corrects_id: z.number().int().describe('the id of the version it replaces'),
  chain_id: z.number().int().describe("the original event's id"),
  receipt: z.string().describe('where its receipt is, once sealed'),
});
const ItemResult = z.union([
  Created,
  z.object({
    status: z.enum(['conflict', 'rejected', 'already_corrected', 'correction_window_closed', 'not_found']),
    request_id: z.string(),
    id: z.number().int().optional(),
    head_id: z.number().int().optional().describe('already_corrected: the head of the chain, the only version that may be corrected'),
    errors: z.array(z.object({ path: z.string(), rule: z.string(), message: z.string() })),
  }),
]);

type Changes = {
  units?: number | undefined;
  caller?: string | undefined;
  action?: string | undefined;
  artifact_digest?: string | undefined;
};
const CHANGE_FIELDS = ['units', 'caller', 'action', 'artifact_digest'] as const;
const hasChanges = (b: Changes) => CHANGE_FIELDS.some((f) => b[f] !== undefined);

function changesOf(b: Changes): NonNullable<CorrectionToWrite['changes']> {
  const c: NonNullable<CorrectionToWrite['changes']> = {};
  for (const f of CHANGE_FIELDS) if (b[f] !== undefined) (c as Record<string, unknown>)[f] = b[f];
  return c;
}

/** An amendment must change something: the fields it may change, named. */
const NOTHING_TO_AMEND: FieldError = {
  path: 'units',
  rule: 'required',
  message: 'an amendment changes at least one of units, caller, action, artifact_digest',
};

export interface CorrectionRouteOptions {
  ledger: Ledger;
  now: () => number;
  /** Event times older than this (ms) can no longer be corrected (default: the accepted event age). */
  windowMs: number;
  /** The service's action allow-list: an amendment may not bring in an action ingest refuses. */
  actions?: ReadonlySet<string> | undefined;
}

export function correctionRoutes(app: FastifyInstance, opts: CorrectionRouteOptions): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { ledger } = opts;
  const errors = errorResponses(
    ...COMMON_ERRORS,
    ...AUTH_ERRORS,
    'invalid_body',
    'unknown_field',
    'malformed_json',
    'not_found',
    'namespace_forbidden',
    'already_corrected',
    'request_id_conflict',
    'correction_window_closed',
    'ledger_unavailable',
  );

  const one = async (
    request: Parameters<typeof principalOf>[0],
    id: number,
    kind: 'void' | 'amend',
    b: Changes & { request_id: string; reason?: string | undefined },
  ) => {
    const principal = principalOf(request);
    if (kind === 'amend' && !hasChanges(b)) {
      throw new ApiError('invalid_body', { problem: NOTHING_TO_AMEND.message }, [NOTHING_TO_AMEND]);
    }
    const now = opts.now();
    const [r] = await ledger.events.correct([
      {
        kind,
        target: { id },
        request_id: b.request_id,
        ...(kind === 'amend' && { changes: changesOf(b) }),
        ...(b.reason !== undefined && { reason: b.reason }),
        owner: principal.owner,
        keyId: principal.keyId,
        notBeforeMs: now - opts.windowMs,
        receivedAtMs: now,
        allows: (ns) => principal.allows(ns),
        ...(opts.actions && { actions: opts.actions }),
      },
    ]);
    if (r!.status === 'forbidden')
      throw new ApiError('namespace_forbidden', { s: '', namespaces: r!.namespace, allowed: principal.namespaces.join(', ') });
    const shown = resultOf(r!, kind, b.request_id, opts.windowMs);
    if ('errors' in shown) throw errorOf(r!, id, b.request_id, shown.errors);
    return shown;
  };

  for (const kind of ['void', 'amend'] as const) {
    typed.post(
      `/v1/events/:id/${kind}`,
      {
        config: { right: 'correct' },
        schema: {
          security: [{ bearer: [] }],
          tags: ['corrections'],
          summary: kind === 'void' ? 'Voids an event: it no longer counts' : 'Amends an event: a new version replaces it in totals',
          description:
            'Corrects the head of the event’s chain (the event itself, or its latest amendment) with a new event whose leaf (v2) names the leaf hash of the version it replaces. 201 created, 200 for a retry of the same request_id. 409 already_corrected names the head when the id is not the head (or the chain ends in a void); 422 correction_window_closed past the correction window.',
          params: IdParams,
          body: kind === 'void' ? VoidBody : AmendBody,
          response: { 200: Created, 201: Created, ...errors },
        },
      },
      async (request, reply) => {
        const r = await one(request, request.params.id, kind, request.body as Changes & { request_id: string; reason?: string });
        reply.code(r.status === 'created' ? 201 : 200);
        return r;
      },
    );
  }

  typed.post(
    '/v1/corrections',
    {
      config: { right: 'correct' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['corrections'],
        summary: 'Voids or amends events named by their request id: one, or {"corrections": [...]} of up to 1,000',
        description:
          'One result per item, in order, as ingest answers: created, duplicate (a retry), conflict (the request_id holds something else), rejected (a field breaks a rule, or the key may not write the namespace), already_corrected (head_id names the head), correction_window_closed, not_found. One item never fails another.',
        body: CorrectionsBody,
        response: { 200: z.object({ results: z.array(ItemResult) }), ...errors },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const items = 'corrections' in request.body ? request.body.corrections : [request.body];
      const now = opts.now();
      const results: Array<z.infer<typeof ItemResult>> = new Array(items.length);
      const toWrite: CorrectionToWrite[] = [];
      const slots: number[] = [];
      items.forEach((b, i) => {
        if (!principal.allows(b.namespace)) {
          results[i] = {
            status: 'rejected',
            request_id: b.request_id,
            errors: [
              {
                path: 'namespace',
                rule: 'namespace_forbidden',
                message: `this key may not write namespace "${b.namespace}"; it allows ${principal.namespaces.join(', ')}`,
              },
            ],
          };
          return;
        }
        if (b.kind === 'amend' && !hasChanges(b)) {
          results[i] = { status: 'rejected', request_id: b.request_id, errors: [NOTHING_TO_AMEND] };
          return;
        }
        if (b.kind === 'void' && hasChanges(b)) {
          const f = CHANGE_FIELDS.find((x) => b[x] !== undefined)!;
          results[i] = {
            status: 'rejected',
            request_id: b.request_id,
            errors: [{ path: f, rule: 'requires:kind=amend', message: `${f} is only for an amendment; a void keeps the replaced values` }],
          };
          return;
        }
        slots.push(i);
        toWrite.push({
          kind: b.kind,
          target: { namespace: b.namespace, request_id: b.corrects_request_id },
          request_id: b.request_id,
          ...(b.kind === 'amend' && { changes: changesOf(b) }),
          ...(b.reason !== undefined && { reason: b.reason }),
          owner: principal.owner,
          keyId: principal.keyId,
          notBeforeMs: now - opts.windowMs,
          receivedAtMs: now,
          ...(opts.actions && { actions: opts.actions }),
        });
      });
      const written = toWrite.length > 0 ? await ledger.events.correct(toWrite) : [];
      written.forEach((r, j) => {
        const i = slots[j]!;
        results[i] = resultOf(r, toWrite[j]!.kind, toWrite[j]!.request_id, opts.windowMs);
      });
      return { results };
    },
  );
}

/** A ledger answer as the API's per-item result. */
function resultOf(r: CorrectionResult, kind: 'void' | 'amend', requestId: string, windowMs: number): z.infer<typeof ItemResult> {
  switch (r.status) {
    case 'created':
    case 'duplicate':
      return {
        status: r.status,
        id: r.id,
        request_id: requestId,
        kind,
        leaf_hash: r.leaf_hash,
        corrects_id: r.corrects_id,
        chain_id: r.chain_id,
        receipt: `/v1/events/${r.id}/receipt`,
      };
    case 'conflict':
      return {
        status: 'conflict',
        request_id: requestId,
        id: r.id,
        errors: r.differs.map((f) => ({
          path: f,
          rule: 'same_as_recorded',
          message: `request_id "${requestId}" was already recorded (event ${r.id}) with a different ${f}; nothing was changed`,
        })),
      };
    case 'already_corrected':
      return {
        status: 'already_corrected',
        request_id: requestId,
        id: r.id,
        head_id: r.head_id,
        errors: [
          {
            path: 'id',
            rule: 'chain_head',
            message:
              r.head_kind === 'void'
                ? `event ${r.id}'s chain ends in void ${r.head_id}: nothing after a void can be corrected`
                : `event ${r.id} has been corrected; correct the head of its chain, event ${r.head_id}`,
          },
        ],
      };
    case 'window_closed':
      return {
        status: 'correction_window_closed',
        request_id: requestId,
        id: r.id,
        errors: [
          {
            path: 'id',
            rule: `max_age_ms:${windowMs}`,
            message: `event ${r.id} happened at ${new Date(r.ts_ms).toISOString()}, before the correction window of ${Math.round(windowMs / 86_400_000)} days`,
          },
        ],
      };
    case 'not_found':
      return {
        status: 'not_found',
        request_id: requestId,
        errors: [{ path: 'id', rule: 'exists', message: 'no such event of this key’s owner' }],
      };
    case 'forbidden':
      return {
        status: 'rejected',
        request_id: requestId,
        errors: [{ path: 'namespace', rule: 'namespace_forbidden', message: `this key may not write namespace "${r.namespace}"` }],
      };
    case 'invalid':
      return {
        status: 'rejected',
        request_id: requestId,
        errors: r.errors,
      };
  }
}

/** A single-event route's refusal as an API error. */
function errorOf(r: CorrectionResult, id: number, requestId: string, details: FieldError[]): ApiError {
  switch (r.status) {
    case 'conflict':
      return new ApiError('request_id_conflict', { request_id: requestId, id: r.id }, details);
    case 'already_corrected':
      return new ApiError('already_corrected', { id, head: r.head_id, kind: r.head_kind }, details);
    case 'window_closed':
      return new ApiError('correction_window_closed', { id, ts: new Date(r.ts_ms).toISOString() }, details);
    case 'not_found':
      return new ApiError('not_found', { thing: `event ${id}` });
    case 'invalid':
      return new ApiError('invalid_body', { problem: details.map((d) => d.message).join('; ') }, details);
    default:
      return new ApiError('internal');
  }
}
