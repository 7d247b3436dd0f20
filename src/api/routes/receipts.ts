// Receipts and epochs. An event the key may not read is indistinguishable from a missing one.
import type { FastifyInstance } from 'fastify';
import type { EpochRecord, EventRecord, Ledger } from '../../ledger/index.ts';
import type { ReadEventRecord } from '../../ledger/event-record.ts';
import { LEAF_STRING_MAX } from '../../event/limits.ts';
import type { Anchor } from '../../receipt/format.ts';
import type { AnchorChain } from '../../chain/chain.ts';
import type { ReceiptReader } from '../../receipt/reader.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  AUTH_ERRORS,
  ChainEpochSchema,
  COMMON_ERRORS,
  decimal,
  EpochSchema,
  EpochsQuerySchema,
  EpochsResponseSchema,
  errorResponses,
  ReceiptSchema,
} from '../schemas.ts';

/** An epoch as the API shows it: the record without its ledger positions, and its anchor. */
export function epochJson(e: EpochRecord, anchor: Anchor | null) {
  return {
    epoch: e.epoch,
    root: e.root,
    size: e.size,
    first_ts_ms: e.first_ts_ms,
    last_ts_ms: e.last_ts_ms,
    sealed_at_ms: e.sealed_at_ms,
    anchor,
  };
}

const PROTECTED = { security: [{ bearer: [] }] };

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const KIND = z.enum(['event', 'void', 'amend']).describe('event: an ordinary event (leaf v1); void or amend: a correction (leaf v2)');
const receiptLink = (id: number) => `/v1/events/${id}/receipt`;

/** One version of an event's chain: what it says, and where its receipt is. */
const VersionSchema = z.object({
  id: z.number().int(),
  kind: KIND,
  request_id: z.string(),
  caller: z.string(),
  action: z.string(),
  units: z.number().int(),
  artifact_digest: z.string(),
  leaf_hash: hex64,
  corrects_id: z.number().int().optional().describe('a correction: the id of the version it replaces'),
  corrects: hex64.optional().describe('a correction: the leaf hash of the version it replaces'),
  receipt: z.string().describe('the path of its receipt (GET, same key)'),
});

export const EventViewSchema = z
  .object({
    id: z.number().int(),
    kind: KIND,
    namespace: z.string(),
    request_id: z.string(),
    caller: z.string(),
    action: z.string(),
    units: z.number().int(),
    artifact_digest: z.string(),
    ts_ms: z.number().int(),
    leaf_hash: hex64,
    receipt: z.string().describe('the path of its receipt (GET, same key)'),
    corrects_id: z.number().int().optional(),
    corrects: hex64.optional(),
    chain_id: z.number().int().describe("the original event's id: every version of it shares this"),
    corrected_by: z
      .object({ id: z.number().int(), kind: z.enum(['void', 'amend']) })
      .optional()
      .describe('set when this version was replaced'),
    head_id: z.number().int().describe('the current version of the chain (what totals count; a void head counts nothing)'),
    chain: z.array(VersionSchema).describe('every version, original first, each correcting the one before'),
  })
  .meta({ id: 'EventView' });

const EventByKeyQuerySchema = z
  .object({
    namespace: z.string().min(1).max(LEAF_STRING_MAX.namespace).describe('the namespace the event was recorded in'),
    request_id: z.string().min(1).max(LEAF_STRING_MAX.request_id).describe('its idempotency key'),
  })
  .strict();

const kindOf = (e: EventRecord) => e.kind ?? 'event';

function versionJson(e: EventRecord): z.infer<typeof VersionSchema> {
  const v: z.infer<typeof VersionSchema> = {
    id: e.id,
    kind: kindOf(e),
    request_id: e.request_id,
    caller: e.caller,
    action: e.action,
    units: e.units,
    artifact_digest: e.artifact_digest,
    leaf_hash: e.leaf_hash,
    receipt: receiptLink(e.id),
  };
  if (e.corrects_id !== undefined) v.corrects_id = e.corrects_id;
  if (e.corrects !== undefined) v.corrects = e.corrects;
  return v;
}

/** An event with its chain: every version in order, each with its receipt link. */
async function eventView(ledger: Ledger, row: ReadEventRecord): Promise<z.infer<typeof EventViewSchema>> {
  const chain = await ledger.events.chainOf(row.id);
  const versions = chain.length > 0 ? chain : [row];
  const view: z.infer<typeof EventViewSchema> = {
    id: row.id,
    kind: kindOf(row),
    namespace: row.namespace,
    request_id: row.request_id,
    caller: row.caller,
    action: row.action,
    units: row.units,
    artifact_digest: row.artifact_digest,
    ts_ms: row.ts_ms,
    leaf_hash: row.leaf_hash,
    receipt: receiptLink(row.id),
    chain_id: row.chain_id ?? row.id,
    head_id: versions.at(-1)!.id,
    chain: versions.map(versionJson),
  };
  if (row.corrects_id !== undefined) view.corrects_id = row.corrects_id;
  if (row.corrects !== undefined) view.corrects = row.corrects;
  if (row.corrected_by) view.corrected_by = { id: row.corrected_by.id, kind: row.corrected_by.kind };
  return view;
}
const READ_ERRORS = [...COMMON_ERRORS, ...AUTH_ERRORS] as const;

export function receiptRoutes(app: FastifyInstance, opts: { ledger: Ledger; receipts: ReceiptReader; chain?: AnchorChain }): void {
  const { receipts } = opts;
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.get(
    '/v1/events/:id/receipt',
    {
      config: { right: 'read' },
      schema: {
        ...PROTECTED,
        tags: ['receipts'],
        summary: "An event's receipt: its fields and the inclusion proof of its leaf (pending until its epoch is sealed)",
        params: z.object({ id: decimal('the event id (from POST /v1/events)') }),
        response: { 200: ReceiptSchema, ...errorResponses(...READ_ERRORS, 'not_found') },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { id } = request.params;
      const row = await receipts.event(id);
      if (!row || !principal.allows(row.namespace)) {
        throw new ApiError('not_found', { thing: `event ${id} that this key may read` });
      }
      return receipts.receipt(row);
    },
  );

  // Found by its idempotency key: the id a service knows for a call it made, without having kept
  // the id the ledger gave it. The namespace is checked first: another's is a plain 404.
  typed.get(
    '/v1/events',
    {
      config: { right: 'read' },
      schema: {
        ...PROTECTED,
        tags: ['events'],
        summary: 'An event found by its idempotency key (namespace and request_id), with its chain of corrections',
        querystring: EventByKeyQuerySchema,
        response: { 200: EventViewSchema, ...errorResponses(...READ_ERRORS, 'invalid_query', 'not_found') },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { namespace, request_id } = request.query;
      const notFound = () =>
        new ApiError('not_found', {
          thing: `event with request_id ${JSON.stringify(request_id)} in namespace ${JSON.stringify(namespace)} that this key may read`,
        });
      if (!principal.allows(namespace)) throw notFound();
      const row = await opts.ledger.events.byRequestId(namespace, request_id);
      if (!row) throw notFound();
      return eventView(opts.ledger, row);
    },
  );

  typed.get(
    '/v1/events/:id',
    {
      config: { right: 'read' },
      schema: {
        ...PROTECTED,
        tags: ['events'],
        summary: 'An event with its chain: every version (original, amendments, a void), each with its receipt link',
        params: z.object({ id: decimal('the event id (from POST /v1/events)') }),
        response: { 200: EventViewSchema, ...errorResponses(...READ_ERRORS, 'not_found') },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { id } = request.params;
      const row = await opts.ledger.events.get(id);
      if (!row || !principal.allows(row.namespace)) throw new ApiError('not_found', { thing: `event ${id} that this key may read` });
      return eventView(opts.ledger, row);
    },
  );

  typed.get(
    '/v1/epochs/:epoch',
    {
      config: { right: 'read' },
      schema: {
        ...PROTECTED,
        tags: ['receipts'],
        summary: 'A sealed epoch: its root, size and anchor',
        params: z.object({ epoch: decimal('the epoch number') }),
        response: { 200: EpochSchema, ...errorResponses(...READ_ERRORS, 'not_found') },
      },
    },
    async (request) => {
      const n = request.params.epoch;
      const row = await opts.ledger.epochs.get(n);
      if (!row) throw new ApiError('not_found', { thing: `sealed epoch ${n}` });
      return epochJson(row, await receipts.anchor(row.epoch));
    },
  );

  // The root and size the registry holds, read by this server: for the web page, which cannot
  // always reach a full node itself. The page labels it a server-side read.
  typed.get(
    '/v1/epochs/:epoch/chain',
    {
      config: { right: 'read' },
      schema: {
        ...PROTECTED,
        tags: ['receipts'],
        summary: 'The root and size the on-chain registry holds for an epoch, read by this server',
        params: z.object({ epoch: decimal('the epoch number') }),
        response: {
          200: ChainEpochSchema,
          ...errorResponses(...READ_ERRORS, 'not_found', 'anchoring_off', 'not_anchored', 'chain_unreachable'),
        },
      },
    },
    async (request) => {
      const n = request.params.epoch;
      if (!opts.chain) throw new ApiError('anchoring_off');
      let onChain;
      try {
        onChain = await opts.chain.readEpoch(n);
      } catch (err) {
        throw new ApiError('chain_unreachable', { reason: (err as Error).message });
      }
      if (!onChain) throw new ApiError('not_anchored', { epoch: n, registry: opts.chain.registryId });
      return {
        epoch: n,
        network: opts.chain.network,
        registry_id: opts.chain.registryId,
        root: onChain.root,
        size: onChain.size,
        read_by: 'server' as const,
      };
    },
  );

  // Newest first (order=desc), paged with before=: the web page shows the latest epochs.
  typed.get(
    '/v1/epochs',
    {
      config: { right: 'read' },
      schema: {
        ...PROTECTED,
        tags: ['receipts'],
        summary: 'Sealed epochs, oldest first (after=) or newest first (order=desc, before=)',
        querystring: EpochsQuerySchema,
        response: { 200: EpochsResponseSchema, ...errorResponses(...READ_ERRORS, 'invalid_query') },
      },
    },
    async (request) => {
      const { after = -1, before = Number.MAX_SAFE_INTEGER, limit = 100, order } = request.query;
      const desc = order === 'desc';
      const list = await opts.ledger.epochs.list({ after, before, limit, desc });
      const rows = await Promise.all(list.map(async (e) => epochJson(e, await receipts.anchor(e.epoch))));
      const more = rows.length === limit ? rows.at(-1)!.epoch : null;
      return desc ? { epochs: rows, next_before: more } : { epochs: rows, next_after: more };
    },
  );
}
