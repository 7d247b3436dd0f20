// Receipts and epochs. An event the key may not read is indistinguishable from a missing one.
import type { FastifyInstance } from 'fastify';
import type { EpochRecord, Ledger } from '../../ledger/index.ts';
import type { Anchor } from '../../receipt/format.ts';
import type { AnchorChain } from '../../chain/chain.ts';
import type { ReceiptReader } from '../../receipt/reader.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';

/** An epoch as the API shows it: the record without its ledger positions, and its anchor. */
export function epochJson(e: EpochRecord, anchor: Anchor | null) {
  return { epoch: e.epoch, root: e.root, size: e.size, first_ts_ms: e.first_ts_ms, last_ts_ms: e.last_ts_ms, sealed_at_ms: e.sealed_at_ms, anchor };
}

const nonNegative = (s: string) => (/^\d{1,15}$/.test(s) ? Number(s) : undefined);

export function receiptRoutes(app: FastifyInstance, opts: { ledger: Ledger; receipts: ReceiptReader; chain?: AnchorChain }): void {
  const { receipts } = opts;

  app.get<{ Params: { id: string } }>('/v1/events/:id/receipt', async (request) => {
    const principal = principalOf(request);
    const id = nonNegative(request.params.id);
    const row = id === undefined ? undefined : await opts.ledger.events.get(id);
    if (!row || !principal.allows(row.namespace)) {
      throw new ApiError('not_found', { thing: `event ${request.params.id} that this key may read` });
    }
    return receipts.receipt(row);
  });

  app.get<{ Params: { epoch: string } }>('/v1/epochs/:epoch', async (request) => {
    const n = nonNegative(request.params.epoch);
    const row = n === undefined ? undefined : await opts.ledger.epochs.get(n);
    if (!row) throw new ApiError('not_found', { thing: `sealed epoch ${request.params.epoch}` });
    return epochJson(row, await receipts.anchor(row.epoch));
  });

  // The root and size the registry holds, read by this server: for the web page, which cannot
  // always reach a full node itself. The page labels it a server-side read.
  app.get<{ Params: { epoch: string } }>('/v1/epochs/:epoch/chain', async (request) => {
    const n = nonNegative(request.params.epoch);
    if (!opts.chain) throw new ApiError('anchoring_off');
    if (n === undefined) throw new ApiError('not_found', { thing: `epoch ${request.params.epoch}` });
    let onChain;
    try {
      onChain = await opts.chain.readEpoch(n);
    } catch (err) {
      throw new ApiError('chain_unreachable', { reason: (err as Error).message });
    }
    if (!onChain) throw new ApiError('not_anchored', { epoch: n, registry: opts.chain.registryId });
    return { epoch: n, network: opts.chain.network, registry_id: opts.chain.registryId, root: onChain.root, size: onChain.size, read_by: 'server' };
  });

  // Newest first (order=desc), paged with before=: the web page shows the latest epochs.
  app.get<{ Querystring: Record<string, string> }>('/v1/epochs', async (request) => {
    const { after, before, limit, order, ...rest } = request.query;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) {
      throw new ApiError('invalid_query', { problem: `unknown parameter ${unknown.join(', ')}` }, unknown.map((k) => ({ path: k, rule: 'unknown_parameter', message: `${k} is not a parameter of /v1/epochs` })));
    }
    const afterN = after === undefined ? -1 : nonNegative(after);
    const limitN = limit === undefined ? 100 : nonNegative(limit);
    const beforeN = before === undefined ? Number.MAX_SAFE_INTEGER : nonNegative(before);
    if (afterN === undefined) throw new ApiError('invalid_query', { problem: 'after must be an epoch number' }, [{ path: 'after', rule: 'type:integer', message: 'after must be a non-negative integer' }]);
    if (beforeN === undefined) throw new ApiError('invalid_query', { problem: 'before must be an epoch number' }, [{ path: 'before', rule: 'type:integer', message: 'before must be a non-negative integer' }]);
    if (order !== undefined && order !== 'asc' && order !== 'desc') throw new ApiError('invalid_query', { problem: 'order must be asc or desc' }, [{ path: 'order', rule: 'one_of:asc|desc', message: 'order must be asc (oldest first, the default) or desc (newest first)' }]);
    if (limitN === undefined || limitN < 1 || limitN > 1000) throw new ApiError('invalid_query', { problem: 'limit must be 1 to 1000' }, [{ path: 'limit', rule: limitN === undefined ? 'type:integer' : limitN < 1 ? 'min:1' : 'max:1000', message: 'limit must be an integer from 1 to 1000' }]);
    const desc = order === 'desc';
    const list = await opts.ledger.epochs.list({ after: afterN, before: beforeN, limit: limitN, desc });
    const rows = await Promise.all(list.map(async (e) => epochJson(e, await receipts.anchor(e.epoch))));
    const more = rows.length === limitN ? rows.at(-1)!.epoch : null;
    return desc ? { epochs: rows, next_before: more } : { epochs: rows, next_after: more };
  });
}
