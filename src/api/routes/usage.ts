// GET /v1/usage: counts and unit sums over [from, to) for one namespace the key may read, or
// for several at once (namespace=a,b or namespace=a&namespace=b): per namespace and overall.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseRfc3339 } from '../../event/validate.ts';
import { MAX_NAMESPACE_LENGTH, NAMESPACE_PATTERN } from '../../event/limits.ts';
import type { Ledger } from '../../ledger/index.ts';
import { GROUP_BY, type GroupBy, type UsageGroup, type Units } from '../../ledger/index.ts';
import type { ReceiptReader } from '../../receipt/reader.ts';
import { principalOf } from '../auth.ts';
import { checkTimeZone } from '../../usage/time-zone.ts';
import { ApiError } from '../errors.ts';
import type { FieldError } from '../../event/field-errors.ts';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { AUTH_ERRORS, COMMON_ERRORS, decimal, errorResponses, UsageResponseSchema } from '../schemas.ts';

const instant = z.string().transform((s, ctx) => {
  const ms = /^\d+$/.test(s) ? Number(s) : parseRfc3339(s);
  if (ms === undefined || !Number.isSafeInteger(ms)) {
    ctx.addIssue({
      code: 'custom',
      params: { rule: 'epoch_ms_or_rfc3339', message: 'must be epoch milliseconds or an RFC 3339 date-time' },
    });
    return z.NEVER;
  }
  return ms;
});

/** Most namespaces one request may sum (each is one indexed query). */
export const MAX_NAMESPACES = 100;
/** Groups per page: every answer is bounded, whatever the number of callers in the range. */
export const DEFAULT_GROUPS_LIMIT = 1000;
export const MAX_GROUPS_LIMIT = 10_000;
/** With several namespaces, the group rows of one answer: `groups` plus each namespace's. */
export const MAX_GROUP_ROWS = 10_000;
export const MAX_RECEIPTS_LIMIT = 1000;

const usageQuery = z.strictObject({
  // Checked by namespacesOf: a list, each in the namespace alphabet.
  namespace: z.unknown().meta({ type: 'string', description: 'one namespace, or several as namespace=a,b (or repeated)' }),
  from: instant.optional(),
  to: instant.optional(),
  group_by: z.enum(GROUP_BY).default('action'),
  tz: z
    .string()
    .optional()
    .describe('IANA time zone of the hour, day and month groups (default UTC): Europe/Berlin, America/Los_Angeles, Asia/Kolkata'),
  receipts: z.enum(['true', 'false']).optional(),
  limit: decimal(
    `groups per page, 1 to ${MAX_GROUPS_LIMIT} (default ${DEFAULT_GROUPS_LIMIT}; with several namespaces at most ${MAX_GROUP_ROWS} groups counting each namespace's); with receipts=true, receipts per page, 1 to ${MAX_RECEIPTS_LIMIT} (default 100)`,
  )
    .pipe(z.number().min(1).max(MAX_GROUPS_LIMIT))
    .optional(),
  cursor: z
    .string()
    // Long enough for a group cursor holding a 256-character caller; linear (one class, bounded).
    .refine((s) => /^[A-Za-z0-9_-]{1,4096}$/.test(s), {
      params: { rule: 'issued_cursor', message: 'must be a next_cursor value from a previous page' },
    })
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
    if (Array.isArray(v) && (v.length === 3 || (v.length === 4 && v[3] === 1)) && v.every((n) => Number.isSafeInteger(n)))
      return { ts: v[0], seq: v[1], max: v[2], desc: v.length === 4 };
  } catch {}
  return undefined;
}

/**
 * Where a page of groups ends: the group_by, the last key returned, the snapshot bound (event
 * ids ≤ a) that fixes the groups and totals of every page, and a digest of the query it pages.
 */
interface GroupCursor {
  g: GroupBy;
  k: string;
  a: number;
  h: string;
}

function encodeGroupCursor(c: GroupCursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeGroupCursor(s: string): GroupCursor | undefined {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Partial<GroupCursor> | null;
    if (
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      typeof v.g === 'string' &&
      (GROUP_BY as readonly string[]).includes(v.g) &&
      typeof v.k === 'string' &&
      v.k.length >= 1 &&
      v.k.length <= 1024 &&
      !v.k.includes('\0') &&
      (!['hour', 'day'].includes(v.g) || Number.isSafeInteger(Date.parse(v.k))) &&
      Number.isSafeInteger(v.a) &&
      typeof v.h === 'string'
    )
      return { g: v.g as GroupBy, k: v.k, a: v.a!, h: v.h };
  } catch {}
  return undefined;
}

/** What a group cursor belongs to: the namespaces, range and group_by (not a secret, a check). */
const queryDigest = (namespaces: string[], from: number, to: number, groupBy: GroupBy, tz: string) =>
  createHash('sha256')
    .update(JSON.stringify(tz === 'UTC' ? [namespaces, from, to, groupBy] : [namespaces, from, to, groupBy, tz]))
    .digest('base64url')
    .slice(0, 16);

/** Keys in the databases' order: UTF-8 bytes for text (both engines), time for hour, day and month. */
function compareKeys(groupBy: GroupBy): (a: string, b: string) => number {
  if (groupBy === 'hour' || groupBy === 'day' || groupBy === 'month') return (a, b) => Date.parse(a) - Date.parse(b);
  return (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function badCursor(problem: string, rule = 'issued_cursor', message = 'cursor must be a next_cursor value from a previous page'): ApiError {
  return new ApiError('invalid_query', { problem }, [{ path: 'cursor', rule, message }]);
}

export function usageRoutes(app: FastifyInstance, opts: { ledger: Ledger; receipts: ReceiptReader }): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/usage',
    {
      config: { right: 'read' },
      schema: {
        security: [{ bearer: [] }],
        tags: ['usage'],
        summary:
          "Counts and unit sums over [from, to) per group, for one namespace or several (namespace=a,b); with receipts=true, one namespace's events and their receipts, paged",
        querystring: usageQuery,
        response: { 200: UsageResponseSchema, ...errorResponses(...COMMON_ERRORS, ...AUTH_ERRORS, 'invalid_query', 'namespace_forbidden') },
      },
    },
    async (request) => {
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
        throw new ApiError('invalid_query', { problem: 'from must be before to (the range is [from, to))' }, [
          { path: 'from', rule: 'before_to', message: 'from must be before to' },
        ]);
      }
      const forbidden = namespaces.filter((n) => !principal.allows(n));
      if (forbidden.length > 0) {
        throw new ApiError('namespace_forbidden', {
          s: forbidden.length > 1 ? 's' : '',
          namespaces: forbidden.map((n) => `"${n}"`).join(', '),
          allowed: principal.namespaces.join(', '),
        });
      }
      if (namespaces.length > 1 && (q.receipts !== undefined || q.order !== undefined)) {
        const path = q.receipts !== undefined ? 'receipts' : 'order';
        throw new ApiError(
          'invalid_query',
          { problem: 'receipts are paged one namespace at a time: ask for one namespace with receipts=true' },
          [{ path, rule: 'one_namespace', message: `${path} needs exactly one namespace` }],
        );
      }
      let tz = 'UTC';
      if (q.tz !== undefined) {
        try {
          tz = checkTimeZone(q.tz);
        } catch (e) {
          const message = (e as Error).message;
          throw new ApiError('invalid_query', { problem: message }, [{ path: 'tz', rule: 'iana_time_zone', message }]);
        }
      }
      const digest = queryDigest(namespaces, from, to, q.group_by, tz);
      if (q.receipts !== 'true') {
        if (q.order !== undefined) {
          throw new ApiError('invalid_query', { problem: 'order pages the receipts (groups come in key order): add receipts=true' }, [
            { path: 'order', rule: 'requires:receipts=true', message: 'only with receipts=true' },
          ]);
        }
        let cursor: GroupCursor | undefined;
        if (q.cursor !== undefined) {
          cursor = decodeGroupCursor(q.cursor);
          if (!cursor) {
            throw decodeCursor(q.cursor)
              ? badCursor(
                  'this cursor pages receipts: repeat the query with receipts=true',
                  'requires:receipts=true',
                  'a receipts cursor needs receipts=true',
                )
              : badCursor('cursor is not one this server issued; start again without it');
          }
          if (cursor.g !== q.group_by || cursor.h !== digest) {
            throw badCursor(
              `this cursor pages another query (group_by=${cursor.g}): repeat the namespace, from, to and group_by it was issued with`,
              'same_query',
              'cursor must be used with the query it was issued for',
            );
          }
        }
        return namespaces.length > 1
          ? groupsOfSeveral(opts.ledger, namespaces, { from, to, groupBy: q.group_by, tz }, q.limit, cursor, digest)
          : groupsOfOne(
              opts.ledger,
              namespaces[0]!,
              { from, to, groupBy: q.group_by, tz },
              q.limit ?? DEFAULT_GROUPS_LIMIT,
              cursor,
              digest,
            );
      }
      const namespace = namespaces[0]!;
      if (q.limit !== undefined && q.limit > MAX_RECEIPTS_LIMIT) {
        throw new ApiError('invalid_query', { problem: `limit must be at most ${MAX_RECEIPTS_LIMIT} receipts per page` }, [
          { path: 'limit', rule: `max:${MAX_RECEIPTS_LIMIT}`, message: `limit must be at most ${MAX_RECEIPTS_LIMIT} with receipts=true` },
        ]);
      }

      // Receipts, paged. Every page carries the totals of the same snapshot (seq ≤ as_of_seq),
      // so the units summed over all pages equal the totals even while events keep arriving.
      const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
      if (q.cursor !== undefined && !cursor) {
        throw decodeGroupCursor(q.cursor)
          ? badCursor(
              'this cursor pages groups: repeat the query without receipts=true',
              'requires:receipts=false',
              'a groups cursor is used without receipts=true',
            )
          : badCursor('cursor is not one this server issued; start again without it');
      }
      const desc = q.order === 'desc';
      if (cursor && cursor.desc !== desc) {
        throw new ApiError(
          'invalid_query',
          { problem: `this cursor pages order=${cursor.desc ? 'desc' : 'asc'}: repeat the order it was issued with` },
          [{ path: 'cursor', rule: 'same_order', message: 'cursor must be used with the order it was issued for' }],
        );
      }
      const max = cursor?.max ?? (await opts.ledger.events.latestId());
      const limit = q.limit ?? 100;
      // The groups are bounded like any other answer: the first page of them, and where the rest
      // continue (a groups cursor of the same snapshot, for the same query without receipts=true).
      const { more, ...totals } = await opts.ledger.usage.query({
        namespace,
        from,
        to,
        groupBy: q.group_by,
        tz,
        asOf: max,
        limit: DEFAULT_GROUPS_LIMIT,
      });
      const lastGroup = totals.groups.at(-1);
      // Newest first starts just below (to, 0): every id is ≥ 1, so that is "ts < to".
      const start: [number, number] = cursor ? [cursor.ts, cursor.seq] : desc ? [to, 0] : [from, 0];
      const rows = await opts.ledger.events.page({ namespace, from, to, asOf: max, after: start, limit, desc });
      const last = rows.at(-1);
      return {
        ...totals,
        as_of_seq: max,
        events: await Promise.all(rows.map((row) => opts.receipts.receipt(row))),
        next_cursor: rows.length === limit && last ? encodeCursor({ ts: last.ts_ms, seq: last.id, max, desc }) : null,
        groups_next_cursor: more && lastGroup ? encodeGroupCursor({ g: q.group_by, k: lastGroup.key, a: max, h: digest }) : null,
      };
    },
  );
}

/**
 * One namespace's groups, a page at a time. The first page is read as it stands (one statement:
 * its groups and totals agree); only when more groups follow is it read again at a snapshot bound
 * (latestId), which every later page keeps, so all pages together are the groups of the totals.
 */
/** What every page of a group query asks: the range, the grouping and its time zone. */
type GroupQuery = { from: number; to: number; groupBy: GroupBy; tz: string };

async function groupsOfOne(
  ledger: Ledger,
  namespace: string,
  g: GroupQuery,
  limit: number,
  cursor: GroupCursor | undefined,
  digest: string,
) {
  const { groupBy } = g;
  let asOf = cursor?.a;
  let r = await ledger.usage.query({ namespace, ...g, limit, ...(cursor && { asOf, after: cursor.k }) });
  if (!cursor && r.more) {
    asOf = await ledger.events.latestId();
    r = await ledger.usage.query({ namespace, ...g, limit, asOf });
  }
  const { more, ...result } = r;
  const last = result.groups.at(-1);
  return {
    ...result,
    ...(asOf !== undefined && { as_of_seq: asOf }),
    next_cursor: more && last ? encodeGroupCursor({ g: groupBy, k: last.key, a: asOf!, h: digest }) : null,
  };
}

/**
 * Several namespaces: each one's page of groups after the cursor, merged by key in the databases'
 * order. The merged page ends at the first place where a namespace may have unread groups, so
 * no merged group is ever partial. Totals: each namespace's from its database aggregate, added
 * up (at most 100 of them).
 */
async function groupsOfSeveral(
  ledger: Ledger,
  namespaces: string[],
  g: GroupQuery,
  asked: number | undefined,
  cursor: GroupCursor | undefined,
  digest: string,
) {
  const { from, to, groupBy, tz } = g;
  // Each namespace's groups count too: at most MAX_GROUP_ROWS group rows in one answer.
  const most = Math.floor(MAX_GROUP_ROWS / (namespaces.length + 1));
  if (asked !== undefined && asked > most) {
    throw new ApiError(
      'invalid_query',
      {
        problem: `with ${namespaces.length} namespaces limit is at most ${most} (an answer holds at most ${MAX_GROUP_ROWS} groups, each namespace's included)`,
      },
      [{ path: 'limit', rule: `max:${most}`, message: `limit must be at most ${most} with ${namespaces.length} namespaces` }],
    );
  }
  const limit = asked ?? Math.min(DEFAULT_GROUPS_LIMIT, most);
  // As for one namespace: read as things stand (each namespace's groups agree with its totals,
  // and the overall ones are their sums), and fix a snapshot bound only when pages follow.
  const read = (asOf: number | undefined) =>
    Promise.all(
      namespaces.map((namespace) =>
        ledger.usage.query({
          namespace,
          ...g,
          limit,
          ...(asOf !== undefined && { asOf }),
          ...(cursor && { after: cursor.k }),
        }),
      ),
    );
  let asOf = cursor?.a;
  let results = await read(asOf);
  if (!cursor && results.some((r) => r.more)) {
    asOf = await ledger.events.latestId();
    results = await read(asOf);
  }
  const cmp = compareKeys(groupBy);
  // A namespace with more groups than it returned is known only up to its last key.
  let bound: string | undefined;
  for (const r of results) {
    const last = r.groups.at(-1);
    if (r.more && last && (bound === undefined || cmp(last.key, bound) < 0)) bound = last.key;
  }
  const within = (key: string) => bound === undefined || cmp(key, bound) <= 0;
  const merged = new Map<string, { events: number; units: bigint; billable_events: number; billable_units: bigint }>();
  for (const r of results) {
    for (const g of r.groups) {
      if (!within(g.key)) continue;
      const m = merged.get(g.key) ?? { events: 0, units: 0n, billable_events: 0, billable_units: 0n };
      m.events += g.events;
      m.units += BigInt(g.units);
      m.billable_events += g.billable_events;
      m.billable_units += BigInt(g.billable_units);
      merged.set(g.key, m);
    }
  }
  const keys = [...merged.keys()].sort(cmp);
  const more = keys.length > limit || results.some((r) => r.more);
  keys.length = Math.min(keys.length, limit);
  const last = keys.at(-1);
  const inPage = (key: string) => last !== undefined && cmp(key, last) <= 0;
  const groups: UsageGroup[] = keys.map((key) => {
    const g = merged.get(key)!;
    return { key, events: g.events, units: exact(g.units), billable_events: g.billable_events, billable_units: exact(g.billable_units) };
  });
  let events = 0;
  let units = 0n;
  let billableEvents = 0;
  let billableUnits = 0n;
  for (const r of results) {
    events += r.totals.events;
    units += BigInt(r.totals.units);
    billableEvents += r.totals.billable_events;
    billableUnits += BigInt(r.totals.billable_units);
  }
  return {
    namespaces,
    from,
    to,
    group_by: groupBy,
    ...(tz !== 'UTC' && { tz }),
    groups,
    totals: { events, units: exact(units), billable_events: billableEvents, billable_units: exact(billableUnits) },
    by_namespace: results.map((r) => ({ namespace: r.namespace, groups: r.groups.filter((g) => inPage(g.key)), totals: r.totals })),
    ...(asOf !== undefined && { as_of_seq: asOf }),
    next_cursor: more && last ? encodeGroupCursor({ g: groupBy, k: last, a: asOf!, h: digest }) : null,
  };
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
    details.push({
      path: 'namespace',
      rule: `max_items:${MAX_NAMESPACES}`,
      message: `namespace may list at most ${MAX_NAMESPACES} namespaces`,
    });
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
        details.push({
          path: 'namespace',
          rule: `max_items:${MAX_NAMESPACES}`,
          message: `namespace may list at most ${MAX_NAMESPACES} namespaces`,
        });
        return undefined;
      }
    }
  }
  return list;
}

const exact = (n: bigint): Units => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());
