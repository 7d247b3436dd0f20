// Receipts and epochs. An event the key may not read is indistinguishable from a missing one.
import type { FastifyInstance } from 'fastify';
import type { EpochRecord, Ledger } from '../../ledger/index.ts';
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
      const row = await opts.ledger.events.get(id);
      if (!row || !principal.allows(row.namespace)) {
        throw new ApiError('not_found', { thing: `event ${id} that this key may read` });
      }
      return receipts.receipt(row);
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
