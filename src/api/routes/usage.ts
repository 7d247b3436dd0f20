// GET /v1/usage: counts and unit sums over [from, to) for one namespace the key may read, or
// for several at once (namespace=a,b or namespace=a&namespace=b): per namespace and overall.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NAMESPACE_PATTERN, parseRfc3339 } from '../../event/validate.ts';
import type { Ledger } from '../../ledger/index.ts';
import { GROUP_BY, type UsageGroup, type UsageResult, type Units } from '../../ledger/index.ts';
import type { ReceiptReader } from '../../receipt/reader.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { FieldError } from '../../event/field-errors.ts';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { AUTH_ERRORS, COMMON_ERRORS, decimal, errorResponses, UsageResponseSchema } from '../schemas.ts';

const instant = z.string().transform((s, ctx) => {
  const ms = /^\d+$/.test(s) ? Number(s) : parseRfc3339(s);
  if (ms === undefined || !Number.isSafeInteger(ms)) {
    ctx.addIssue({ code: 'custom', params: { rule: 'epoch_ms_or_rfc3339', message: 'must be epoch milliseconds or an RFC 3339 date-time' } });
    return z.NEVER;
  }
  return ms;
});

/** Most namespaces one request may sum (each is one indexed query). */
export const MAX_NAMESPACES = 100;
const MAX_NAMESPACE_LENGTH = 128;

const usageQuery = z.strictObject({
  // Checked by namespacesOf: a list, each in the namespace alphabet.
  namespace: z.unknown().meta({ type: 'string', description: 'one namespace, or several as namespace=a,b (or repeated)' }),
  from: instant.optional(),
  to: instant.optional(),
  group_by: z.enum(GROUP_BY).default('action'),
  receipts: z.enum(['true', 'false']).optional(),
  limit: decimal('receipts per page, 1 to 1000 (default 100)').pipe(z.number().min(1).max(1000)).optional(),
  cursor: z
    .string()
    .refine((s) => /^[A-Za-z0-9_-]{1,200}$/.test(s), { params: { rule: 'issued_cursor', message: 'must be a next_cursor value from a previous page' } })
    .optional()
    .describe('next_cursor of the previous page'),
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
  app.withTypeProvider<ZodTypeProvider>().get('/v1/usage', {
    schema: {
      security: [{ bearer: [] }],
      tags: ['usage'],
      summary: 'Counts and unit sums over [from, to) per group, for one namespace or several (namespace=a,b); with receipts=true, one namespace\'s events and their receipts, paged',
      querystring: usageQuery,
      response: { 200: UsageResponseSchema, ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_query', 'namespace_forbidden') },
    },
  }, async (request) => {
    const principal = principalOf(request);
    const q = request.query;
    const details: FieldError[] = [];
    const namespaces = namespacesOf(q.namespace, details);
    if (typeof namespaces === 'undefined') {
      throw new ApiError('invalid_query', { problem: details.map((d) => d.message).join('; ') }, details);
    }
    const from = q.from ?? 0;
    const to = q.to ?? Number.MAX_SAFE_INTEGER;
    if (from >= to) {
      throw new ApiError('invalid_query', { problem: 'from must be before to (the range is [from, to))' }, [{ path: 'from', rule: 'before_to', message: 'from must be before to' }]);
    }
    const forbidden = namespaces.filter((n) => !principal.allows(n));
    if (forbidden.length > 0) {
      throw new ApiError('namespace_forbidden', { s: forbidden.length > 1 ? 's' : '', namespaces: forbidden.map((n) => `"${n}"`).join(', '), allowed: principal.namespaces.join(', ') });
    }
    if (namespaces.length > 1) {
      if (q.receipts !== undefined || q.limit !== undefined || q.cursor !== undefined || q.order !== undefined) {
        const path = q.receipts !== undefined ? 'receipts' : q.limit !== undefined ? 'limit' : q.cursor !== undefined ? 'cursor' : 'order';
        throw new ApiError('invalid_query', { problem: 'receipts are paged one namespace at a time: ask for one namespace with receipts=true' }, [{ path, rule: 'one_namespace', message: `${path} needs exactly one namespace` }]);
      }
      return combine(await Promise.all(namespaces.map((namespace) => opts.ledger.usage.query({ namespace, from, to, groupBy: q.group_by }))));
    }
    const namespace = namespaces[0]!;
    if (q.receipts !== 'true') {
      if (q.limit !== undefined || q.cursor !== undefined || q.order !== undefined) {
        throw new ApiError('invalid_query', { problem: 'limit, cursor and order page the receipts: add receipts=true' }, [{ path: q.limit !== undefined ? 'limit' : q.cursor !== undefined ? 'cursor' : 'order', rule: 'requires:receipts=true', message: 'only with receipts=true' }]);
      }
      return opts.ledger.usage.query({ namespace: namespace, from, to, groupBy: q.group_by });
    }

    // Receipts, paged. Every page carries the totals of the same snapshot (seq ≤ as_of_seq),
    // so the units summed over all pages equal the totals even while events keep arriving.
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (q.cursor !== undefined && !cursor) {
      throw new ApiError('invalid_query', { problem: 'cursor is not one this server issued; start again without it' }, [{ path: 'cursor', rule: 'issued_cursor', message: 'cursor must be a next_cursor value from a previous page' }]);
    }
    const desc = q.order === 'desc';
    if (cursor && cursor.desc !== desc) {
      throw new ApiError('invalid_query', { problem: `this cursor pages order=${cursor.desc ? 'desc' : 'asc'}: repeat the order it was issued with` }, [{ path: 'cursor', rule: 'same_order', message: 'cursor must be used with the order it was issued for' }]);
    }
    const max = cursor?.max ?? (await opts.ledger.events.latestId());
    const limit = q.limit ?? 100;
    const totals = await opts.ledger.usage.query({ namespace, from, to, groupBy: q.group_by, asOf: max });
    // Newest first starts just below (to, 0): every id is ≥ 1, so that is "ts < to".
    const start: [number, number] = cursor ? [cursor.ts, cursor.seq] : desc ? [to, 0] : [from, 0];
    const rows = await opts.ledger.events.page({ namespace, from, to, asOf: max, after: start, limit, desc });
    const last = rows.at(-1);
    return {
      ...totals,
      as_of_seq: max,
      events: await Promise.all(rows.map((row) => opts.receipts.receipt(row))),
      next_cursor: rows.length === limit && last ? encodeCursor({ ts: last.ts, seq: last.id, max, desc }) : null,
    };
  });
}

/**
 * The namespaces asked for: `namespace=a,b`, `namespace=a&namespace=b`, or both, each exactly a
 * namespace (the alphabet of events, no `*`: patterns are for keys). Problems go to `details`.
 */
function namespacesOf(raw: unknown, details: FieldError[]): string[] | undefined {
  if (raw === undefined) {
    details.push({ path: 'namespace', rule: 'required', message: 'namespace is required (one namespace, or several as namespace=a,b)' });
    return undefined;
  }
  const values = Array.isArray(raw) ? raw : [raw];
  if (values.length > MAX_NAMESPACES || !values.every((v) => typeof v === 'string')) {
    details.push({ path: 'namespace', rule: `max_items:${MAX_NAMESPACES}`, message: `namespace may list at most ${MAX_NAMESPACES} namespaces` });
    return undefined;
  }
  const list: string[] = [];
  for (const value of values as string[]) {
    // Bounded before splitting: the query string itself is bounded by the server's URL limit.
    for (const n of value.split(',')) {
      if (n.length < 1 || n.length > MAX_NAMESPACE_LENGTH || !NAMESPACE_PATTERN.test(n)) {
        const shown = n.length > 64 ? `${n.slice(0, 64)}…` : n;
        const hint = n.includes('*') ? ' (a * pattern is for keys; list the namespaces to read, e.g. namespace=acme/prod,acme/dev)' : '';
        details.push({
          path: 'namespace',
          rule: `pattern:${NAMESPACE_PATTERN.source}`,
          message: `namespace "${shown}" is not a namespace: it must be 1 to ${MAX_NAMESPACE_LENGTH} characters of ${NAMESPACE_PATTERN.source}${hint}`,
        });
        return undefined;
      }
      if (!list.includes(n)) list.push(n);
      if (list.length > MAX_NAMESPACES) {
        details.push({ path: 'namespace', rule: `max_items:${MAX_NAMESPACES}`, message: `namespace may list at most ${MAX_NAMESPACES} namespaces` });
        return undefined;
      }
    }
  }
  return list;
}

const exact = (n: bigint): Units => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());

/** Several namespaces' results: each one, the groups merged by key, and the overall totals (exact). */
function combine(results: UsageResult[]) {
  const merged = new Map<string, { events: number; units: bigint; billable_events: number; billable_units: bigint }>();
  let events = 0;
  let units = 0n;
  let billableEvents = 0;
  let billableUnits = 0n;
  for (const r of results) {
    for (const g of r.groups) {
      const m = merged.get(g.key) ?? { events: 0, units: 0n, billable_events: 0, billable_units: 0n };
      m.events += g.events;
      m.units += BigInt(g.units);
      m.billable_events += g.billable_events;
      m.billable_units += BigInt(g.billable_units);
      merged.set(g.key, m);
    }
    events += r.totals.events;
    units += BigInt(r.totals.units);
    billableEvents += r.totals.billable_events;
    billableUnits += BigInt(r.totals.billable_units);
  }
  const first = results[0]!;
  const groups: UsageGroup[] = [...merged.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, g]) => ({ key, events: g.events, units: exact(g.units), billable_events: g.billable_events, billable_units: exact(g.billable_units) }));
  return {
    namespaces: results.map((r) => r.namespace),
    from: first.from,
    to: first.to,
    group_by: first.group_by,
    groups,
    totals: { events, units: exact(units), billable_events: billableEvents, billable_units: exact(billableUnits) },
    by_namespace: results.map((r) => ({ namespace: r.namespace, groups: r.groups, totals: r.totals })),
  };
}
