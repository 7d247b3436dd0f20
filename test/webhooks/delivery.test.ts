// Delivering alerts (issue 25) to a real local HTTP receiver, on both engines: each message is
// signed per Standard Webhooks so that a receiver verifying with the `standardwebhooks` package,
// or with a plain HMAC of its own, accepts it; an alert is queued once per limit, threshold and
// period; a receiver that fails is retried with the same webhook-id until it answers 2xx, and the
// attempts are readable; a silent receiver holds up no other; a message past its retry window is
// given up and logged so. End to end: a limit's threshold crossed by recorded usage raises one
// alert, with the usage, the position measured at and the receipts link.
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { Right } from '../../src/ledger/index.ts';
import { WebhookDeliverer } from '../../src/webhooks/delivery.ts';
import { alertOf } from '../../src/webhooks/payload.ts';
import { event, serverEachTest, until } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';
import { crossing, startReceiver } from './receiver.ts';

const NOW = Date.parse('2026-03-12T12:00:00Z');
const FAST = { pollMs: 20, backoff: { baseMs: 40, maxMs: 80 }, timeoutMs: 400 };

forEachEngine((fresh) => {
  const receivers: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  const receiver = async (...args: Parameters<typeof startReceiver>) => {
    const r = await startReceiver(...args);
    receivers.push(r);
    return r;
  };

  describe('queued alerts', () => {
    const s = serverEachTest(fresh, { now: () => NOW, webhooks: { allowPrivate: true, crossings: false, delivery: FAST } });
    const admin = async () => {
      const k = await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['read', 'admin'] as Right[]);
      return { authorization: `Bearer ${k.key}` };
    };
    const hook = async (url: string, namespaces = ['acme/*']) => {
      const res = await s.app.inject({
        method: 'POST',
        url: '/v1/webhooks',
        headers: { ...(await admin()), 'content-type': 'application/json' },
        payload: JSON.stringify({ url, namespaces }),
      });
      expect(res.statusCode).toBe(201);
      return res.json() as { id: string; secret: string };
    };
    const deliveries = async (id: string) => (await s.get(`/v1/webhooks/${id}/deliveries`, await admin())).json();

    it('signs each message so that standardwebhooks and a plain HMAC both verify it; once per limit, threshold and period', async () => {
      const r = await receiver();
      const w = await hook(r.url);
      const c = crossing();
      const queued = await s.ledger.webhooks.enqueueAlert(alertOf(c, Date.now()));
      expect(queued).toEqual({ created: true, messages: [expect.stringMatching(/^msg_[0-9a-f]{32}$/)] });
      await until(() => r.received.length === 1);
      const got = r.received[0]!;
      expect(got.headers['content-type']).toBe('application/json');
      expect(got.headers['webhook-id']).toBe(queued.messages[0]);
      // The receiver's side, with the package (it also checks the timestamp is recent) …
      expect(new Webhook(w.secret).verify(got.body, got.headers as Record<string, string>)).toEqual(JSON.parse(got.body));
      // … and by hand: HMAC-SHA256 over "id.timestamp.body" with the base64-decoded secret.
      const mac = createHmac('sha256', Buffer.from(w.secret.slice('whsec_'.length), 'base64'))
        .update(`${got.headers['webhook-id']}.${got.headers['webhook-timestamp']}.${got.body}`)
        .digest('base64');
      expect(got.headers['webhook-signature']).toBe(`v1,${mac}`);
      expect(() => new Webhook(w.secret).verify(got.body.replace('812', '813'), got.headers as Record<string, string>)).toThrow(
        /No matching signature/,
      );
      expect(JSON.parse(got.body)).toEqual({
        type: 'limit.threshold_crossed',
        timestamp: '2026-03-12T12:00:00.000Z',
        data: {
          namespace: 'acme/prod',
          limit: c.limit,
          period: { kind: 'month', tz: 'UTC', from: '2026-03-01T00:00:00.000Z', to: '2026-04-01T00:00:00.000Z' },
          threshold: { name: 'soft:80', kind: 'soft', at: 800, percent: 80 },
          usage: 812,
          measured_at: { as_of: 42, at: '2026-03-12T12:00:00.000Z' },
          receipts: '/v1/usage?namespace=acme%2Fprod&from=2026-03-01T00%3A00%3A00.000Z&to=2026-04-01T00%3A00%3A00.000Z&receipts=true',
        },
      });
      // The same crossing again (the detector looks again, a restart, a new leader): nothing new.
      expect(await s.ledger.webhooks.enqueueAlert(alertOf({ ...c, used: 900, as_of: 50 }, Date.now()))).toEqual({
        created: false,
        messages: [],
      });
      await until(async () => (await deliveries(w.id)).messages[0]?.state === 'delivered');
      await new Promise((done) => setTimeout(done, 150));
      expect(r.received).toHaveLength(1);
      const log = await deliveries(w.id);
      expect(log.messages).toEqual([expect.objectContaining({ id: queued.messages[0], state: 'delivered', attempts: 1 })]);
      expect(log.attempts).toEqual([
        expect.objectContaining({ message_id: queued.messages[0], attempt: 1, status: 200, outcome: 'delivered' }),
      ]);
      expect(s.logs.join('')).not.toContain(w.secret.slice(6));
    });

    it('retries a failing receiver with the same webhook-id until it answers 2xx; the attempts are readable', async () => {
      const r = await receiver((n) => (n <= 2 ? 500 : 204));
      const w = await hook(r.url);
      const { messages } = await s.ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));
      await until(() => r.received.length === 3);
      expect(new Set(r.received.map((x) => x.headers['webhook-id']))).toEqual(new Set(messages));
      for (const x of r.received) expect(() => new Webhook(w.secret).verify(x.body, x.headers as Record<string, string>)).not.toThrow();
      await until(async () => (await deliveries(w.id)).messages[0]?.state === 'delivered');
      const log = await deliveries(w.id);
      expect(log.attempts.map((a: { attempt: number; status: number; outcome: string }) => [a.attempt, a.status, a.outcome])).toEqual([
        [3, 204, 'delivered'],
        [2, 500, 'retry'],
        [1, 500, 'retry'],
      ]);
      expect(log.messages[0]).toMatchObject({ attempts: 3, next_attempt_at: null, delivered_at: expect.any(String) });
      const metrics = (await s.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toContain('receipts_webhook_attempts_total{outcome="retry"} 2');
      expect(metrics).toContain('receipts_webhook_attempts_total{outcome="delivered"} 1');
      expect(metrics).toContain('receipts_webhook_attempts_total{outcome="gave_up"} 0');
    });

    it('sends an alert only to the webhooks whose patterns take the namespace', async () => {
      const prod = await receiver();
      const other = await receiver();
      await hook(prod.url, ['acme/prod']);
      const o = await hook(other.url, ['acme/staging-*']);
      const { messages } = await s.ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));
      expect(messages).toHaveLength(1);
      await until(() => prod.received.length === 1);
      expect(other.received).toHaveLength(0);
      expect((await deliveries(o.id)).messages).toEqual([]);
    });

    it('a silent receiver holds up no other: its attempt times out and is retried, the other is delivered meanwhile', async () => {
      const silent = await receiver(() => 'hang');
      const fine = await receiver();
      const sw = await hook(silent.url);
      await hook(fine.url);
      await s.ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));
      await until(() => fine.received.length === 1 && silent.received.length >= 1);
      await until(async () => (await deliveries(sw.id)).attempts.length >= 1);
      expect((await deliveries(sw.id)).attempts[0]).toMatchObject({ status: null, error: 'no response within 400 ms', outcome: 'retry' });
    });

    it('deleting a webhook discards its undelivered messages and says how many', async () => {
      const r = await receiver(() => 503);
      const w = await hook(r.url);
      await s.ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));
      await until(() => r.received.length >= 1);
      const res = await s.app.inject({ method: 'DELETE', url: `/v1/webhooks/${w.id}`, headers: await admin() });
      expect(res.json()).toEqual({ id: w.id, deleted: true, discarded: 1 });
    });
  });

  describe('the retry window', () => {
    it('gives a message up once it is older than the window, and logs it so', async () => {
      const { ledger, cleanup } = await fresh();
      try {
        const r = await receiver(() => 500);
        const { webhook } = await ledger.webhooks.create('acme-inc', { url: r.url, namespaces: ['acme/*'] }, NOW);
        await ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now() - 25 * 3_600_000)); // queued 25 h ago
        const d = new WebhookDeliverer({ store: ledger.webhooks, policy: { allowPrivate: true }, ...FAST });
        await ledger.leadership.start(() => {});
        await until(() => ledger.leadership.role() === 'leader');
        d.start();
        await until(async () => (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!.messages[0]!.state === 'gave_up');
        await d.stop();
        const log = (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!;
        expect(log.attempts).toEqual([expect.objectContaining({ attempt: 1, status: 500, outcome: 'gave_up' })]);
        expect(await ledger.webhooks.due(Date.now() + 86_400_000, 10)).toEqual([]);
        expect(r.received).toHaveLength(1);
      } finally {
        await ledger.close();
        await cleanup();
      }
    });
  });

  describe('after a period ends', () => {
    const AFTER_MIDNIGHT = Date.parse('2026-03-12T00:10:00Z');
    const s = serverEachTest(fresh, {
      now: () => AFTER_MIDNIGHT,
      webhooks: { allowPrivate: true, delivery: FAST, detectIntervalMs: 20 },
    });

    it("still alerts a crossing in the last seconds of the period that ended (within the hour's grace)", async () => {
      const r = await receiver();
      const k = await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['record', 'read', 'admin'] as Right[]);
      const auth = { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' };
      const hook = { url: r.url, namespaces: ['acme/prod'] };
      expect((await s.app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth, payload: JSON.stringify(hook) })).statusCode).toBe(
        201,
      );
      const limit = {
        namespace: 'acme/prod',
        actions: ['chat'],
        measure: 'units',
        period: 'day',
        hard: 10,
        from: '2026-03-11T00:00:00Z',
        retroactive: true,
      };
      expect(
        (await s.app.inject({ method: 'PUT', url: '/v1/limits/chat-day', headers: auth, payload: JSON.stringify(limit) })).statusCode,
      ).toBe(201);
      const lastSecond = '2026-03-11T23:59:59.000Z';
      expect((await s.post({ events: [event({ action: 'chat', units: 10, ts: lastSecond })] })).statusCode).toBe(200);
      await until(() => r.received.length === 1);
      expect(JSON.parse(r.received[0]!.body).data).toMatchObject({
        period: { kind: 'day', from: '2026-03-11T00:00:00.000Z', to: '2026-03-12T00:00:00.000Z' },
        threshold: { name: 'hard' },
        usage: 10,
        measured_at: { at: '2026-03-12T00:10:00.000Z' },
      });
    });
  });

  describe('stopping', () => {
    it('cuts an attempt in flight short, unrecorded: the message stays due for whoever sends next, with its id', async () => {
      const { ledger, cleanup } = await fresh();
      try {
        const r = await receiver(() => 'hang');
        const { webhook } = await ledger.webhooks.create('acme-inc', { url: r.url, namespaces: ['acme/*'] }, NOW);
        const { messages } = await ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));
        const d = new WebhookDeliverer({ store: ledger.webhooks, policy: { allowPrivate: true }, ...FAST, timeoutMs: 600_000 });
        await ledger.leadership.start(() => {});
        await until(() => ledger.leadership.role() === 'leader');
        d.start();
        await until(() => r.received.length === 1);
        await d.stop(); // does not wait out the ten-minute deadline
        const log = (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!;
        expect(log.attempts).toEqual([]);
        expect(log.messages).toEqual([expect.objectContaining({ id: messages[0], state: 'pending', attempts: 0 })]);
        expect((await ledger.webhooks.due(Date.now(), 10)).map((m) => m.id)).toEqual(messages);
      } finally {
        await ledger.close();
        await cleanup();
      }
    });
  });

  describe('from a limit', () => {
    const s = serverEachTest(fresh, {
      now: () => NOW,
      webhooks: { allowPrivate: true, delivery: FAST, detectIntervalMs: 20 },
    });

    it("raises one alert per threshold crossed in the period, with the usage, the position and the receipts' link", async () => {
      const r = await receiver();
      const k = await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['record', 'read', 'admin'] as Right[]);
      const auth = { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' };
      const made = await s.app.inject({
        method: 'POST',
        url: '/v1/webhooks',
        headers: auth,
        payload: JSON.stringify({ url: r.url, namespaces: ['acme/prod'] }),
      });
      const w = made.json() as { id: string; secret: string };
      const limit = { namespace: 'acme/prod', actions: ['chat'], measure: 'units', period: 'month', hard: 10, soft: [50, 80] };
      expect(
        (await s.app.inject({ method: 'PUT', url: '/v1/limits/chat-month', headers: auth, payload: JSON.stringify(limit) })).statusCode,
      ).toBe(201);
      expect((await s.post({ events: [event({ action: 'chat', units: 6 }), event({ action: 'recall', units: 50 })] })).statusCode).toBe(
        200,
      );
      await until(() => r.received.length === 1);
      const first = JSON.parse(r.received[0]!.body);
      expect(first.data).toMatchObject({
        namespace: 'acme/prod',
        limit: { id: 'chat-month', hard: 10, actions: ['chat'], measure: 'units' },
        period: { kind: 'month', tz: 'UTC', from: '2026-03-01T00:00:00.000Z', to: '2026-04-01T00:00:00.000Z' },
        threshold: { name: 'soft:50', kind: 'soft', at: 5, percent: 50 },
        usage: 6,
        measured_at: { as_of: expect.any(Number) },
        receipts: '/v1/usage?namespace=acme%2Fprod&from=2026-03-01T00%3A00%3A00.000Z&to=2026-04-01T00%3A00%3A00.000Z&receipts=true',
      });
      // The link answers the receipts behind the number, through the same API.
      const behind = await s.get(`${first.data.receipts}&limit=1000`, { authorization: `Bearer ${k.key}` });
      expect(behind.statusCode).toBe(200);
      expect(behind.json().events.length).toBeGreaterThanOrEqual(1);
      // Past 80 % and the hard limit in one step: one alert each, and never again this period.
      expect((await s.post({ events: [event({ action: 'chat', units: 5 })] })).statusCode).toBe(200);
      await until(() => r.received.length === 3);
      await new Promise((done) => setTimeout(done, 200)); // several more detector runs
      const names = r.received.map((x) => JSON.parse(x.body).data.threshold.name);
      expect(names.sort()).toEqual(['hard', 'soft:50', 'soft:80']);
      expect(new Set(r.received.map((x) => x.headers['webhook-id'])).size).toBe(3);
      for (const x of r.received) expect(() => new Webhook(w.secret).verify(x.body, x.headers as Record<string, string>)).not.toThrow();
      expect(JSON.parse(r.received[2]!.body).data.usage).toBe(11);
      // What the customer's page shows: each threshold reached, when its alert was raised, and
      // that the alert reached the one webhook (delivery is recorded just after the receiver answers).
      await until(async () => {
        const u = (await s.get('/v1/limits/usage?namespace=acme/prod', { authorization: `Bearer ${k.key}` })).json();
        return u.limits[0].thresholds.every((t: { alerts: { delivered: number } | null }) => t.alerts?.delivered === 1);
      });
      const shown = (await s.get('/v1/limits/usage?namespace=acme/prod', { authorization: `Bearer ${k.key}` })).json();
      for (const t of shown.limits[0].thresholds) {
        expect(t).toMatchObject({ crossed: true, alerts: { sent_to: 1, delivered: 1 } });
        expect(Date.parse(t.alerted_at)).toBeGreaterThan(0);
      }
    });

    it('a threshold not reached shows no alert', async () => {
      const k = await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['record', 'read', 'admin'] as Right[]);
      const auth = { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' };
      const limit = { namespace: 'acme/prod', actions: ['chat'], measure: 'units', period: 'month', hard: 100, soft: [50] };
      expect(
        (await s.app.inject({ method: 'PUT', url: '/v1/limits/quiet', headers: auth, payload: JSON.stringify(limit) })).statusCode,
      ).toBe(201);
      expect((await s.post(event({ action: 'chat', units: 3 }))).statusCode).toBe(200);
      const shown = (await s.get('/v1/limits/usage?namespace=acme/prod', { authorization: `Bearer ${k.key}` })).json();
      expect(shown.limits[0].thresholds.map((t: object) => t)).toEqual([
        expect.objectContaining({ name: 'soft:50', crossed: false, alerted_at: null, alerts: null }),
        expect.objectContaining({ name: 'hard', crossed: false, alerted_at: null, alerts: null }),
      ]);
    });
  });
});
