// GET /v1/usage: counts and unit sums over [from, to) for one namespace the key may read.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseRfc3339 } from '../../event/validate.ts';
import type { Ledger } from '../../ledger/index.ts';
import { GROUP_BY } from '../../ledger/index.ts';
import type { ReceiptReader } from '../../receipt/reader.ts';
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
  receipts: z.enum(['true', 'false']).optional(),
  limit: z.string().regex(/^\d{1,4}$/).transform(Number).pipe(z.number().int().min(1).max(1000)).optional(),
  cursor: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/).optional(),
  order: z.enum(['asc', 'desc']).optional(),
});

/** Where a page ends: the (ts, seq) position and the snapshot bound that fixes the totals. */
interface Cursor {
  ts: number;
  seq: number;
  max: number;
  /** Paging newest first (order=desc): a cursor keeps the order it was issued for. */
  desc?: boolean;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c.desc ? [c.ts, c.seq, c.max, 1] : [c.ts, c.seq, c.max])).toString('base64url');
}

function decodeCursor(s: string): Cursor | undefined {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && (v.length === 3 || (v.length === 4 && v[3] === 1)) && v.every((n) => Number.isSafeInteger(n))) return { ts: v[0], seq: v[1], max: v[2], desc: v.length === 4 };
  } catch {}
  return undefined;
}

export function usageRoutes(app: FastifyInstance, opts: { ledger: Ledger; receipts: ReceiptReader }): void {
  app.get('/v1/usage', async (request) => {
    const principal = principalOf(request);
    const parsed = usageQuery.safeParse(request.query, { reportInput: true });
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => {
        const path = i.code === 'unrecognized_keys' ? i.keys.join(',') : i.path.join('.');
        const rule =
          i.code === 'unrecognized_keys' ? 'unknown_parameter'
          : i.code === 'invalid_value' ? `one_of:${i.values.join('|')}`
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
    if (q.receipts !== 'true') {
      if (q.limit !== undefined || q.cursor !== undefined || q.order !== undefined) {
        throw new ApiError(400, 'invalid_query', 'limit, cursor and order page the receipts: add receipts=true', [{ path: q.limit !== undefined ? 'limit' : q.cursor !== undefined ? 'cursor' : 'order', rule: 'requires:receipts=true', message: 'only with receipts=true' }]);
      }
      return opts.ledger.usage.query({ namespace: q.namespace, from, to, groupBy: q.group_by });
    }

    // Receipts, paged. Every page carries the totals of the same snapshot (seq ≤ as_of_seq),
    // so the units summed over all pages equal the totals even while events keep arriving.
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (q.cursor !== undefined && !cursor) {
      throw new ApiError(400, 'invalid_query', 'cursor is not one this server issued; start again without it', [{ path: 'cursor', rule: 'issued_cursor', message: 'cursor must be a next_cursor value from a previous page' }]);
    }
    const desc = q.order === 'desc';
    if (cursor && cursor.desc !== desc) {
      throw new ApiError(400, 'invalid_query', `this cursor pages order=${cursor.desc ? 'desc' : 'asc'}: repeat the order it was issued with`, [{ path: 'cursor', rule: 'same_order', message: 'cursor must be used with the order it was issued for' }]);
    }
    const max = cursor?.max ?? (await opts.ledger.events.latestId());
    const limit = q.limit ?? 100;
    const totals = await opts.ledger.usage.query({ namespace: q.namespace, from, to, groupBy: q.group_by, asOf: max });
    // Newest first starts just below (to, 0): every seq is ≥ 1, so that is "ts < to".
    const start: [number, number] = cursor ? [cursor.ts, cursor.seq] : desc ? [to, 0] : [from, 0];
    const rows = await opts.ledger.events.page({ namespace: q.namespace, from, to, asOf: max, after: start, limit, desc });
    const last = rows.at(-1);
    return {
      ...totals,
      as_of_seq: max,
      events: await Promise.all(rows.map((row) => opts.receipts.receipt(row))),
      next_cursor: rows.length === limit && last ? encodeCursor({ ts: last.ts, seq: last.id, max, desc }) : null,
    };
  });
}
