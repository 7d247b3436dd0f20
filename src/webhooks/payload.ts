// The alert a webhook receives (docs/api.md "Webhooks"): the Standard Webhooks envelope
// `{type, timestamp, data}`, with data naming the limit, the period, the threshold, the usage, the
// ledger position it was measured at, and the link to the receipts behind the number. Pure.
import { alertKey, type AlertToEnqueue } from '../ledger/webhooks.ts';

export const ALERT_TYPE = 'limit.threshold_crossed';

/** What a crossing detector found: a threshold of a limit reached in a period. */
export interface Crossing {
  owner: string;
  namespace: string;
  limit: {
    id: string;
    version: number;
    /** The meter counted, or null: `actions` with `measure`. */
    meter: string | null;
    actions: string[] | null;
    measure: string;
    hard: number | null;
  };
  period: { kind: string; tz: string; from_ms: number; to_ms: number | null };
  threshold: { name: string; kind: 'hard' | 'soft'; at: number; percent?: number };
  /** The usage in the period when measured: a number, or a decimal string beyond 2^53−1. */
  used: number | string;
  /** Every event with id ≤ as_of was counted. */
  as_of: number;
  measured_at_ms: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The path (on this service) that pages the receipts of the events of the period. */
export function receiptsLink(c: Pick<Crossing, 'namespace' | 'period'>): string {
  const q = new URLSearchParams({ namespace: c.namespace, from: iso(c.period.from_ms) });
  if (c.period.to_ms !== null) q.set('to', iso(c.period.to_ms));
  q.set('receipts', 'true');
  return `/v1/usage?${q.toString()}`;
}

export function alertPayload(c: Crossing): string {
  return JSON.stringify({
    type: ALERT_TYPE,
    timestamp: iso(c.measured_at_ms),
    data: {
      namespace: c.namespace,
      limit: c.limit,
      period: {
        kind: c.period.kind,
        tz: c.period.tz,
        from: iso(c.period.from_ms),
        to: c.period.to_ms === null ? null : iso(c.period.to_ms),
      },
      threshold: c.threshold,
      usage: c.used,
      measured_at: { as_of: c.as_of, at: iso(c.measured_at_ms) },
      receipts: receiptsLink(c),
    },
  });
}

/** The crossing as an alert to queue: once per limit, threshold and period. */
export function alertOf(c: Crossing, now: number): AlertToEnqueue {
  return {
    owner: c.owner,
    namespace: c.namespace,
    key: alertKey(c.owner, c.limit.id, c.threshold.name, c.period.from_ms),
    payload: alertPayload(c),
    now,
  };
}
