// Webhooks on PostgreSQL (migration 012). Only SQL; the rules are in ../webhooks.ts. Any instance
// may create, list, delete and queue (the alert's key makes queueing once only, whoever does it);
// only the leader sends, and its attempt records are fenced, so a stale leader moves no message on.
import type pg from 'pg';
import { compileNamespacePatterns } from '../api-keys.ts';
import {
  afterAttempt,
  ATTEMPT_COLUMNS,
  type AttemptRow,
  type AttemptToRecord,
  type AlertToEnqueue,
  attemptOf,
  checkAlert,
  checkAttempt,
  checkWebhookRequest,
  type DeliveryAttempt,
  DUE_COLUMNS,
  type DueMessage,
  type DueRow,
  dueOf,
  type EnqueueResult,
  MAX_WEBHOOKS_PER_OWNER,
  MESSAGE_COLUMNS,
  type MessageRow,
  messageOf,
  newMessageId,
  newWebhookId,
  newWebhookSecret,
  type Webhook,
  WEBHOOK_COLUMNS,
  WebhookError,
  type WebhookMessage,
  type WebhookRow,
  type WebhookStore,
  type AlertRecord,
  webhookOf,
} from '../webhooks.ts';
import { transaction } from './db.ts';
import type { PgLeadership } from './leadership.ts';

export class PgWebhookStore implements WebhookStore {
  private readonly pool: pg.Pool;
  private readonly leadership: PgLeadership;

  constructor(pool: pg.Pool, leadership: PgLeadership) {
    this.pool = pool;
    this.leadership = leadership;
  }

  async create(owner: string, request: { url: string; namespaces: string[] }, now: number): Promise<{ webhook: Webhook; secret: string }> {
    const namespaces = checkWebhookRequest(owner, request);
    const webhook: Webhook = { id: newWebhookId(), owner, url: request.url, namespaces, created_at_ms: now };
    const secret = newWebhookSecret();
    await transaction(this.pool, async (c) => {
      // One owner's creations take turns, so the count below holds until commit.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`webhooks:${owner}`]);
      const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM webhooks WHERE owner = $1', [owner]);
      if (rows[0]!.n >= MAX_WEBHOOKS_PER_OWNER)
        throw new WebhookError(
          'url',
          `max_webhooks:${MAX_WEBHOOKS_PER_OWNER}`,
          `an owner may have at most ${MAX_WEBHOOKS_PER_OWNER} webhooks; delete one first`,
          409,
        );
      await c.query('INSERT INTO webhooks (id, owner, url, namespaces, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
        webhook.id,
        owner,
        webhook.url,
        JSON.stringify(namespaces),
        secret,
        now,
      ]);
    });
    return { webhook, secret };
  }

  async list(owner?: string): Promise<Webhook[]> {
    const { rows } =
      owner === undefined
        ? await this.pool.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id`)
        : await this.pool.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner = $1 ORDER BY created_at, id`, [owner]);
    return rows.map(webhookOf);
  }

  private async exists(q: pg.Pool | pg.PoolClient, id: string, owner: string | undefined, lock = false): Promise<boolean> {
    const { rows } = await q.query<{ owner: string }>(`SELECT owner FROM webhooks WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    return rows.length === 1 && (owner === undefined || rows[0]!.owner === owner);
  }

  async delete(id: string, owner?: string): Promise<{ discarded: number } | null> {
    return transaction(this.pool, async (c) => {
      if (!(await this.exists(c, id, owner, true))) return null;
      const { rows } = await c.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM webhook_messages WHERE webhook_id = $1 AND delivered_at IS NULL AND gave_up_at IS NULL',
        [id],
      );
      await c.query('DELETE FROM webhook_attempts WHERE webhook_id = $1', [id]);
      await c.query('DELETE FROM webhook_messages WHERE webhook_id = $1', [id]);
      await c.query('DELETE FROM webhooks WHERE id = $1', [id]);
      return { discarded: rows[0]!.n };
    });
  }

  async enqueueAlert(alert: AlertToEnqueue): Promise<EnqueueResult> {
    checkAlert(alert);
    return transaction(this.pool, async (c) => {
      // The alert's row first: a second instance queueing the same key waits here, then finds it.
      const claimed = await c.query(
        `INSERT INTO webhook_alerts (key, owner, namespace, created_at, messages) VALUES ($1, $2, $3, $4, 0)
         ON CONFLICT (key) DO NOTHING`,
        [alert.key, alert.owner, alert.namespace, alert.now],
      );
      if (claimed.rowCount !== 1) return { created: false, messages: [] };
      const { rows } = await c.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner = $1 ORDER BY created_at, id`, [
        alert.owner,
      ]);
      const hooks = rows.map(webhookOf).filter((w) => compileNamespacePatterns(w.namespaces)(alert.namespace));
      const messages: string[] = [];
      for (const w of hooks) {
        const id = newMessageId();
        await c.query(
          `INSERT INTO webhook_messages (id, webhook_id, alert_key, owner, payload, created_at, attempts, next_at)
           VALUES ($1, $2, $3, $4, $5, $6, 0, $6)`,
          [id, w.id, alert.key, alert.owner, alert.payload, alert.now],
        );
        messages.push(id);
      }
      await c.query('UPDATE webhook_alerts SET messages = $2 WHERE key = $1', [alert.key, messages.length]);
      return { created: true, messages };
    });
  }

  async alerted(key: string): Promise<boolean> {
    const { rowCount } = await this.pool.query({
      name: 'webhooks-alerted',
      text: 'SELECT 1 FROM webhook_alerts WHERE key = $1',
      values: [key],
    });
    return rowCount === 1;
  }
  async alertsOf(keys: readonly string[]): Promise<Map<string, AlertRecord>> {
    const { rows } = await this.pool.query<AlertRecord & { key: string }>({
      name: 'webhooks-alerts-of',
      text: `SELECT a.key, a.created_at, a.messages,
               (SELECT count(*)::int FROM webhook_messages m WHERE m.alert_key = a.key AND m.delivered_at IS NOT NULL) AS delivered
             FROM webhook_alerts a WHERE a.key = ANY($1::text[])`,
      values: [keys.slice(0, 1000)],
    });
    return new Map(rows.map(({ key, ...r }) => [key, r]));
  }

  async due(now: number, limit: number, skip: readonly string[] = []): Promise<DueMessage[]> {
    const { rows } = await this.pool.query<DueRow>({
      name: 'webhooks-due',
      text: `SELECT ${DUE_COLUMNS} FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id
             WHERE m.next_at IS NOT NULL AND m.next_at <= $1 AND NOT (m.webhook_id = ANY($2::text[]))
             ORDER BY m.next_at, m.id LIMIT $3`,
      values: [now, [...skip], limit],
    });
    return rows.map(dueOf);
  }

  async record(a: AttemptToRecord): Promise<boolean> {
    checkAttempt(a);
    const [nextAt, deliveredAt, gaveUpAt] = afterAttempt(a);
    return this.leadership.fenced(this.pool, async (c) => {
      const moved = await c.query(
        `UPDATE webhook_messages SET attempts = $2, next_at = $3, delivered_at = $4, gave_up_at = $5
         WHERE id = $1 AND attempts = $6 AND next_at IS NOT NULL`,
        [a.message_id, a.attempt, nextAt, deliveredAt, gaveUpAt, a.attempt - 1],
      );
      if (moved.rowCount !== 1) return false;
      await c.query(`INSERT INTO webhook_attempts (${ATTEMPT_COLUMNS}, webhook_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
        a.message_id,
        a.attempt,
        a.at_ms,
        Math.round(a.ms),
        a.status,
        a.error,
        a.outcome,
        a.webhook_id,
      ]);
      return true;
    });
  }

  async deliveries(
    id: string,
    owner: string | undefined,
    limit: number,
  ): Promise<{ messages: WebhookMessage[]; attempts: DeliveryAttempt[] } | null> {
    if (!(await this.exists(this.pool, id, owner))) return null;
    const messages = await this.pool.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM webhook_messages WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
      [id, limit],
    );
    const attempts = await this.pool.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM webhook_attempts WHERE webhook_id = $1 ORDER BY at DESC, message_id, attempt DESC LIMIT $2`,
      [id, limit],
    );
    return { messages: messages.rows.map(messageOf), attempts: attempts.rows.map(attemptOf) };
  }
}
