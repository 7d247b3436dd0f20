// Webhooks on SQLite (migration 012). Only SQL; the rules are in ../webhooks.ts.
import { compileNamespacePatterns } from '../api-keys.ts';
import {
  afterAttempt,
  ATTEMPT_COLUMNS,
  type AttemptRow,
  type AttemptToRecord,
  type AlertToEnqueue,
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
  attemptOf,
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
import type { Db } from './db.ts';

export class SqliteWebhookStore implements WebhookStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async create(owner: string, request: { url: string; namespaces: string[] }, now: number): Promise<{ webhook: Webhook; secret: string }> {
    const namespaces = checkWebhookRequest(owner, request);
    const webhook: Webhook = { id: newWebhookId(), owner, url: request.url, namespaces, created_at_ms: now };
    const secret = newWebhookSecret();
    this.db
      .transaction(() => {
        const { n } = this.db.prepare('SELECT count(*) AS n FROM webhooks WHERE owner = ?').get(owner) as { n: number };
        if (n >= MAX_WEBHOOKS_PER_OWNER)
          throw new WebhookError(
            'url',
            `max_webhooks:${MAX_WEBHOOKS_PER_OWNER}`,
            `an owner may have at most ${MAX_WEBHOOKS_PER_OWNER} webhooks; delete one first`,
            409,
          );
        this.db
          .prepare('INSERT INTO webhooks (id, owner, url, namespaces, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(webhook.id, owner, webhook.url, JSON.stringify(namespaces), secret, now);
      })
      .immediate();
    return { webhook, secret };
  }

  async list(owner?: string): Promise<Webhook[]> {
    const rows = (
      owner === undefined
        ? this.db.prepare(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id`).all()
        : this.db.prepare(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner = ? ORDER BY created_at, id`).all(owner)
    ) as WebhookRow[];
    return rows.map(webhookOf);
  }

  private exists(id: string, owner: string | undefined): boolean {
    const row = this.db.prepare('SELECT owner FROM webhooks WHERE id = ?').get(id) as { owner: string } | undefined;
    return row !== undefined && (owner === undefined || row.owner === owner);
  }

  async delete(id: string, owner?: string): Promise<{ discarded: number } | null> {
    return this.db
      .transaction(() => {
        if (!this.exists(id, owner)) return null;
        const { n } = this.db
          .prepare('SELECT count(*) AS n FROM webhook_messages WHERE webhook_id = ? AND delivered_at IS NULL AND gave_up_at IS NULL')
          .get(id) as { n: number };
        this.db.prepare('DELETE FROM webhook_attempts WHERE webhook_id = ?').run(id);
        this.db.prepare('DELETE FROM webhook_messages WHERE webhook_id = ?').run(id);
        this.db.prepare('DELETE FROM webhooks WHERE id = ?').run(id);
        return { discarded: n };
      })
      .immediate();
  }

  async enqueueAlert(alert: AlertToEnqueue): Promise<EnqueueResult> {
    checkAlert(alert);
    return this.db
      .transaction((): EnqueueResult => {
        if (this.db.prepare('SELECT 1 FROM webhook_alerts WHERE key = ?').get(alert.key)) return { created: false, messages: [] };
        const hooks = (
          this.db
            .prepare(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner = ? ORDER BY created_at, id`)
            .all(alert.owner) as WebhookRow[]
        )
          .map(webhookOf)
          .filter((w) => compileNamespacePatterns(w.namespaces)(alert.namespace));
        const insert = this.db.prepare(
          `INSERT INTO webhook_messages (id, webhook_id, alert_key, owner, payload, created_at, attempts, next_at)
           VALUES (?, ?, ?, ?, ?, ?, 0, ?)`,
        );
        const messages = hooks.map((w) => {
          const id = newMessageId();
          insert.run(id, w.id, alert.key, alert.owner, alert.payload, alert.now, alert.now);
          return id;
        });
        this.db
          .prepare('INSERT INTO webhook_alerts (key, owner, namespace, created_at, messages) VALUES (?, ?, ?, ?, ?)')
          .run(alert.key, alert.owner, alert.namespace, alert.now, messages.length);
        return { created: true, messages };
      })
      .immediate();
  }

  async alerted(key: string): Promise<boolean> {
    return this.db.prepare('SELECT 1 FROM webhook_alerts WHERE key = ?').get(key) !== undefined;
  }

  async alertsOf(keys: readonly string[]): Promise<Map<string, AlertRecord>> {
    const rows = this.db
      .prepare(
        `SELECT a.key, a.created_at, a.messages,
           (SELECT count(*) FROM webhook_messages m WHERE m.alert_key = a.key AND m.delivered_at IS NOT NULL) AS delivered
         FROM webhook_alerts a WHERE a.key IN (SELECT value FROM json_each(?))`,
      )
      .all(JSON.stringify(keys.slice(0, 1000))) as Array<AlertRecord & { key: string }>;
    return new Map(rows.map(({ key, ...r }) => [key, r]));
  }

  async due(now: number, limit: number, skip: readonly string[] = []): Promise<DueMessage[]> {
    const rows = this.db
      .prepare(
        `SELECT ${DUE_COLUMNS} FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id
         WHERE m.next_at IS NOT NULL AND m.next_at <= ? AND m.webhook_id NOT IN (SELECT value FROM json_each(?))
         ORDER BY m.next_at, m.id LIMIT ?`,
      )
      .all(now, JSON.stringify(skip), limit) as DueRow[];
    return rows.map(dueOf);
  }

  async record(a: AttemptToRecord): Promise<boolean> {
    checkAttempt(a);
    const [nextAt, deliveredAt, gaveUpAt] = afterAttempt(a);
    return this.db
      .transaction(() => {
        // Only the attempt that follows the last one recorded moves the message on.
        const moved = this.db
          .prepare(
            `UPDATE webhook_messages SET attempts = ?, next_at = ?, delivered_at = ?, gave_up_at = ?
             WHERE id = ? AND attempts = ? AND next_at IS NOT NULL`,
          )
          .run(a.attempt, nextAt, deliveredAt, gaveUpAt, a.message_id, a.attempt - 1);
        if (moved.changes === 0) return false;
        this.db
          .prepare(`INSERT INTO webhook_attempts (${ATTEMPT_COLUMNS}, webhook_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
          .run(a.message_id, a.attempt, a.at_ms, Math.round(a.ms), a.status, a.error, a.outcome, a.webhook_id);
        return true;
      })
      .immediate();
  }

  async deliveries(
    id: string,
    owner: string | undefined,
    limit: number,
  ): Promise<{ messages: WebhookMessage[]; attempts: DeliveryAttempt[] } | null> {
    if (!this.exists(id, owner)) return null;
    const messages = this.db
      .prepare(`SELECT ${MESSAGE_COLUMNS} FROM webhook_messages WHERE webhook_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(id, limit) as MessageRow[];
    const attempts = this.db
      .prepare(`SELECT ${ATTEMPT_COLUMNS} FROM webhook_attempts WHERE webhook_id = ? ORDER BY at DESC, message_id, attempt DESC LIMIT ?`)
      .all(id, limit) as AttemptRow[];
    return { messages: messages.map(messageOf), attempts: attempts.map(attemptOf) };
  }
}
