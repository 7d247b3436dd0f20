// Webhooks as both engines store them (migration 012, issue 25): an owner's endpoints with their
// namespace patterns and signing secret, an outbox of alert messages, and the attempt log. Only
// the rules here; the SQL is in sqlite/webhooks.ts and postgres/webhooks.ts. The URL's network
// checks (scheme, credentials, private addresses, DNS) are src/webhooks/url.ts's, before a
// webhook reaches the store: the store only refuses what could never be stored or sent.
import { randomBytes } from 'node:crypto';
import { NAMESPACE_PATTERN_RULE } from './api-keys.ts';

export const MAX_WEBHOOKS_PER_OWNER = 100;
export const MAX_WEBHOOK_NAMESPACES = 32;
export const MAX_WEBHOOK_URL_LENGTH = 2048;
export const MAX_ALERT_KEY_LENGTH = 512;
export const MAX_ALERT_PAYLOAD_BYTES = 65_536;
/** How long a message is retried after it was queued, ms: then it is given up (and logged so). */
export const WEBHOOK_RETRY_WINDOW_MS = 24 * 3_600_000;
/** The webhook id as issued (`wh_` and 16 hex digits). */
export const WEBHOOK_ID_PATTERN = /^wh_[0-9a-f]{16}$/;

/** A refused webhook request: the field and the rule, for the API's details and the CLI. */
export class WebhookError extends Error {
  readonly field: string;
  readonly rule: string;
  /** 400: bad input; 404: no such webhook; 409: a limit of the owner is reached. */
  readonly status: 400 | 404 | 409;
  constructor(field: string, rule: string, message: string, status: 400 | 404 | 409 = 400) {
    super(message);
    this.name = 'WebhookError';
    this.field = field;
    this.rule = rule;
    this.status = status;
  }
}

/** A webhook as read back: never its secret. */
export interface Webhook {
  id: string;
  owner: string;
  url: string;
  namespaces: string[];
  created_at_ms: number;
}

/** A message (one alert for one webhook) as the attempt log shows it. */
export interface WebhookMessage {
  /** The webhook-id header: the same on every attempt. */
  id: string;
  alert_key: string;
  created_at_ms: number;
  state: 'pending' | 'delivered' | 'gave_up';
  attempts: number;
  next_at_ms: number | null;
  delivered_at_ms: number | null;
  gave_up_at_ms: number | null;
}

export interface DeliveryAttempt {
  message_id: string;
  attempt: number;
  at_ms: number;
  /** How long the attempt took, ms. */
  ms: number;
  /** The receiver's HTTP status, or null when none came (refused address, timeout, connection error). */
  status: number | null;
  error: string | null;
  outcome: 'delivered' | 'retry' | 'gave_up';
}

/**
 * One alert to send to every webhook of `owner` whose patterns match `namespace`, once: a second
 * call with the same key queues nothing.
 */
export interface AlertToEnqueue {
  owner: string;
  namespace: string;
  /** What makes it once only: the limit, the threshold and the period (see alertKey). */
  key: string;
  /** The JSON body, sent and signed exactly as given on every attempt. */
  payload: string;
  now: number;
}

export interface EnqueueResult {
  /** False: an alert with this key was already queued; nothing was. */
  created: boolean;
  /** The messages queued (their webhook-ids); none when no webhook of the owner takes the namespace. */
  messages: string[];
}

/** A message due now, with what sending it needs (the secret never leaves the delivery loop). */
export interface DueMessage {
  id: string;
  webhook_id: string;
  url: string;
  secret: string;
  payload: string;
  attempts: number;
  created_at_ms: number;
}

/** The result of one attempt: logged, and the message moved on (delivered, retried at next_at_ms, given up). */
export interface AttemptToRecord extends Omit<DeliveryAttempt, 'attempt'> {
  webhook_id: string;
  /** The attempt number: the message's attempts so far + 1. */
  attempt: number;
  /** outcome retry: when the next one is due. */
  next_at_ms?: number;
}

export interface WebhookStore {
  /** A new webhook of owner; the secret is returned here only. Throws WebhookError naming the rule. */
  create(owner: string, request: { url: string; namespaces: string[] }, now: number): Promise<{ webhook: Webhook; secret: string }>;
  /** The owner's webhooks (every owner's without one), oldest first; never a secret. */
  list(owner?: string): Promise<Webhook[]>;
  /** Deletes a webhook (of owner, when given) and its messages; null when there is none. discarded: messages never delivered. */
  delete(id: string, owner?: string): Promise<{ discarded: number } | null>;
  /** Queues an alert for the owner's webhooks of the namespace, in one transaction, once per key. */
  enqueueAlert(alert: AlertToEnqueue): Promise<EnqueueResult>;
  /** Whether an alert with this key was queued already. */
  alerted(key: string): Promise<boolean>;
  /** The alerts raised under these keys: when, how many messages, how many delivered (at most 1,000 keys). */
  alertsOf(keys: readonly string[]): Promise<Map<string, AlertRecord>>;
  /** Messages due at `now`, earliest first, at most `limit`, none of the webhooks in `skip` (busy). */
  due(now: number, limit: number, skip?: readonly string[]): Promise<DueMessage[]>;
  /** Logs an attempt and moves its message on; PostgreSQL: only as the leader (fenced). False if already recorded. */
  record(attempt: AttemptToRecord): Promise<boolean>;
  /** A webhook's messages and attempts, newest first (at most limit each); null when there is no such webhook (of owner). */
  deliveries(
    id: string,
    owner: string | undefined,
    limit: number,
  ): Promise<{ messages: WebhookMessage[]; attempts: DeliveryAttempt[] } | null>;
}

/** An alert as raised: when its crossing was queued, to how many webhooks, how many delivered so far. */
export interface AlertRecord {
  created_at: number;
  messages: number;
  delivered: number;
}

/** The once-only key of an alert: an owner's limit's threshold in one period (JSON: unambiguous whatever the names hold). */
export function alertKey(owner: string, limitId: string, threshold: string, periodStartMs: number): string {
  return JSON.stringify([owner, limitId, threshold, periodStartMs]);
}

export function newWebhookId(): string {
  return `wh_${randomBytes(8).toString('hex')}`;
}

/** A Standard Webhooks secret: whsec_ and base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** A message id (the webhook-id header): msg_ and 128 random bits, unique across instances. */
export function newMessageId(): string {
  return `msg_${randomBytes(16).toString('hex')}`;
}

/** Checks what a webhook is made of, as stored; the namespace patterns deduplicated, in order. */
export function checkWebhookRequest(owner: string, request: { url: string; namespaces: string[] }): string[] {
  if (typeof owner !== 'string' || owner.length < 1 || owner.length > 256)
    throw new WebhookError('owner', 'max_length:256', 'owner must be 1 to 256 characters');
  const { url, namespaces } = request;
  if (typeof url !== 'string' || url.length < 1 || url.length > MAX_WEBHOOK_URL_LENGTH)
    throw new WebhookError('url', `max_length:${MAX_WEBHOOK_URL_LENGTH}`, `url must be 1 to ${MAX_WEBHOOK_URL_LENGTH} characters`);
  if (!Array.isArray(namespaces) || namespaces.length < 1)
    throw new WebhookError('namespaces', 'min_items:1', 'namespaces must hold at least one namespace pattern');
  if (namespaces.length > MAX_WEBHOOK_NAMESPACES)
    throw new WebhookError(
      'namespaces',
      `max_items:${MAX_WEBHOOK_NAMESPACES}`,
      `namespaces may hold at most ${MAX_WEBHOOK_NAMESPACES} patterns`,
    );
  namespaces.forEach((p, i) => {
    if (typeof p !== 'string' || !NAMESPACE_PATTERN_RULE.test(p))
      throw new WebhookError(
        `namespaces.${i}`,
        `pattern:${NAMESPACE_PATTERN_RULE.source}`,
        `namespace pattern ${JSON.stringify(String(p).slice(0, 140))} must be 1 to 128 characters of a-z 0-9 . _ / - and *`,
      );
  });
  return [...new Set(namespaces)];
}

/** Refuses an alert that could not be stored or sent as given. */
export function checkAlert(a: AlertToEnqueue): void {
  if (typeof a.key !== 'string' || a.key.length < 1 || a.key.length > MAX_ALERT_KEY_LENGTH)
    throw new WebhookError('key', `max_length:${MAX_ALERT_KEY_LENGTH}`, `alert key must be 1 to ${MAX_ALERT_KEY_LENGTH} characters`);
  if (typeof a.owner !== 'string' || a.owner.length < 1 || a.owner.length > 256)
    throw new WebhookError('owner', 'max_length:256', 'alert owner must be 1 to 256 characters');
  if (typeof a.namespace !== 'string' || a.namespace.length < 1 || a.namespace.length > 128)
    throw new WebhookError('namespace', 'max_length:128', 'alert namespace must be 1 to 128 characters');
  if (typeof a.payload !== 'string' || Buffer.byteLength(a.payload) > MAX_ALERT_PAYLOAD_BYTES)
    throw new WebhookError(
      'payload',
      `max_bytes:${MAX_ALERT_PAYLOAD_BYTES}`,
      `alert payload must be at most ${MAX_ALERT_PAYLOAD_BYTES} bytes`,
    );
  try {
    JSON.parse(a.payload);
  } catch {
    throw new WebhookError('payload', 'json', 'alert payload must be JSON text');
  }
  if (!Number.isSafeInteger(a.now) || a.now < 0) throw new WebhookError('now', 'epoch_ms', 'alert time must be epoch ms');
}

/** Refuses an attempt record that is not one. */
export function checkAttempt(a: AttemptToRecord): void {
  if (!Number.isSafeInteger(a.attempt) || a.attempt < 1) throw new RangeError(`attempt must be an integer ≥ 1, not ${a.attempt}`);
  if (a.outcome === 'retry' && !Number.isSafeInteger(a.next_at_ms)) throw new RangeError('a retried attempt needs next_at_ms');
}

// ── Rows ─────────────────────────────────────────────────────────────────────────────────────

export const WEBHOOK_COLUMNS = 'id, owner, url, namespaces, created_at';
export interface WebhookRow {
  id: string;
  owner: string;
  url: string;
  namespaces: string;
  created_at: number | string;
}
export const webhookOf = (r: WebhookRow): Webhook => ({
  id: r.id,
  owner: r.owner,
  url: r.url,
  namespaces: JSON.parse(r.namespaces) as string[],
  created_at_ms: Number(r.created_at),
});

export const MESSAGE_COLUMNS = 'id, alert_key, created_at, attempts, next_at, delivered_at, gave_up_at';
export interface MessageRow {
  id: string;
  alert_key: string;
  created_at: number | string;
  attempts: number | string;
  next_at: number | string | null;
  delivered_at: number | string | null;
  gave_up_at: number | string | null;
}
const orNull = (v: number | string | null) => (v === null ? null : Number(v));
export const messageOf = (r: MessageRow): WebhookMessage => ({
  id: r.id,
  alert_key: r.alert_key,
  created_at_ms: Number(r.created_at),
  state: r.delivered_at !== null ? 'delivered' : r.gave_up_at !== null ? 'gave_up' : 'pending',
  attempts: Number(r.attempts),
  next_at_ms: orNull(r.next_at),
  delivered_at_ms: orNull(r.delivered_at),
  gave_up_at_ms: orNull(r.gave_up_at),
});

export const ATTEMPT_COLUMNS = 'message_id, attempt, at, ms, status, error, outcome';
export interface AttemptRow {
  message_id: string;
  attempt: number | string;
  at: number | string;
  ms: number | string;
  status: number | string | null;
  error: string | null;
  outcome: DeliveryAttempt['outcome'];
}
export const attemptOf = (r: AttemptRow): DeliveryAttempt => ({
  message_id: r.message_id,
  attempt: Number(r.attempt),
  at_ms: Number(r.at),
  ms: Number(r.ms),
  status: orNull(r.status),
  error: r.error,
  outcome: r.outcome,
});

export const DUE_COLUMNS = 'm.id, m.webhook_id, w.url, w.secret, m.payload, m.attempts, m.created_at';
export interface DueRow {
  id: string;
  webhook_id: string;
  url: string;
  secret: string;
  payload: string;
  attempts: number | string;
  created_at: number | string;
}
export const dueOf = (r: DueRow): DueMessage => ({
  id: r.id,
  webhook_id: r.webhook_id,
  url: r.url,
  secret: r.secret,
  payload: r.payload,
  attempts: Number(r.attempts),
  created_at_ms: Number(r.created_at),
});

/** The message columns an attempt sets: [next_at, delivered_at, gave_up_at]. */
export function afterAttempt(a: AttemptToRecord): [number | null, number | null, number | null] {
  if (a.outcome === 'delivered') return [null, a.at_ms, null];
  if (a.outcome === 'gave_up') return [null, null, a.at_ms];
  return [a.next_at_ms!, null, null];
}
