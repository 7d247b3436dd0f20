// The epoch log: its latest signed checkpoint, its origin and verifier key, and consistency
// proofs, readable without an API key (they reveal only epoch roots, sizes and times, which
// anchoring publishes anyway); and, behind the key, an event's proof bundle up to a checkpoint.
// Proofs are computed from the epoch headers (one leaf per epoch) read at the checkpoint's size.
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type EpochRecord, type Ledger, type StoredCheckpoint, epochLogTree, rootAt, withCosignatures } from '../../ledger/index.ts';
import { consistencyProof } from '../../merkle/consistency.ts';
import { equalBytes } from '../../merkle/proof.ts';
import { auditPath, memoryNodeReader, type Tree } from '../../merkle/tree.ts';
import type { ReceiptReader } from '../../receipt/reader.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import {
  AUTH_ERRORS,
  COMMON_ERRORS,
  ConsistencyQuerySchema,
  ConsistencySchema,
  decimal,
  errorResponses,
  EventProofSchema,
  LogSchema,
} from '../schemas.ts';

/** The public face of the log key: its name (the origin) and verifier key. */
export interface LogIdentity {
  origin: string;
  vkey: string;
}

export interface LogRouteOptions {
  ledger: Ledger;
  log?: LogIdentity;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

// A signed checkpoint never changes: the log at its size is read and hashed once per ledger, not
// on every proof request (O(epochs) each). Only the latest is kept; a new checkpoint replaces it.
const builtLogs = new WeakMap<Ledger, { size: number; root: Uint8Array; log: { epochs: EpochRecord[]; tree: Tree } }>();

/** Epochs 0 … size − 1 and their log tree, checked against the checkpoint's root (else a loud 500). */
async function logAt(
  ledger: Ledger,
  checkpoint: StoredCheckpoint,
  logger: FastifyBaseLogger,
): Promise<{ epochs: EpochRecord[]; tree: Tree }> {
  const built = builtLogs.get(ledger);
  if (built && built.size === checkpoint.size && equalBytes(built.root, checkpoint.root)) return built.log;
  const log = await readLogAt(ledger, checkpoint, logger);
  builtLogs.set(ledger, { size: checkpoint.size, root: checkpoint.root, log });
  return log;
}

async function readLogAt(
  ledger: Ledger,
  checkpoint: StoredCheckpoint,
  logger: FastifyBaseLogger,
): Promise<{ epochs: EpochRecord[]; tree: Tree }> {
  const epochs = await ledger.epochs.list({ after: -1, before: checkpoint.size, limit: checkpoint.size });
  const tree = epochLogTree(epochs);
  if (!equalBytes(rootAt(tree, checkpoint.size), checkpoint.root)) {
    logger.fatal(
      { size: checkpoint.size },
      'the stored epochs do not lead to the root of the latest signed checkpoint: the epoch log was changed',
    );
    throw new Error('the stored epochs do not lead to the root of the latest signed checkpoint');
  }
  return { epochs, tree };
}

/** The checkpoint's note with every witness cosignature stored for it (each verified when it was stored). */
async function cosignedNote(ledger: Ledger, checkpoint: StoredCheckpoint): Promise<string> {
  return withCosignatures(checkpoint.note, await ledger.cosignatures.forSize(checkpoint.size));
}

async function latest(opts: LogRouteOptions): Promise<StoredCheckpoint> {
  if (!opts.log) throw new ApiError('log_off');
  const checkpoint = await opts.ledger.epochs.checkpoint();
  if (!checkpoint) throw new ApiError('no_checkpoint');
  return checkpoint;
}

export function logRoutes(app: FastifyInstance, opts: LogRouteOptions): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.get(
    '/checkpoint',
    {
      schema: {
        tags: ['log'],
        summary:
          'The latest signed checkpoint of the epoch log (C2SP tlog-checkpoint, a signed note) with every witness cosignature collected, without an API key',
        response: {
          200: { content: { 'text/plain': { schema: z.string() } } },
          ...errorResponses(...COMMON_ERRORS, 'log_off', 'no_checkpoint'),
        },
      },
    },
    async (_request, reply) => {
      const checkpoint = await latest(opts);
      reply.type('text/plain; charset=utf-8');
      return cosignedNote(opts.ledger, checkpoint);
    },
  );

  typed.get(
    '/v1/log',
    {
      schema: {
        tags: ['log'],
        summary: "The epoch log's origin, verifier key and latest signed size, without an API key",
        response: { 200: LogSchema, ...errorResponses(...COMMON_ERRORS, 'log_off') },
      },
    },
    async () => {
      if (!opts.log) throw new ApiError('log_off');
      const checkpoint = await opts.ledger.epochs.checkpoint();
      return { origin: opts.log.origin, vkey: opts.log.vkey, size: checkpoint?.size ?? 0 };
    },
  );

  typed.get(
    '/v1/log/consistency',
    {
      schema: {
        tags: ['log'],
        summary: 'An RFC 9162 consistency proof between two sizes of the epoch log (up to the latest checkpoint), without an API key',
        querystring: ConsistencyQuerySchema,
        response: { 200: ConsistencySchema, ...errorResponses(...COMMON_ERRORS, 'invalid_query', 'log_off', 'no_checkpoint') },
      },
    },
    async (request) => {
      const { from, to } = request.query;
      const checkpoint = await latest(opts);
      if (from < 1 || from > to || to > checkpoint.size)
        throw new ApiError('invalid_query', {
          problem: `from and to must be sizes with 1 ≤ from ≤ to ≤ ${checkpoint.size} (the latest checkpoint), not from=${from} to=${to}`,
        });
      const { epochs, tree } = await logAt(opts.ledger, checkpoint, request.log);
      const sub = to === tree.size ? tree : epochLogTree(epochs.slice(0, to));
      return { from, to, hashes: consistencyProof(from, to, memoryNodeReader(sub)).map(hex) };
    },
  );
}

/** GET /v1/events/:id/proof: registered behind the API key (as the receipt it carries). */
export function eventProofRoute(app: FastifyInstance, opts: LogRouteOptions & { receipts: ReceiptReader }): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/v1/events/:id/proof',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['log'],
        summary: "An event's proof bundle: its receipt, its epoch header's inclusion proof in the epoch log, and the signed checkpoint",
        params: z.object({ id: decimal('the event id (from POST /v1/events)') }),
        response: {
          200: EventProofSchema,
          ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'not_found', 'log_off', 'not_in_log'),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { id } = request.params;
      const row = await opts.receipts.event(id);
      if (!row || !principal.allows(row.namespace)) throw new ApiError('not_found', { thing: `event ${id} that this key may read` });
      if (!opts.log) throw new ApiError('log_off');
      const receipt = await opts.receipts.receipt(row);
      if (receipt.epoch === null) throw new ApiError('not_in_log', { id, why: 'its epoch is not sealed' });
      const checkpoint = await opts.ledger.epochs.checkpoint();
      if (!checkpoint || checkpoint.size <= receipt.epoch)
        throw new ApiError('not_in_log', { id, why: `epoch ${receipt.epoch} is sealed after the latest checkpoint` });
      const { epochs, tree } = await logAt(opts.ledger, checkpoint, request.log);
      const e = epochs[receipt.epoch]!;
      return {
        receipt,
        epoch_header: { epoch: e.epoch, root: e.root, size: e.size, first_ts_ms: e.first_ts_ms, last_ts_ms: e.last_ts_ms },
        epoch_proof: {
          index: e.epoch,
          size: checkpoint.size,
          hashes: auditPath(e.epoch, checkpoint.size, memoryNodeReader(tree)).map(hex),
        },
        checkpoint: await cosignedNote(opts.ledger, checkpoint),
      };
    },
  );
}
