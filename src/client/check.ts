// The client's limit check (issue 25, docs/api.md "Limits"): POST /v1/limits/check, one item or a
// batch, with a deadline. Edge-safe: fetch only. The middleware's admission gate calls it before
// the handler runs (src/middleware/common.ts).
import { UsageClientError } from './errors.ts';

export interface LimitCheckItem {
  namespace: string;
  action: string;
  /** What the work will record (default 1). */
  units?: number;
}

export interface LimitCheckAnswer {
  allowed: boolean;
  /** The limit that decided; null when none applies. */
  limit_id: string | null;
  /** Exact: a decimal string beyond 2^53−1. */
  used: number | string | null;
  remaining: number | string | null;
  /** When the period ends (RFC 3339); null for a total limit or none. */
  resets_at: string | null;
  /** The ledger position the usage is exact as of. */
  as_of: number;
}

/** Most items in one check (the API takes at most 100). */
export const MAX_CHECK_ITEMS = 100;

export interface CheckTarget {
  url: string | undefined;
  apiKey: string | undefined;
  fetch: typeof fetch | undefined;
  timeoutMs: number;
}

/** One item answers one answer; an array (at most 100) answers one per item, in order. Throws `check_failed` or `bad_option`. */
export async function checkLimits(
  target: CheckTarget,
  items: LimitCheckItem | readonly LimitCheckItem[],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<LimitCheckAnswer | LimitCheckAnswer[]> {
  if (typeof target.url !== 'string' || !/^https?:\/\//.test(target.url) || typeof target.apiKey !== 'string')
    throw new UsageClientError('bad_option', 'check() asks the service: the client needs url and apiKey (a key with the read right)');
  const batch = Array.isArray(items);
  const list = batch ? (items as readonly LimitCheckItem[]) : [items as LimitCheckItem];
  if (list.length < 1 || list.length > MAX_CHECK_ITEMS)
    throw new UsageClientError('bad_option', `check() takes 1 to ${MAX_CHECK_ITEMS} items, not ${list.length}`);
  const endpoint = `${target.url.replace(/\/+$/, '')}/v1/limits/check`;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? target.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await (target.fetch ?? fetch)(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(batch ? { checks: list } : list[0]),
      signal,
    });
  } catch (err) {
    throw new UsageClientError('check_failed', `check: cannot reach ${endpoint}: ${(err as Error)?.message}`, { cause: err });
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch (err) {
    throw new UsageClientError('check_failed', `check: HTTP ${res.status}, the answer is not JSON`, { cause: err });
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } })?.error;
    throw new UsageClientError('check_failed', `check: HTTP ${res.status} ${e?.code ?? ''}: ${String(e?.message ?? '').slice(0, 300)}`);
  }
  if (batch) {
    const results = (body as { results?: LimitCheckAnswer[] }).results;
    if (!Array.isArray(results) || results.length !== list.length)
      throw new UsageClientError('check_failed', 'check: the answer does not hold one result per item');
    return results;
  }
  if (typeof (body as LimitCheckAnswer)?.allowed !== 'boolean')
    throw new UsageClientError('check_failed', 'check: the answer has no "allowed"');
  return body as LimitCheckAnswer;
}
