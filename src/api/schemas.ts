// The API's shapes, in zod: routes declare their params, query strings, bodies and responses
// with these, fastify validates the input with them (validation.ts), and the OpenAPI document
// (openapi.ts) is generated from them. Input schemas are strict: an unknown parameter is an error.
import { z } from 'zod';
import { HEX64, HEX64_ANY_CASE_OR_EMPTY } from '../encoding/hex.ts';
import {
  ACTION_PATTERN,
  LEAF_STRING_MAX,
  MAX_EVENTS_PER_REQUEST,
  MAX_METADATA_BYTES,
  MAX_METADATA_DEPTH,
  MAX_SOURCE_LENGTH,
  MAX_TS_TEXT_LENGTH,
  MAX_UNITS,
  NAMESPACE_PATTERN,
} from '../event/limits.ts';
import { ERROR_CODES, type ErrorCode } from './error-codes.ts';

const hex64 = z.string().regex(HEX64).describe('32 bytes as 64 lowercase hex characters');

export const FieldErrorSchema = z
  .object({
    path: z.string().describe('the field, e.g. `events[3].units` or a query parameter'),
    rule: z
      .string()
      .describe('the rule it broke, `name` or `name:argument`, e.g. `required`, `max_length:128`, `min:1`, `one_of:asc|desc`'),
    message: z.string().describe('a sentence for a person'),
  })
  .meta({ id: 'FieldError' });

const CODES = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(CODES).describe('stable: switch on this'),
      message: z.string().describe('what went wrong and what to do next; may change'),
      details: z.array(FieldErrorSchema),
    }),
  })
  .meta({ id: 'Error' });

/** The declared error responses of a route: one entry per status, listing its codes. */
export function errorResponses(...codes: ErrorCode[]): Record<number, z.ZodType> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ERROR_CODES[code].status, [...(byStatus.get(ERROR_CODES[code].status) ?? []), code]);
  const out: Record<number, z.ZodType> = {};
  for (const [status, list] of byStatus) {
    const example = list[0]!;
    out[status] = ErrorBodySchema.describe(list.map((c) => `\`${c}\`: ${ERROR_CODES[c].summary}`).join(' ')).meta({
      examples: [{ error: { code: example, message: ERROR_CODES[example].template.replace(/\{[a-z_]+\}/g, '…'), details: [] } }],
    });
  }
  return out;
}

/** Codes any route can answer with (body limits, parsing, overload, a fault). */
export const COMMON_ERRORS: ErrorCode[] = ['bad_request', 'internal', 'ledger_unreachable'];
/** Codes of every route behind the API key (right_missing: the key lacks the route's right). */
export const AUTH_ERRORS: ErrorCode[] = ['unauthorized', 'right_missing', 'busy'];

/** A non-negative integer in a query string or path (at most 15 digits: exact as a number). */
export const decimal = (what: string) =>
  z
    .string()
    .transform((s, ctx) => {
      if (!/^\d{1,15}$/.test(s)) {
        ctx.addIssue({ code: 'custom', params: { rule: 'type:integer', message: 'must be a non-negative integer' } });
        return z.NEVER;
      }
      return Number(s);
    })
    .meta({ type: 'string', pattern: '^\\d{1,15}$', description: what });

// ---- Events ----

export const EventInSchema = z
  .object({
    request_id: z.string().min(1).max(LEAF_STRING_MAX.request_id).describe('the idempotency key, unique per namespace forever'),
    namespace: z.string().min(1).max(LEAF_STRING_MAX.namespace).regex(NAMESPACE_PATTERN).describe('allowed by the key'),
    action: z.string().min(1).max(LEAF_STRING_MAX.action).regex(ACTION_PATTERN),
    caller: z.string().min(1).max(LEAF_STRING_MAX.caller),
    units: z.number().int().min(0).max(MAX_UNITS).optional().describe('default 1'),
    artifact_digest: z.string().regex(HEX64_ANY_CASE_OR_EMPTY).optional().describe('a SHA-256 digest, stored lowercase'),
    ts: z
      .union([z.number().int().min(0), z.string().max(MAX_TS_TEXT_LENGTH)])
      .optional()
      .describe('epoch ms or RFC 3339; default: the received time'),
    source: z.string().min(1).max(MAX_SOURCE_LENGTH).optional(),
    metadata: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        `a JSON object, at most ${MAX_METADATA_BYTES} bytes serialized and ${MAX_METADATA_DEPTH} levels deep; credentials are removed`,
      ),
  })
  .strict()
  .meta({
    id: 'Event',
    examples: [{ request_id: 'req-42', namespace: 'acme/prod', action: 'recall', caller: 'agent-7', units: 3 }],
  });

export const EventsBodySchema = z
  .union([EventInSchema, z.object({ events: z.array(EventInSchema).max(MAX_EVENTS_PER_REQUEST) }).strict()])
  .describe('One event, or {"events": [...]} of up to 1,000. Each event is validated on its own: one bad event never fails the others.');

const eventErrors = z.array(FieldErrorSchema);
export const EventResultSchema = z
  .union([
    z.object({
      status: z.literal('created'),
      id: z.number().int(),
      leaf_hash: hex64,
      request_id: z.string(),
      redacted: z.array(z.string()).optional(),
    }),
    z.object({
      status: z.literal('duplicate'),
      id: z.number().int(),
      leaf_hash: hex64,
      request_id: z.string(),
      redacted: z.array(z.string()).optional(),
    }),
    z.object({ status: z.literal('conflict'), request_id: z.string(), id: z.number().int(), errors: eventErrors }),
    z.object({ status: z.literal('rejected'), request_id: z.string().optional(), errors: eventErrors }),
  ])
  .meta({ id: 'EventResult' });

export const EventsResponseSchema = z
  .object({ results: z.array(EventResultSchema).describe('one per event, in order') })
  .meta({ examples: [{ results: [{ status: 'created', id: 1, leaf_hash: 'ab'.repeat(32), request_id: 'req-42' }] }] });

// ---- Receipts and epochs ----

export const AnchorSchema = z
  .object({
    network: z.string(),
    package_id: z.string(),
    registry_id: z.string(),
    tx_digest: z.string().nullable(),
    checkpoint: z.string().nullable(),
  })
  .meta({ id: 'Anchor' });

export const ReceiptSchema = z
  .object({
    version: z.union([z.literal(1), z.literal(2)]).describe('the leaf version: 1 an ordinary event, 2 a correction (void or amend)'),
    id: z.number().int().optional(),
    status: z.enum(['pending', 'sealed', 'anchored']),
    event: z.object({
      namespace: z.string(),
      request_id: z.string(),
      caller: z.string(),
      action: z.string(),
      units: z.number().int(),
      artifact_digest: z.string(),
      ts_ms: z.number().int(),
      kind: z.enum(['void', 'amend']).optional().describe('receipt v2 only: what the correction does'),
      corrects: hex64.optional().describe('receipt v2 only: the leaf hash of the version it replaces'),
    }),
    leaf_hash: hex64,
    epoch: z.number().int().nullable(),
    leaf_index: z.number().int().nullable(),
    tree_size: z.number().int().nullable(),
    proof: z.array(hex64).nullable(),
    root: hex64.nullable(),
    anchor: AnchorSchema.nullable(),
    corrected_by: z
      .object({ id: z.number().int(), kind: z.enum(['void', 'amend']) })
      .optional()
      .describe('only when this version has been replaced: the event that voids or amends it (a label, not part of the leaf)'),
  })
  .meta({
    id: 'Receipt',
    description:
      'Receipt v1 (an ordinary event) or v2 (a correction): the event fields and the inclusion proof of its leaf (null while pending). Verify with `receipts verify` or `verifyReceipt`.',
  });

export const EpochSchema = z
  .object({
    epoch: z.number().int(),
    root: hex64,
    size: z.number().int(),
    first_ts_ms: z.number().int().nullable(),
    last_ts_ms: z.number().int().nullable(),
    sealed_at_ms: z.number().int(),
    anchor: AnchorSchema.nullable(),
  })
  .meta({ id: 'Epoch' });

// ---- The epoch log ----

export const LogSchema = z
  .object({
    origin: z.string().describe("the log's origin: the log key's name, the first line of every checkpoint"),
    vkey: z.string().describe('the verifier key of the log key (name+hex8+base64), to check checkpoint signatures with'),
    size: z.number().int().describe('epochs in the latest signed checkpoint (0: none signed yet)'),
  })
  .meta({ id: 'Log' });

export const ConsistencyQuerySchema = z
  .object({
    from: decimal('the smaller log size, at least 1'),
    to: decimal('the larger log size, at most the latest checkpoint size'),
  })
  .strict();

export const ConsistencySchema = z
  .object({
    from: z.number().int(),
    to: z.number().int(),
    hashes: z.array(hex64).describe('the RFC 9162 consistency proof from size `from` to size `to` (empty when equal)'),
  })
  .meta({ id: 'Consistency' });

export const EventProofSchema = z
  .object({
    receipt: ReceiptSchema,
    epoch_header: z.object({
      epoch: z.number().int(),
      root: hex64,
      size: z.number().int(),
      first_ts_ms: z.number().int(),
      last_ts_ms: z.number().int(),
    }),
    epoch_proof: z
      .object({ index: z.number().int(), size: z.number().int(), hashes: z.array(hex64) })
      .describe("the RFC 9162 inclusion proof of the epoch header's leaf (epoch_leaf_hash) in the epoch log of the checkpoint's size"),
    checkpoint: z.string().describe('the signed checkpoint note (C2SP tlog-checkpoint) the proof leads to'),
  })
  .meta({
    id: 'EventProof',
    description:
      "Everything to verify an event offline: its receipt (leaf → epoch root), the epoch header's inclusion in the epoch log, and the signed checkpoint of that log.",
  });

export const EpochsResponseSchema = z.union([
  z.object({ epochs: z.array(EpochSchema), next_after: z.number().int().nullable() }),
  z.object({ epochs: z.array(EpochSchema), next_before: z.number().int().nullable() }),
]);

export const ChainEpochSchema = z.object({
  epoch: z.number().int(),
  network: z.string(),
  registry_id: z.string(),
  root: hex64,
  size: z.number().int(),
  read_by: z.literal('server'),
});

export const EpochsQuerySchema = z
  .object({
    after: decimal('the last epoch of the previous page (oldest first)').optional(),
    before: decimal('the last epoch of the previous page (newest first)').optional(),
    limit: decimal('epochs per page, 1 to 1000 (default 100)').pipe(z.number().min(1).max(1000)).optional(),
    order: z.enum(['asc', 'desc']).optional().describe('asc: oldest first (default); desc: newest first'),
  })
  .strict();

// ---- Usage ----

const units = z.union([z.number().int(), z.string().regex(/^\d+$/)]).describe('exact: a number up to 2^53−1, beyond that a decimal string');
const billable = {
  billable_events: z
    .number()
    .int()
    .optional()
    .describe(
      'events whose action was billable at their ts_ms, with units above 0 (a refused request, recorded with 0, is never a billable event)',
    ),
  billable_units: units.optional().describe('units of those events'),
};
const UsageGroupSchema = z.object({ key: z.string(), events: z.number().int(), units, ...billable });
const UsageTotalsSchema = z.object({ events: z.number().int(), units, ...billable });

export const UsageResponseSchema = z
  .object({
    namespace: z.string().optional(),
    namespaces: z.array(z.string()).optional(),
    from: z.number().int(),
    to: z.number().int(),
    group_by: z.string(),
    tz: z.string().optional().describe('the time zone of the hour, day and month groups, when not UTC'),
    groups: z.array(UsageGroupSchema),
    totals: UsageTotalsSchema,
    by_namespace: z.array(z.object({ namespace: z.string(), groups: z.array(UsageGroupSchema), totals: UsageTotalsSchema })).optional(),
    as_of_seq: z.number().int().optional().describe('the snapshot bound (event ids at or below it) of every page of this query'),
    events: z.array(ReceiptSchema).optional(),
    next_cursor: z
      .string()
      .nullable()
      .optional()
      .describe('pass as cursor for the next page (of groups, or with receipts=true of receipts); null on the last'),
    groups_next_cursor: z
      .string()
      .nullable()
      .optional()
      .describe(
        'with receipts=true: where the groups continue past the first 1,000 (a cursor for the same query without receipts=true); null when they are all here',
      ),
  })
  .meta({ id: 'Usage' });

// ---- Operations ----

export const ANCHORING_HEALTH = ['off', 'follower', 'ok', 'retrying', 'failed', 'unknown'] as const;
export type AnchoringHealthStatus = (typeof ANCHORING_HEALTH)[number];

export const HealthSchema = z.object({
  status: z.enum(['ok', 'degraded', 'unavailable']),
  role: z.string(),
  checks: z.object({
    database: z.enum(['ok', 'unreachable']),
    anchoring: z.string().describe('anchoring.status, followed by ": " and anchoring.error when there is one'),
  }),
  anchoring: z.object({
    status: z
      .enum(ANCHORING_HEALTH)
      .describe('off: not configured; follower: another instance anchors; unknown: its state could not be read'),
    error: z.string().nullable().describe('why anchoring is retrying, failed or unknown'),
  }),
  sealing: z.object({
    status: z
      .enum(['off', 'ok', 'stopped'])
      .describe(
        'off: this instance does not seal in the background; stopped: sealing halted for good (the epoch log disagrees with its last signed checkpoint) until a restart',
      ),
    error: z.string().nullable().describe('why sealing stopped'),
  }),
  ledger: z.looseObject({
    engine: z.string(),
    term: z.number().int().nullable().describe('PostgreSQL: the leader fencing term (null on SQLite, which has no election)'),
    leader: z
      .string()
      .nullable()
      .describe('who leads now: the instance holding the lock (PostgreSQL) or this process (SQLite); null when nobody does'),
    election_error: z
      .string()
      .nullable()
      .describe("why this instance's last campaign or heartbeat failed (PostgreSQL); null when it did not"),
  }),
  witnesses: z
    .array(
      z.object({
        url: z.string(),
        vkey: z.string().describe("the witness's cosigner verifier key (type 0x04)"),
        status: z
          .enum(['pending', 'ok', 'unreachable', 'refused', 'conflict'])
          .describe('unreachable: down or slow, retried; refused: a 4xx, retried; conflict: it holds a checkpoint this log cannot extend'),
        cosigned_size: z.number().int().nullable().describe('the largest checkpoint size it cosigned, stored here'),
        error: z.string().nullable(),
      }),
    )
    .optional()
    .describe('with serve --witness: each witness, as this instance last saw it'),
});
