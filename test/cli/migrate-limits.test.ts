// `receipts migrate` carries limits (schema 011) and webhooks (schema 012): a SQLite ledger with
// limit versions (one limit deleted), a webhook, alerts delivered and still queued, and their
// attempts, moved by the CLI as a child process; the PostgreSQL ledger then answers GET
// /v1/limits, GET /v1/limits/usage, GET /v1/webhooks, the deliveries and a limit check exactly as
// SQLite did, signs with the same secret, and does not raise (or send) an alert already raised.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Right } from '../../src/ledger/index.ts';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { checkCopy } from '../../src/ledger/migrate.ts';
import { openPostgresLedger } from '../../src/ledger/postgres/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { alertOf } from '../../src/webhooks/index.ts';
import { event, tempDir, testServer, type TestServer } from '../helpers.ts';
import { crossing } from '../webhooks/receiver.ts';
import { freshDatabase, startPostgres } from '../support/postgres.ts';
import { receipts } from './run.ts';

const cluster = await startPostgres();
const tmp = tempDir('receipts-migrate-limits-');
afterAll(async () => {
  await cluster?.stop();
  tmp.cleanup();
});

async function sql(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

// No alerts raised by the servers themselves: what is compared is what the source held.
const OPTIONS = { webhooks: { crossings: false as const } };
const HOUR = 3_600_000;

describe.skipIf(!cluster)('receipts migrate carries limits and webhooks', () => {
  const file = join(tmp.dir, 'receipts.db');
  let admin: Record<string, string> = {};
  let reader: Record<string, string> = {};
  let hookId = '';
  let secret = '';
  let alertKeys: string[] = [];
  /** What each read answers, asked of a server on either ledger. */
  const answers = async (s: TestServer) => {
    const check = await s.app.inject({
      method: 'POST',
      url: '/v1/limits/check',
      headers: { ...reader, 'content-type': 'application/json' },
      payload: JSON.stringify({
        checks: [
          { namespace: 'acme/prod', action: 'chat', units: 6 },
          { namespace: 'acme/dev', action: 'chat' },
        ],
      }),
    });
    const out: Record<string, unknown> = {
      limits: (await s.get('/v1/limits', admin)).json(),
      prod: (await s.get('/v1/limits?namespace=acme/prod', admin)).json(),
      deleted: (await s.get('/v1/limits/dev-day', admin)).json(),
      usage: (await s.get('/v1/limits/usage?namespace=acme/prod', reader)).json(),
      webhooks: (await s.get('/v1/webhooks', admin)).json(),
      deliveries: (await s.get(`/v1/webhooks/${hookId}/deliveries`, admin)).json(),
      check: [check.statusCode, check.json()],
    };
    return out;
  };
  let sqliteAnswers: Record<string, unknown> = {};

  beforeAll(async () => {
    const s = await testServer(OPTIONS, async () => ({
      ledger: new SqliteLedger(file, { synchronous: 'normal' }),
      cleanup: async () => {},
    }));
    try {
      const key = async (rights: Right[]) =>
        ({ authorization: `Bearer ${(await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, rights)).key}` }) as Record<
          string,
          string
        >;
      admin = await key(['read', 'admin']);
      reader = await key(['read']);
      const put = async (id: string, body: unknown) => {
        const res = await s.app.inject({
          method: 'PUT',
          url: `/v1/limits/${id}`,
          headers: { ...admin, 'content-type': 'application/json' },
          payload: JSON.stringify(body),
        });
        expect(res.statusCode, res.body).toBeLessThan(300);
      };
      const chat = { namespace: 'acme/prod', actions: ['chat'], measure: 'units', period: 'month', hard: 10, soft: [50, 80] };
      await put('chat-month', chat);
      await put('chat-month', { ...chat, hard: 12 }); // version 2
      await put('dev-day', { namespace: 'acme/dev', measure: 'events', period: 'day', tz: 'Europe/Paris', hard: 1 });
      // Deleted: a version 2 marked deleted; a check of acme/dev must go on ignoring it.
      expect((await s.app.inject({ method: 'DELETE', url: '/v1/limits/dev-day', headers: admin })).statusCode).toBe(200);
      const res = await s.post({ events: [event({ action: 'chat', units: 4 }), event({ action: 'chat', units: 3 })] });
      expect(res.statusCode).toBe(200);
      await sealAll(s.ledger, { maxEvents: 1 });
      expect((await s.post({ events: [event({ namespace: 'acme/dev', action: 'chat' })] })).statusCode).toBe(200);

      // A webhook (made through the ledger: its URL need not resolve here), an alert delivered on
      // its second attempt and one still queued after a failure, due again in an hour.
      const created = await s.ledger.webhooks.create(
        'acme-inc',
        { url: 'https://hooks.example.com/receipts', namespaces: ['acme/*'] },
        Date.now(),
      );
      hookId = created.webhook.id;
      secret = created.secret;
      const now = Date.now();
      const month = new Date(now);
      const periodFrom = Date.UTC(month.getUTCFullYear(), month.getUTCMonth(), 1);
      const limit = { id: 'chat-month', version: 2, meter: null, actions: ['chat'], measure: 'units' as const, hard: 12 };
      const period = {
        kind: 'month' as const,
        tz: 'UTC',
        from_ms: periodFrom,
        to_ms: Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1),
      };
      const sent = alertOf(crossing({ limit, period, used: 7, threshold: { name: 'soft:50', kind: 'soft', at: 6, percent: 50 } }), now);
      const queued = alertOf(crossing({ limit, period, used: 7, threshold: { name: 'soft:80', kind: 'soft', at: 9.6, percent: 80 } }), now);
      alertKeys = [sent.key, queued.key];
      const [m1] = (await s.ledger.webhooks.enqueueAlert(sent)).messages;
      const [m2] = (await s.ledger.webhooks.enqueueAlert(queued)).messages;
      const attempt = { webhook_id: hookId, ms: 12, status: 503, error: 'HTTP 503', outcome: 'retry' as const, next_at_ms: now + 1 };
      expect(await s.ledger.webhooks.record({ ...attempt, message_id: m1!, attempt: 1, at_ms: now })).toBe(true);
      expect(
        await s.ledger.webhooks.record({
          ...attempt,
          message_id: m1!,
          attempt: 2,
          at_ms: now + 1,
          status: 204,
          error: null,
          outcome: 'delivered',
        }),
      ).toBe(true);
      expect(
        await s.ledger.webhooks.record({
          ...attempt,
          message_id: m2!,
          attempt: 1,
          at_ms: now + 2,
          status: null,
          error: 'timeout',
          next_at_ms: now + HOUR,
        }),
      ).toBe(true);
      sqliteAnswers = await answers(s);
    } finally {
      await s.close();
    }
    // What the source answers, so that an empty answer cannot pass for a copied one.
    expect(sqliteAnswers.limits).toMatchObject({ limits: [{ id: 'chat-month', version: 2, hard: 12 }] });
    expect(sqliteAnswers.deleted).toMatchObject({ id: 'dev-day', versions: [{ version: 1 }, { version: 2, deleted: true }] });
    expect(sqliteAnswers.webhooks).toMatchObject({ webhooks: [{ id: hookId }] });
    expect(JSON.stringify(sqliteAnswers.deliveries)).toContain('timeout');
    expect(sqliteAnswers.check).toMatchObject([200, { results: [{ allowed: false }, { allowed: true }] }]);
  });

  it('copies every limit version and the webhook tables; the PostgreSQL ledger answers as SQLite did', async () => {
    const url = await freshDatabase(cluster!.url);
    const r = receipts(['migrate', '--from', file, '--to', url, '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.copied).toMatchObject({ limits: 4, webhooks: 1, webhook_alerts: 2, webhook_messages: 2, webhook_attempts: 3 });
    expect(r.stderr).toMatch(/^comparing copied limit versions: 4 \/ 4$/m);
    expect(r.stderr).toMatch(/^comparing copied webhook attempts: 3 \/ 3$/m);
    expect(r.stdout + r.stderr).not.toContain(secret.slice('whsec_'.length));
    const text = receipts(['migrate', '--from', file, '--to', await freshDatabase(cluster!.url)]);
    expect(text.stdout).toMatch(/4 limit versions, 1 webhook, 2 webhook alerts, 2 webhook messages and 3 webhook delivery attempts from /);

    const s = await testServer(OPTIONS, async () => ({ ledger: await openPostgresLedger(url), cleanup: async () => {} }));
    try {
      expect(await answers(s)).toEqual(sqliteAnswers);
      // The same secret signs the queued message (receivers verify with the one they were given) …
      const due = await s.ledger.webhooks.due(Date.now() + 2 * HOUR, 10);
      expect(due.map((m) => [m.webhook_id, m.secret, m.attempts])).toEqual([[hookId, secret, 1]]);
      // … and an alert already raised is not raised again.
      for (const key of alertKeys) expect(await s.ledger.webhooks.alerted(key)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('the copy check names a changed limit version or webhook, never showing the secret', async () => {
    const url = await freshDatabase(cluster!.url);
    expect(receipts(['migrate', '--from', file, '--to', url]).code).toBe(0);
    await sql(url, "UPDATE limits SET deleted = false WHERE id = 'dev-day' AND version = 2");
    await expect(checkCopy({ from: file, to: url })).rejects.toMatchObject({
      message: expect.stringMatching(
        /does not match the source: limit dev-day of acme-inc \(version 2\): deleted is false in the copy but true/,
      ),
    });
    await sql(url, "UPDATE limits SET deleted = true WHERE id = 'dev-day' AND version = 2");
    await sql(url, "UPDATE webhooks SET secret = 'whsec_other'");
    const failed = (await checkCopy({ from: file, to: url }).catch((e: Error) => e)) as Error;
    expect(failed.message).toMatch(/webhook wh_\w+: secret differs between the copy and the source \(not shown: a secret\)/);
    expect(failed.message).not.toContain(secret.slice('whsec_'.length));
    expect(failed.message).not.toContain('whsec_other');
  });

  it('a source from before limits and webhooks (schema 10) migrates without them', async () => {
    const old = join(tmp.dir, 'schema-10.db');
    copyFileSync(file, old);
    const db = new Database(old);
    db.exec(`DROP TABLE limits; DROP TABLE webhooks; DROP TABLE webhook_alerts; DROP TABLE webhook_messages;
      DROP TABLE webhook_attempts; DELETE FROM schema_migrations WHERE version >= 11;`);
    db.close();
    const url = await freshDatabase(cluster!.url);
    const r = receipts(['migrate', '--from', old, '--to', url, '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).copied).toMatchObject({ events: 3, limits: 0, webhooks: 0, webhook_alerts: 0 });
    const ledger = await openPostgresLedger(url);
    try {
      expect(await ledger.limits.list('acme-inc')).toEqual([]);
      expect(await ledger.webhooks.list()).toEqual([]);
    } finally {
      await ledger.close();
    }
  });
});
