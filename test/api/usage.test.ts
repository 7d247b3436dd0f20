import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GROUP_BY } from '../../src/ledger/index.ts';
import { usageSql } from '../../src/ledger/sqlite/usage.ts';
import { event, testServerOn, type TestServer } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, engine) => {
  let s: TestServer;
  const H = 3600_000;
  // A fixed hour boundary inside the accepted window.
  const base = Math.floor((Date.now() - 48 * H) / (24 * H)) * 24 * H;

  beforeEach(async () => {
    s = await testServerOn(fresh);
    const res = await s.post({
      events: [
        event({ action: 'recall', caller: 'alice', units: 3, ts: base }),
        event({ action: 'recall', caller: 'bob', units: 4, ts: base + 10 * 60_000 }),
        event({ action: 'extract', caller: 'alice', units: 10, ts: base + H + 1 }),
        event({ action: 'chat', caller: 'carol', units: 100, ts: base + 24 * H }), // the next day
        event({ namespace: 'acme/other', action: 'recall', units: 1000, ts: base }),
      ],
    });
    expect(res.json().results.every((r: { status: string }) => r.status === 'created')).toBe(true);
  });
  afterEach(async () => {
    await s.close();
  });

  const usage = async (q: string) => {
    const res = await s.get(`/v1/usage?${q}`);
    return { status: res.statusCode, body: res.json() };
  };

  describe('GET /v1/usage', () => {
    it('sums counts and units per action over [from, to), with totals', async () => {
      const { status, body } = await usage(`namespace=acme/prod&from=${base}&to=${base + 24 * H}`);
      expect(status).toBe(200);
      expect(body.groups).toEqual([
        { key: 'extract', events: 1, units: 10, billable_events: 1, billable_units: 10 },
        { key: 'recall', events: 2, units: 7, billable_events: 2, billable_units: 7 },
      ]);
      expect(body.totals).toEqual({ events: 3, units: 17, billable_events: 3, billable_units: 17 });
    });

    it('includes from and excludes to', async () => {
      expect((await usage(`namespace=acme/prod&from=${base}&to=${base + 1}`)).body.totals).toEqual({ events: 1, units: 3, billable_events: 1, billable_units: 3 });
      expect((await usage(`namespace=acme/prod&from=${base + 1}&to=${base + 10 * 60_000}`)).body.totals).toEqual({ events: 0, units: 0, billable_events: 0, billable_units: 0 });
    });

    it('accepts RFC 3339 bounds', async () => {
      const from = new Date(base).toISOString();
      const to = new Date(base + H).toISOString();
      expect((await usage(`namespace=acme/prod&from=${from}&to=${to}`)).body.totals).toEqual({ events: 2, units: 7, billable_events: 2, billable_units: 7 });
    });

    it('groups by caller, hour and day (UTC)', async () => {
      const q = `namespace=acme/prod&from=${base}&to=${base + 48 * H}`;
      expect((await usage(`${q}&group_by=caller`)).body.groups).toEqual([
        { key: 'alice', events: 2, units: 13, billable_events: 2, billable_units: 13 },
        { key: 'bob', events: 1, units: 4, billable_events: 1, billable_units: 4 },
        { key: 'carol', events: 1, units: 100, billable_events: 1, billable_units: 100 },
      ]);
      expect((await usage(`${q}&group_by=hour`)).body.groups).toEqual([
        { key: new Date(base).toISOString(), events: 2, units: 7, billable_events: 2, billable_units: 7 },
        { key: new Date(base + H).toISOString(), events: 1, units: 10, billable_events: 1, billable_units: 10 },
        { key: new Date(base + 24 * H).toISOString(), events: 1, units: 100, billable_events: 1, billable_units: 100 },
      ]);
      expect((await usage(`${q}&group_by=day`)).body.groups).toEqual([
        { key: new Date(base).toISOString(), events: 3, units: 17, billable_events: 3, billable_units: 17 },
        { key: new Date(base + 24 * H).toISOString(), events: 1, units: 100, billable_events: 1, billable_units: 100 },
      ]);
    });

    it('keeps unit sums exact beyond 2^53', async () => {
      await s.post({ events: [event({ namespace: 'acme/big', units: Number.MAX_SAFE_INTEGER }), event({ namespace: 'acme/big', units: Number.MAX_SAFE_INTEGER })] });
      const { body } = await usage('namespace=acme/big');
      expect(body.totals.units).toBe((2n * BigInt(Number.MAX_SAFE_INTEGER)).toString());
    });

    it('answers 403 for a namespace the key may not read, 401 without a key', async () => {
      const res = await usage('namespace=globex/prod');
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('namespace_forbidden');
      expect((await s.get('/v1/usage?namespace=acme/prod', {})).statusCode).toBe(401);
    });

    it.each([
      ['no namespace', 'from=0', 'namespace', 'required'],
      ['a bad group_by', 'namespace=acme/prod&group_by=week', 'group_by', 'one_of:action|caller|hour|day'],
      ['a bad from', 'namespace=acme/prod&from=yesterday', 'from', 'epoch_ms_or_rfc3339'],
      ['from after to', 'namespace=acme/prod&from=10&to=5', 'from', 'before_to'],
      ['an unknown parameter', 'namespace=acme/prod&page=5', 'page', 'unknown_parameter'],
      ['limit without receipts', 'namespace=acme/prod&limit=5', 'limit', 'requires:receipts=true'],
    ])('answers 400 for %s, naming the parameter and rule', async (_n, q, path, rule) => {
      const res = await usage(q);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_query');
      expect(res.body.error.details).toContainEqual(expect.objectContaining({ path, rule }));
    });

    it.each([
      ['a * pattern', 'namespace=acme/*', /namespace "acme\/\*" is not a namespace: it must be 1 to 128 characters of .*a \* pattern is for keys/],
      ['upper case', 'namespace=Acme/prod', /namespace "Acme\/prod" is not a namespace/],
      ['an empty item', 'namespace=acme/prod,', /namespace "" is not a namespace/],
      ['one bad item among good ones', 'namespace=acme/prod&namespace=acme/%20x', /namespace "acme\/ x" is not a namespace/],
      ['129 characters', `namespace=acme/${'x'.repeat(124)}`, /is not a namespace: it must be 1 to 128 characters/],
    ])('answers 400 naming the namespace field for %s (not 200 with zeros)', async (_n, q, message) => {
      const res = await usage(q);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_query');
      expect(res.body.error.details).toContainEqual({ path: 'namespace', rule: 'pattern:^[a-z0-9][a-z0-9._/-]*$', message: expect.stringMatching(message) });
    });

    it('reads several namespaces at once (a comma list or repeated): each, groups merged, overall totals', async () => {
      const expected = {
        namespaces: ['acme/prod', 'acme/other'],
        from: base,
        to: base + 24 * H,
        group_by: 'action',
        groups: [
          { key: 'extract', events: 1, units: 10, billable_events: 1, billable_units: 10 },
          { key: 'recall', events: 3, units: 1007, billable_events: 3, billable_units: 1007 },
        ],
        totals: { events: 4, units: 1017, billable_events: 4, billable_units: 1017 },
        by_namespace: [
          { namespace: 'acme/prod', groups: [{ key: 'extract', events: 1, units: 10, billable_events: 1, billable_units: 10 }, { key: 'recall', events: 2, units: 7, billable_events: 2, billable_units: 7 }], totals: { events: 3, units: 17, billable_events: 3, billable_units: 17 } },
          { namespace: 'acme/other', groups: [{ key: 'recall', events: 1, units: 1000, billable_events: 1, billable_units: 1000 }], totals: { events: 1, units: 1000, billable_events: 1, billable_units: 1000 } },
        ],
      };
      const range = `from=${base}&to=${base + 24 * H}`;
      expect(await usage(`namespace=acme/prod,acme/other&${range}`)).toEqual({ status: 200, body: expected });
      expect(await usage(`namespace=acme/prod&namespace=acme/other&${range}`)).toEqual({ status: 200, body: expected });
      // Listed twice counts once; a namespace without events is there with zeros.
      const dup = await usage(`namespace=acme/prod,acme/prod,acme/none&${range}`);
      expect(dup.body.namespaces).toEqual(['acme/prod', 'acme/none']);
      expect(dup.body.totals).toEqual({ events: 3, units: 17, billable_events: 3, billable_units: 17 });
      expect(dup.body.by_namespace[1]).toEqual({ namespace: 'acme/none', groups: [], totals: { events: 0, units: 0, billable_events: 0, billable_units: 0 } });
      // One namespace keeps the single shape.
      expect((await usage(`namespace=acme/prod&${range}`)).body).toMatchObject({ namespace: 'acme/prod', totals: { events: 3, units: 17, billable_events: 3, billable_units: 17 } });
    });

    it('checks every listed namespace against the key, and keeps sums exact across namespaces', async () => {
      const res = await usage('namespace=acme/prod,globex/prod');
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'namespace_forbidden', message: expect.stringMatching(/may not read namespace "globex\/prod"; it allows acme\/\*/) });
      await s.post({ events: [event({ namespace: 'acme/big1', units: Number.MAX_SAFE_INTEGER }), event({ namespace: 'acme/big2', units: Number.MAX_SAFE_INTEGER })] });
      expect((await usage('namespace=acme/big1,acme/big2')).body.totals.units).toBe((2n * BigInt(Number.MAX_SAFE_INTEGER)).toString());
      const many = await usage(`namespace=${Array.from({ length: 101 }, (_, i) => `acme/n${i}`).join(',')}`);
      expect(many.status).toBe(400);
      expect(many.body.error.details[0]).toMatchObject({ path: 'namespace', rule: 'max_items:100' });
      const paged = await usage('namespace=acme/prod,acme/other&receipts=true');
      expect(paged.status).toBe(400);
      expect(paged.body.error.details[0]).toMatchObject({ path: 'receipts', rule: 'one_namespace' });
    });

    it('says what is wrong in sentences, never in zod words', async () => {
      const cases: Array<[string, RegExp]> = [
        ['from=0', /^namespace is required/],
        ['namespace=acme/prod&page=5&size=2', /^page is not a known parameter; known parameters: namespace, from, to, group_by/],
        ['namespace=acme/prod&group_by=week', /^group_by must be one of action, caller, hour, day$/],
        ['namespace=acme/prod&receipts=yes', /^receipts must be one of true, false$/],
        ['namespace=acme/prod&receipts=true&limit=0', /^limit must be at least 1$/],
        ['namespace=acme/prod&receipts=true&limit=x', /^limit must be a non-negative integer$/],
        ['namespace=acme/prod&from=1&from=2', /^from must be given once$/],
        ['namespace=acme/prod&from=yesterday', /^from must be epoch milliseconds or an RFC 3339 date-time$/],
      ];
      for (const [q, message] of cases) {
        const res = await usage(q);
        expect(res.status, q).toBe(400);
        expect(res.body.error.details[0].message, q).toMatch(message);
        expect(res.body.error.message, q).not.toMatch(/Invalid input|expected string|received undefined|Unrecognized key/);
      }
    });

    it.runIf(engine === 'sqlite').each(GROUP_BY)('uses the (namespace, ts) index when grouping by %s (EXPLAIN QUERY PLAN)', (g) => {
      const plan = s.db().prepare(`EXPLAIN QUERY PLAN ${usageSql(g)}`).all('acme/prod', 0, 1, 10) as Array<{ detail: string }>;
      const details = plan.map((p) => p.detail).join('\n');
      expect(details).toMatch(/SEARCH events USING INDEX events_namespace_ts \(namespace=\? AND ts>\? AND ts<\?\)/);
      expect(details).not.toMatch(/SCAN events/);
    });
  });

  describe('operations', () => {
    it('GET /healthz reports the database reachable, and 503 when it is not', async () => {
      const ok = await s.app.inject({ method: 'GET', url: '/healthz' });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({ status: 'ok', role: 'leader', checks: { database: 'ok', anchoring: 'off' }, ledger: { engine } });
      await s.ledger.close();
      const down = await s.app.inject({ method: 'GET', url: '/healthz' });
      expect(down.statusCode).toBe(503);
      expect(down.json().checks.database).toBe('unreachable');
    });

    it('GET /metrics exposes requests, events by result, commit batch sizes and latency', async () => {
      await s.post({ events: [event(), event({ units: -1 })] });
      const res = await s.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/plain/);
      const text = res.body;
      expect(text).toMatch(/receipts_http_requests_total\{method="POST",route="\/v1\/events",status="200"\} 2/);
      expect(text).toMatch(/receipts_ingest_events_total\{result="created"\} 6/);
      expect(text).toMatch(/receipts_ingest_events_total\{result="rejected"\} 1/);
      expect(text).toMatch(/receipts_ledger_commit_batch_events_count 2/);
      expect(text).toMatch(/receipts_ledger_commit_batch_events_sum 6/);
      expect(text).toMatch(/receipts_http_request_duration_seconds_bucket\{le="0.1",method="POST",route="\/v1\/events"\} 2/);
      expect(text).toMatch(/process_resident_memory_bytes/);
    });
  });
});
