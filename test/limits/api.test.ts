// Limits over HTTP (issue 25, docs/api.md "Limits"): defined, listed, versioned and deleted with
// the admin right; bad input refused naming the field and the rule, storing nothing; checks exact
// as of a ledger position (sealed and unsealed events alike), per period of the limit's zone; the
// race of two checks of the last unit bounded by what was in flight. Both engines, fastify inject.
import { describe, expect, it } from 'vitest';
import type { Right } from '../../src/ledger/index.ts';
import { openPostgresLedger } from '../../src/ledger/postgres/index.ts';
import { thresholdsCrossed } from '../../src/limits/check.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { buildService } from '../../src/service.ts';
import { event, serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

// The service's clock: 12 March 2026, 12:00 UTC (in Los Angeles, 05:00 the same day, PDT).
const NOW = Date.parse('2026-03-12T12:00:00Z');

forEachEngine((fresh, engine) => {
  const s = serverEachTest(fresh, { now: () => NOW });

  const keyWith = async (rights: Right[], owner = 'acme-inc', namespaces = ['acme/*']) => {
    const k = await s.ledger.keys.create(owner, namespaces, undefined, rights);
    return { authorization: `Bearer ${k.key}` };
  };
  const send = (method: 'PUT' | 'POST' | 'DELETE', url: string, body: unknown, headers: Record<string, string>) =>
    s.app.inject({
      method,
      url,
      headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { payload: JSON.stringify(body) }),
    });
  const record = async (events: Array<Record<string, unknown>>) => {
    const res = await s.post({ events: events.map((e) => event(e)) });
    expect(res.statusCode).toBe(200);
  };
  const chat = { namespace: 'acme/prod', actions: ['chat'], measure: 'units', period: 'month', hard: 10, soft: [50, 80] };

  describe('defining limits', () => {
    it('needs the admin right; checking needs read', async () => {
      const res = await send('PUT', '/v1/limits/chat-month', chat, s.auth); // record and read
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toMatchObject({ code: 'right_missing', details: [{ rule: 'right:admin' }] });
      const admin = await keyWith(['admin']);
      expect((await send('PUT', '/v1/limits/chat-month', chat, admin)).statusCode).toBe(201);
      const recordOnly = await keyWith(['record']);
      const check = await send('POST', '/v1/limits/check', { namespace: 'acme/prod', action: 'chat' }, recordOnly);
      expect(check.statusCode).toBe(403);
      expect(check.json().error.details[0].rule).toBe('right:read');
    });

    it('refuses bad input naming the field and the rule, and stores nothing', async () => {
      const admin = await keyWith(['admin']);
      const cases: Array<[unknown, string, string]> = [
        [{ ...chat, period: 'week' }, 'period', 'one_of:day|month|total'],
        [{ ...chat, tz: 'Mars/Olympus' }, 'tz', 'iana_time_zone'],
        [{ ...chat, hard: 0 }, 'hard', 'min:1'],
        [{ ...chat, soft: [120] }, 'soft.0', 'max:100'],
        [{ ...chat, measure: undefined }, 'measure', 'enum:units|events'],
        [{ ...chat, meter: 'tokens' }, 'actions', 'excludes:meter'],
        [{ namespace: 'acme/prod', meter: 'tokens', period: 'day', hard: 5 }, 'meter', 'exists'],
        [{ ...chat, hard: undefined, soft: undefined }, 'hard', 'required'],
        [{ ...chat, hard: undefined }, 'soft', 'requires:hard'],
        [{ ...chat, from: '2026-03-01T00:00:00Z' }, 'from', 'requires:retroactive=true'],
        [{ ...chat, color: 'red' }, 'color', 'unknown_field'],
      ];
      for (const [body, path, rule] of cases) {
        const res = await send('PUT', '/v1/limits/chat-month', body, admin);
        expect(res.statusCode, JSON.stringify(body)).toBe(400);
        expect(res.json().error.details, JSON.stringify(body)).toEqual(expect.arrayContaining([expect.objectContaining({ path, rule })]));
      }
      const badId = await send('PUT', '/v1/limits/Chat!', chat, admin);
      expect(badId.json().error.details[0]).toMatchObject({ path: 'id', rule: expect.stringMatching(/^pattern:/) });
      // A namespace the key does not cover.
      expect((await send('PUT', '/v1/limits/x', { ...chat, namespace: 'other/prod' }, admin)).json().error.code).toBe(
        'namespace_forbidden',
      );
      expect((await s.app.inject({ method: 'GET', url: '/v1/limits', headers: admin })).json()).toEqual({ limits: [] });
    });

    it('keeps versions: an unchanged PUT adds none, a change is a version, DELETE is one too and the limit stops applying', async () => {
      const admin = await keyWith(['admin', 'read']);
      const first = await send('PUT', '/v1/limits/chat-month', chat, admin);
      expect(first.json()).toMatchObject({ id: 'chat-month', version: 1, hard: 10, soft: [50, 80], tz: 'UTC', created: true });
      expect((await send('PUT', '/v1/limits/chat-month', chat, admin)).json()).toMatchObject({ version: 1, created: false });
      expect((await send('PUT', '/v1/limits/chat-month', { ...chat, hard: 20 }, admin)).json()).toMatchObject({ version: 2, hard: 20 });
      // A version from a later time: the check now still answers under hard 20.
      await send('PUT', '/v1/limits/chat-month', { ...chat, hard: 5, from: NOW + 86_400_000 }, admin);
      const listed = await s.app.inject({ method: 'GET', url: '/v1/limits?namespace=acme/prod', headers: admin });
      expect(listed.json().limits.map((l: { id: string; version: number }) => [l.id, l.version])).toEqual([['chat-month', 3]]);
      await record([{ action: 'chat', units: 4 }]);
      expect((await send('POST', '/v1/limits/check', { namespace: 'acme/prod', action: 'chat' }, admin)).json()).toMatchObject({
        allowed: true,
        remaining: 16,
      });
      const del = await send('DELETE', '/v1/limits/chat-month', undefined, admin);
      expect(del.json()).toMatchObject({ version: 4, deleted: true });
      expect((await send('DELETE', '/v1/limits/chat-month', undefined, admin)).statusCode).toBe(404);
      const versions = await s.app.inject({ method: 'GET', url: '/v1/limits/chat-month', headers: admin });
      expect(versions.json().versions).toHaveLength(4);
      expect((await s.app.inject({ method: 'GET', url: '/v1/limits', headers: admin })).json()).toEqual({ limits: [] });
      expect((await send('POST', '/v1/limits/check', { namespace: 'acme/prod', action: 'chat', units: 1000 }, admin)).json()).toMatchObject(
        {
          allowed: true,
          limit_id: null,
        },
      );
    });
  });

  describe('checks', () => {
    it('count sealed and unsealed usage of the period in the limit’s zone, exactly as of the ledger position', async () => {
      const admin = await keyWith(['admin', 'read']);
      await send('PUT', '/v1/limits/chat-month', { ...chat, tz: 'America/Los_Angeles' }, admin);
      // Before the period (1 March 07:59 UTC is still February in Los Angeles), another action, another namespace.
      await record([
        { action: 'chat', units: 5, ts: '2026-03-01T07:59:00Z' },
        { action: 'recall', units: 50 },
        { action: 'chat', units: 50, namespace: 'acme/dev' },
        { action: 'chat', units: 3, ts: '2026-03-01T08:00:00Z' },
      ]);
      await sealAll(s.ledger, { maxEvents: 1000 });
      await record([{ action: 'chat', units: 4 }]); // unsealed
      const asOf = await s.ledger.events.latestId();
      const fits = await send('POST', '/v1/limits/check', { namespace: 'acme/prod', action: 'chat', units: 3 }, admin);
      expect(fits.json()).toEqual({
        allowed: true,
        limit_id: 'chat-month',
        used: 7,
        remaining: 3,
        resets_at: '2026-04-01T07:00:00.000Z',
        as_of: asOf,
      });
      const batch = await send(
        'POST',
        '/v1/limits/check',
        {
          checks: [
            { namespace: 'acme/prod', action: 'chat', units: 4 },
            { namespace: 'acme/prod', action: 'recall', units: 1000 },
          ],
        },
        admin,
      );
      expect(batch.json().results).toEqual([
        expect.objectContaining({ allowed: false, limit_id: 'chat-month', used: 7, remaining: 3 }),
        { allowed: true, limit_id: null, used: null, remaining: null, resets_at: null, as_of: asOf },
      ]);
    });

    it('stay exact from one check to the next: what is recorded, sealed, amended or voided in between counts net, as usage does', async () => {
      // Checks keep a limit's sealed part and the tail read so far between rounds (src/limits/check.ts
      // UsageCache): each change below must still show in the next check's used.
      const admin = await keyWith(['admin', 'read', 'correct']);
      await send('PUT', '/v1/limits/chat-month', { ...chat, hard: 1000 }, admin);
      await send(
        'PUT',
        '/v1/limits/recall-day',
        { namespace: 'acme/prod', actions: ['recall'], measure: 'events', period: 'day', hard: 1000 },
        admin,
      );
      const ts = '2026-03-12T11:00:00Z';
      const used = async () => {
        const r = await send(
          'POST',
          '/v1/limits/check',
          {
            checks: [
              { namespace: 'acme/prod', action: 'chat' },
              { namespace: 'acme/prod', action: 'recall' },
            ],
          },
          admin,
        );
        const [c, e] = r.json().results;
        expect(c.as_of).toBe(await s.ledger.events.latestId());
        return [c.used, e.used];
      };
      const recorded = async (fields: Record<string, unknown>) => {
        const res = await s.post({ events: [event({ ts, ...fields })] });
        return res.json().results[0].id as number;
      };
      const correct = async (id: number, how: 'void' | 'amend', body: Record<string, unknown>) => {
        const res = await send('POST', `/v1/events/${id}/${how}`, body, admin);
        expect(res.statusCode, res.body).toBe(201);
        return res.json().id as number;
      };
      expect(await used()).toEqual([0, 0]);
      const sealedChat = await recorded({ action: 'chat', units: 10 });
      const sealedRecall = await recorded({ action: 'recall', units: 1 });
      expect(await used()).toEqual([10, 1]); // unsealed
      await sealAll(s.ledger, { maxEvents: 1000 });
      expect(await used()).toEqual([10, 1]); // now in the rollups
      const tailChat = await recorded({ action: 'chat', units: 5 });
      await recorded({ action: 'recall', units: 1 });
      expect(await used()).toEqual([15, 2]);
      const amended = await correct(sealedChat, 'amend', { request_id: 'fix-1', units: 4 }); // a rolled-up event, amended in the tail
      expect(await used()).toEqual([9, 2]);
      await correct(tailChat, 'void', { request_id: 'fix-2' });
      await correct(sealedRecall, 'void', { request_id: 'fix-3' });
      expect(await used()).toEqual([4, 1]);
      await sealAll(s.ledger, { maxEvents: 1000 });
      expect(await used()).toEqual([4, 1]); // the corrections in the rollups now
      await correct(amended, 'amend', { request_id: 'fix-4', units: 7 });
      expect(await used()).toEqual([7, 1]);
    });

    it('bounds a batch and refuses a namespace the key does not cover', async () => {
      const reader = await keyWith(['read']);
      const many = Array.from({ length: 101 }, () => ({ namespace: 'acme/prod', action: 'chat' }));
      const res = await send('POST', '/v1/limits/check', { checks: many }, reader);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details[0]).toMatchObject({ path: 'checks', rule: 'max_items:100' });
      const other = await send('POST', '/v1/limits/check', { namespace: 'other/prod', action: 'chat' }, reader);
      expect(other.json().error.code).toBe('namespace_forbidden');
    });

    it('counts events, or a meter, per day; and the thresholds crossed are what alerts are sent for', async () => {
      const admin = await keyWith(['admin', 'read']);
      await send('PUT', '/v1/limits/calls', { namespace: 'acme/prod', measure: 'events', period: 'day', hard: 3, soft_units: [2] }, admin);
      await send('PUT', '/v1/meters/tokens', { aggregation: 'sum', actions: ['chat'] }, admin);
      await send('PUT', '/v1/limits/tokens', { namespace: 'acme/prod', meter: 'tokens', period: 'total', hard: 100, soft: [10] }, admin);
      await record([
        { action: 'chat', units: 40 },
        { action: 'recall', units: 1 },
        { action: 'chat', units: 1, ts: NOW - 86_400_000 }, // yesterday: the day limit does not count it
      ]);
      const res = await send('POST', '/v1/limits/check', { namespace: 'acme/prod', action: 'chat', units: 61 }, admin);
      // The day's events (2 of 3) leave 1: this work is one event and fits. The meter counts from
      // its version's from (now): 40 of 100 leave 60 < 61.
      expect(res.json()).toMatchObject({ allowed: false, limit_id: 'tokens', used: 40, remaining: 60, resets_at: null });
      const limits = await s.ledger.limits.inForce('acme-inc', 'acme/prod', NOW);
      const calls = await thresholdsCrossed(s.ledger, 'acme-inc', limits.find((l) => l.id === 'calls')!, NOW);
      expect(calls).toMatchObject({
        used: 2,
        period: { from: Date.parse('2026-03-12T00:00:00Z'), to: Date.parse('2026-03-13T00:00:00Z') },
      });
      expect(calls.crossed.map((t) => t.name)).toEqual(['soft_units:2']);
      const tokens = await thresholdsCrossed(s.ledger, 'acme-inc', limits.find((l) => l.id === 'tokens')!, NOW);
      expect(tokens.crossed.map((t) => t.name)).toEqual(['soft:10']);
      // The customer's view, with the read right: every limit of the namespace, its usage and thresholds.
      const reader = await keyWith(['read']);
      const status = await s.app.inject({ method: 'GET', url: '/v1/limits/usage?namespace=acme/prod', headers: reader });
      expect(status.statusCode).toBe(200);
      expect(status.json()).toMatchObject({
        namespace: 'acme/prod',
        as_of: await s.ledger.events.latestId(),
        limits: [
          {
            id: 'calls',
            used: 2,
            remaining: 1,
            from: '2026-03-12T00:00:00.000Z',
            to: '2026-03-13T00:00:00.000Z',
            thresholds: [
              { name: 'soft_units:2', crossed: true },
              { name: 'hard', at: 3, crossed: false },
            ],
          },
          { id: 'tokens', used: 40, remaining: 60, to: null, thresholds: [{ name: 'soft:10', at: 10, crossed: true }, { name: 'hard' }] },
        ],
      });
      const other = await s.app.inject({ method: 'GET', url: '/v1/limits/usage?namespace=other/prod', headers: reader });
      expect(other.json().error.code).toBe('namespace_forbidden');
      // Its path is not a limit id.
      const reserved = await send('PUT', '/v1/limits/usage', chat, admin);
      expect(reserved.json().error.details[0]).toMatchObject({ path: 'id', rule: 'reserved:check|usage' });
    });

    it.runIf(engine === 'postgres')(
      'on PostgreSQL a check on one instance counts what another instance acknowledged, unsealed',
      async () => {
        const admin = await keyWith(['admin', 'read']);
        await send('PUT', '/v1/limits/chat-month', chat, admin);
        // A second instance on the same database: its own pool, its own service.
        const other = await openPostgresLedger(s.ledger.location, { instanceId: 'second', leaseMs: 600 });
        const second = buildService({ ledger: other, now: () => NOW });
        try {
          await record([{ action: 'chat', units: 6 }]); // acknowledged by the first instance
          const res = await second.inject({
            method: 'POST',
            url: '/v1/limits/check',
            headers: { ...admin, 'content-type': 'application/json' },
            payload: JSON.stringify({ namespace: 'acme/prod', action: 'chat', units: 5 }),
          });
          expect(res.json()).toMatchObject({ allowed: false, used: 6, remaining: 4, as_of: await s.ledger.events.latestId() });
        } finally {
          await second.close();
          await other.close();
        }
      },
    );

    it('two checks of the last unit race: both pass, and the overshoot is at most what was in flight; the next check refuses', async () => {
      const admin = await keyWith(['admin', 'read']);
      await send('PUT', '/v1/limits/chat-month', chat, admin);
      await record([{ action: 'chat', units: 9 }]); // one unit left
      const inFlight = [1, 1, 1];
      // Checked together, before any of the work is recorded: each sees the same position.
      const answers = await Promise.all(
        inFlight.map((units) => send('POST', '/v1/limits/check', { namespace: 'acme/prod', action: 'chat', units }, admin)),
      );
      expect(answers.map((a) => a.json().allowed)).toEqual([true, true, true]);
      await record(inFlight.map((units) => ({ action: 'chat', units })));
      const after = (await send('POST', '/v1/limits/check', { namespace: 'acme/prod', action: 'chat', units: 0 }, admin)).json();
      expect(after.allowed).toBe(false);
      // used − hard ≤ (units admitted concurrently) − (what was left before them).
      expect(after.used - chat.hard).toBeLessThanOrEqual(inFlight.reduce((a, b) => a + b, 0) - 1);
      expect(after.used).toBe(12);
    });
  });
});
