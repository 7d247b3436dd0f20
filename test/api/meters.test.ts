// Meters over HTTP (issue 23, docs/api.md "Meters"): defining one needs the admin right and
// reading the read right; versions apply from a stated time and a past one only on purpose; bad
// input is refused naming the field and the rule, storing nothing; usage comes in windows of the
// customer's time zone (a day across a DST change is 23 hours, labelled with its offset), exact.
// Both engines, through fastify inject on the real service.
import { describe, expect, it } from 'vitest';
import type { Right } from '../../src/ledger/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { event, serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

// The service's clock: a few days after the US switch to daylight time (8 March 2026).
const NOW = Date.parse('2026-03-12T12:00:00Z');
const MAX = Number.MAX_SAFE_INTEGER;

forEachEngine((fresh) => {
  const s = serverEachTest(fresh, { now: () => NOW });

  const keyWith = async (rights: Right[], owner = 'acme-inc') => {
    const k = await s.ledger.keys.create(owner, ['acme/*'], undefined, rights);
    return { authorization: `Bearer ${k.key}` };
  };
  const put = (name: string, body: unknown, headers: Record<string, string>) =>
    s.app.inject({
      method: 'PUT',
      url: `/v1/meters/${name}`,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  const post = async (events: Array<Record<string, unknown>>) => {
    const res = await s.post({ events: events.map((e) => event(e)) });
    expect(res.statusCode).toBe(200);
  };

  describe('defining meters', () => {
    it('needs the admin right: 403 right_missing naming admin, and nothing is stored', async () => {
      const res = await put('tokens', { aggregation: 'sum' }, s.auth); // the default key: record and read
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toMatchObject({ code: 'right_missing', details: [{ path: 'authorization', rule: 'right:admin' }] });
      expect((await s.get('/v1/meters')).json()).toEqual({ meters: [] });
      // Reading needs read: a key with admin only may define but not read.
      const adminOnly = await keyWith(['admin']);
      expect((await put('tokens', { aggregation: 'sum' }, adminOnly)).statusCode).toBe(201);
      const denied = await s.get('/v1/meters/tokens', adminOnly);
      expect(denied.statusCode).toBe(403);
      expect(denied.json().error.details[0].rule).toBe('right:read');
    });

    it('keeps versions from a stated time: an unchanged PUT adds none, a past from needs retroactive and says so', async () => {
      const admin = await keyWith(['read', 'admin']);
      const first = await put('tokens', { aggregation: 'sum', actions: ['chat', 'recall', 'chat'] }, admin);
      expect(first.statusCode).toBe(201);
      expect(first.json()).toEqual({
        name: 'tokens',
        version: 1,
        aggregation: 'sum',
        actions: ['chat', 'recall'],
        from: new Date(NOW).toISOString(),
        from_ms: NOW,
        created_at: new Date(NOW).toISOString(),
        retroactive: false,
        created: true,
      });
      const same = await put('tokens', { aggregation: 'sum', actions: ['recall', 'chat'] }, admin);
      expect(same.statusCode).toBe(200);
      expect(same.json()).toMatchObject({ version: 1, created: false });

      const past = { aggregation: 'sum', from: '2026-03-01T00:00:00Z' };
      const refused = await put('tokens', past, admin);
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error).toMatchObject({ code: 'invalid_body', details: [{ path: 'from', rule: 'requires:retroactive=true' }] });
      const changed = await put('tokens', { ...past, retroactive: true }, admin);
      expect(changed.statusCode).toBe(201);
      expect(changed.json()).toMatchObject({ version: 2, actions: null, from: '2026-03-01T00:00:00.000Z', retroactive: true });
      // A later from (epoch ms) is not retroactive and needs no flag.
      expect((await put('tokens', { aggregation: 'sum', actions: ['chat'], from: NOW + 3_600_000 }, admin)).json()).toMatchObject({
        version: 3,
        retroactive: false,
      });

      const conflict = await put('tokens', { aggregation: 'max' }, admin);
      expect(conflict.statusCode).toBe(409);
      expect(conflict.json().error).toMatchObject({ code: 'meter_conflict', details: [{ path: 'aggregation', rule: 'unchanged' }] });

      const versions = (await s.get('/v1/meters/tokens', admin)).json();
      expect(versions.versions.map((v: { version: number; retroactive: boolean }) => [v.version, v.retroactive])).toEqual([
        [1, false],
        [2, true],
        [3, false],
      ]);
      await put('calls', { aggregation: 'count' }, admin);
      expect((await s.get('/v1/meters', admin)).json().meters.map((m: { name: string; version: number }) => [m.name, m.version])).toEqual([
        ['calls', 1],
        ['tokens', 3],
      ]);
      // Per owner: another owner's key sees none of them.
      const other = await keyWith(['read', 'admin'], 'other-inc');
      expect((await s.get('/v1/meters', other)).json()).toEqual({ meters: [] });
      expect((await s.get('/v1/meters/tokens', other)).statusCode).toBe(404);
    });

    it('refuses bad input naming the field and the rule, and stores nothing', async () => {
      const admin = await keyWith(['read', 'admin']);
      const cases: Array<[string, unknown, number, string, string]> = [
        ['Tokens', { aggregation: 'sum' }, 400, 'name', 'pattern:^[a-z0-9][a-z0-9_.-]{0,63}$'],
        ['x'.repeat(65), { aggregation: 'sum' }, 400, 'name', 'pattern:^[a-z0-9][a-z0-9_.-]{0,63}$'],
        ['tokens', { aggregation: 'avg' }, 400, 'aggregation', 'one_of:sum|count|max|min|unique_count|latest'],
        ['tokens', {}, 400, 'aggregation', 'one_of:sum|count|max|min|unique_count|latest'],
        ['tokens', { aggregation: 'sum', actions: Array.from({ length: 101 }, (_, i) => `a${i}`) }, 400, 'actions', 'max_items:100'],
        ['tokens', { aggregation: 'sum', actions: [] }, 400, 'actions', 'min_items:1'],
        ['tokens', { aggregation: 'sum', actions: ['Chat!'] }, 400, 'actions.0', 'pattern:^[a-z0-9][a-z0-9._-]*$'],
        ['tokens', { aggregation: 'sum', from: 'yesterday' }, 400, 'from', 'epoch_ms_or_rfc3339'],
        ['tokens', { aggregation: 'sum', retroactive: 'yes' }, 400, 'retroactive', 'type:boolean'],
        ['tokens', { aggregation: 'sum', colour: 'red' }, 400, 'colour', 'unknown_field'],
      ];
      for (const [name, body, status, path, rule] of cases) {
        const res = await put(name, body, admin);
        expect(res.statusCode, JSON.stringify(body)).toBe(status);
        const { error } = res.json();
        expect(error.details, JSON.stringify(body)).toContainEqual(expect.objectContaining({ path, rule }));
        expect(error.details.find((d: { path: string }) => d.path === path).message.startsWith(path)).toBe(true);
      }
      expect((await s.get('/v1/meters', admin)).json()).toEqual({ meters: [] });
    });
  });

  describe('a meter’s usage', () => {
    // Los Angeles: 7 March is 24 hours (-08:00), 8 March 23 hours (the clocks skip 02:00 to 03:00).
    const at = (iso: string) => Date.parse(iso);
    const setUp = async () => {
      const admin = await keyWith(['read', 'admin']);
      await post([
        { ts: at('2026-03-07T10:00:00-08:00'), action: 'chat', caller: 'ann', units: MAX },
        { ts: at('2026-03-07T11:00:00-08:00'), action: 'chat', caller: 'bob', units: 5 },
        { ts: at('2026-03-08T23:30:00-07:00'), action: 'chat', caller: 'ann', units: 7 },
        { ts: at('2026-03-08T23:30:00-07:00'), action: 'recall', caller: 'cy', units: 2 }, // same time, later in the ledger
        { ts: at('2026-03-09T01:00:00-07:00'), action: 'ping', caller: 'dan', units: 100 },
      ]);
      await sealAll(s.ledger, { maxEvents: 3 });
      await post([{ ts: at('2026-03-08T01:00:00-08:00'), action: 'chat', caller: 'bob', units: 1 }]); // late, unsealed
      for (const [name, aggregation] of [
        ['tokens', 'sum'],
        ['callers', 'unique_count'],
        ['last', 'latest'],
      ] as const)
        expect(
          (await put(name, { aggregation, actions: ['chat', 'recall'], from: '2026-03-01T00:00:00Z', retroactive: true }, admin))
            .statusCode,
        ).toBe(201);
      return admin;
    };
    const usage = (name: string, query: string, headers = s.auth) =>
      s.get(`/v1/meters/${name}/usage?namespace=acme/prod&${query}`, headers);
    const range = `from=${encodeURIComponent('2026-03-07T00:00:00-08:00')}&to=${encodeURIComponent('2026-03-10T00:00:00-07:00')}`;

    it('answers per local day with the zone’s offsets, exact beyond 2^53−1, empty windows omitted', async () => {
      await setUp();
      const res = await usage('tokens', `${range}&window=day&tz=America/Los_Angeles`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        meter: 'tokens',
        aggregation: 'sum',
        namespace: 'acme/prod',
        tz: 'America/Los_Angeles',
        window: 'day',
        from: '2026-03-07T00:00:00-08:00',
        to: '2026-03-10T00:00:00-07:00',
        windows: [
          { start: '2026-03-07T00:00:00-08:00', end: '2026-03-08T00:00:00-08:00', value: '9007199254740996' },
          { start: '2026-03-08T00:00:00-08:00', end: '2026-03-09T00:00:00-07:00', value: 10 },
        ],
        total: '9007199254741006',
      });
      // A from inside a window cuts it exactly.
      const cut = (
        await usage('tokens', `from=${at('2026-03-07T10:30:00-08:00')}&to=${at('2026-03-08T12:00:00-07:00')}&tz=America/Los_Angeles`)
      ).json();
      expect(cut.windows).toEqual([
        { start: '2026-03-07T10:30:00-08:00', end: '2026-03-08T00:00:00-08:00', value: 5 },
        { start: '2026-03-08T00:00:00-08:00', end: '2026-03-08T12:00:00-07:00', value: 1 },
      ]);
    });

    it('unique_count totals the distinct callers of the range (not a sum of windows); latest breaks ties by ledger order', async () => {
      await setUp();
      const uc = (await usage('callers', `${range}&window=day&tz=America/Los_Angeles`)).json();
      expect(uc.windows.map((w: { value: number }) => w.value)).toEqual([2, 3]); // ann, bob | bob, ann, cy
      expect(uc.total).toBe(3);
      const byCaller = (await usage('callers', `${range}&window=month&group_by=caller`)).json();
      expect(byCaller.windows.map((w: { group: string; value: number }) => [w.group, w.value])).toEqual([
        ['ann', 1],
        ['bob', 1],
        ['cy', 1],
      ]);
      const last = (await usage('last', `${range}&window=month&group_by=action`)).json();
      expect(last.windows.map((w: { group: string; value: number }) => [w.group, w.value])).toEqual([
        ['chat', 7],
        ['recall', 2],
      ]);
      expect(last.total).toBe(2); // chat and recall at the same instant: recall came later in the ledger
    });

    it('refuses bad questions naming the field, before any work', async () => {
      const admin = await setUp();
      const cases: Array<[string, string, number, string, string]> = [
        ['tokens', `${range}&tz=Mars/Olympus`, 400, 'tz', 'iana_time_zone'],
        ['tokens', `${range}&window=week`, 400, 'window', 'one_of:hour|day|month'],
        ['tokens', `${range}&group_by=region`, 400, 'group_by', 'one_of:caller|action'],
        ['tokens', `from=0&to=${at('2026-03-10T00:00:00Z')}&window=hour`, 400, 'window', 'max_entries:10000'],
        ['tokens', `to=${at('2026-03-10T00:00:00Z')}`, 400, 'from', 'required'],
        ['tokens', `from=5&to=5`, 400, 'from', 'before_to'],
        ['tokens', `${range}&colour=red`, 400, 'colour', 'unknown_parameter'],
      ];
      for (const [name, query, status, path, rule] of cases) {
        const res = await usage(name, query, admin);
        expect(res.statusCode, query).toBe(status);
        expect(res.json().error.details, query).toContainEqual(expect.objectContaining({ path, rule }));
      }
      expect((await usage('nope', range, admin)).statusCode).toBe(404);
      const forbidden = await s.get(`/v1/meters/tokens/usage?namespace=other/prod&${range}`, admin);
      expect(forbidden.statusCode).toBe(403);
      expect(forbidden.json().error.code).toBe('namespace_forbidden');
      const recorder = await keyWith(['record']);
      expect((await usage('tokens', range, recorder)).json().error.details[0].rule).toBe('right:read');
    });
  });
});
