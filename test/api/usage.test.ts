import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventsSql, rollupSql, tailSql } from '../../src/ledger/sqlite/usage.ts';
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
      expect((await usage(`namespace=acme/prod&from=${base}&to=${base + 1}`)).body.totals).toEqual({
        events: 1,
        units: 3,
        billable_events: 1,
        billable_units: 3,
      });
      expect((await usage(`namespace=acme/prod&from=${base + 1}&to=${base + 10 * 60_000}`)).body.totals).toEqual({
        events: 0,
        units: 0,
        billable_events: 0,
        billable_units: 0,
      });
    });

    it('accepts RFC 3339 bounds', async () => {
      const from = new Date(base).toISOString();
      const to = new Date(base + H).toISOString();
      expect((await usage(`namespace=acme/prod&from=${from}&to=${to}`)).body.totals).toEqual({
        events: 2,
        units: 7,
        billable_events: 2,
        billable_units: 7,
      });
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
      await s.post({
        events: [
          event({ namespace: 'acme/big', units: Number.MAX_SAFE_INTEGER }),
          event({ namespace: 'acme/big', units: Number.MAX_SAFE_INTEGER }),
        ],
      });
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
      ['a bad group_by', 'namespace=acme/prod&group_by=week', 'group_by', 'one_of:action|caller|hour|day|month'],
      ['an unknown time zone', 'namespace=acme/prod&group_by=day&tz=Mars/Olympus_Mons', 'tz', 'iana_time_zone'],
      ['a UTC offset for a time zone', 'namespace=acme/prod&group_by=day&tz=%2B02:00', 'tz', 'iana_time_zone'],
      ['a bad from', 'namespace=acme/prod&from=yesterday', 'from', 'epoch_ms_or_rfc3339'],
      ['from after to', 'namespace=acme/prod&from=10&to=5', 'from', 'before_to'],
      ['an unknown parameter', 'namespace=acme/prod&page=5', 'page', 'unknown_parameter'],
      ['order without receipts', 'namespace=acme/prod&order=desc', 'order', 'requires:receipts=true'],
      ['more than 10,000 groups a page', 'namespace=acme/prod&limit=10001', 'limit', 'max:10000'],
      ['more than 1,000 receipts a page', 'namespace=acme/prod&receipts=true&limit=1001', 'limit', 'max:1000'],
      [
        'a page of 100 groups for each of 100 namespaces',
        `namespace=${Array.from({ length: 100 }, (_, i) => `acme/n${i}`).join(',')}&limit=100`,
        'limit',
        'max:99',
      ],
      ['a cursor nobody issued', 'namespace=acme/prod&cursor=abc', 'cursor', 'issued_cursor'],
    ])('answers 400 for %s, naming the parameter and rule', async (_n, q, path, rule) => {
      const res = await usage(q);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_query');
      expect(res.body.error.details).toContainEqual(expect.objectContaining({ path, rule }));
    });

    it.each([
      [
        'a * pattern',
        'namespace=acme/*',
        /namespace "acme\/\*" is not a namespace: it must be 1 to 128 characters of .*a \* pattern is for keys/,
      ],
      ['upper case', 'namespace=Acme/prod', /namespace "Acme\/prod" is not a namespace/],
      ['an empty item', 'namespace=acme/prod,', /namespace "" is not a namespace/],
      ['one bad item among good ones', 'namespace=acme/prod&namespace=acme/%20x', /namespace "acme\/ x" is not a namespace/],
      ['129 characters', `namespace=acme/${'x'.repeat(124)}`, /is not a namespace: it must be 1 to 128 characters/],
    ])('answers 400 naming the namespace field for %s (not 200 with zeros)', async (_n, q, message) => {
      const res = await usage(q);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_query');
      expect(res.body.error.details).toContainEqual({
        path: 'namespace',
        rule: 'pattern:^[a-z0-9][a-z0-9._/-]*$',
        message: expect.stringMatching(message),
      });
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
          {
            namespace: 'acme/prod',
            groups: [
              { key: 'extract', events: 1, units: 10, billable_events: 1, billable_units: 10 },
              { key: 'recall', events: 2, units: 7, billable_events: 2, billable_units: 7 },
            ],
            totals: { events: 3, units: 17, billable_events: 3, billable_units: 17 },
          },
          {
            namespace: 'acme/other',
            groups: [{ key: 'recall', events: 1, units: 1000, billable_events: 1, billable_units: 1000 }],
            totals: { events: 1, units: 1000, billable_events: 1, billable_units: 1000 },
          },
        ],
        // Fewer groups than a page: all of them, and no next page.
        next_cursor: null,
      };
      const range = `from=${base}&to=${base + 24 * H}`;
      expect(await usage(`namespace=acme/prod,acme/other&${range}`)).toEqual({ status: 200, body: expected });
      expect(await usage(`namespace=acme/prod&namespace=acme/other&${range}`)).toEqual({ status: 200, body: expected });
      // Listed twice counts once; a namespace without events is there with zeros.
      const dup = await usage(`namespace=acme/prod,acme/prod,acme/none&${range}`);
      expect(dup.body.namespaces).toEqual(['acme/prod', 'acme/none']);
      expect(dup.body.totals).toEqual({ events: 3, units: 17, billable_events: 3, billable_units: 17 });
      expect(dup.body.by_namespace[1]).toEqual({
        namespace: 'acme/none',
        groups: [],
        totals: { events: 0, units: 0, billable_events: 0, billable_units: 0 },
      });
      // One namespace keeps the single shape.
      expect((await usage(`namespace=acme/prod&${range}`)).body).toMatchObject({
        namespace: 'acme/prod',
        totals: { events: 3, units: 17, billable_events: 3, billable_units: 17 },
      });
    });

    it('checks every listed namespace against the key, and keeps sums exact across namespaces', async () => {
      const res = await usage('namespace=acme/prod,globex/prod');
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({
        code: 'namespace_forbidden',
        message: expect.stringMatching(/may not read namespace "globex\/prod"; it allows acme\/\*/),
      });
      await s.post({
        events: [
          event({ namespace: 'acme/big1', units: Number.MAX_SAFE_INTEGER }),
          event({ namespace: 'acme/big2', units: Number.MAX_SAFE_INTEGER }),
        ],
      });
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
        ['namespace=acme/prod&group_by=week', /^group_by must be one of action, caller, hour, day, month$/],
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

    it.runIf(engine === 'sqlite').each(['action', 'caller', 'bucket', 'ts'] as const)(
      'reads every part of a usage question by %s through an index, never a full scan (EXPLAIN QUERY PLAN)',
      (key) => {
        const plan = (text: string, params: unknown[]) =>
          (
            s
              .db()
              .prepare(`EXPLAIN QUERY PLAN ${text}`)
              .all(...params) as Array<{ detail: string }>
          )
            .map((p) => p.detail)
            .join('\n');
        const events = plan(eventsSql(key, '1'), ['acme/prod', 0, 1, 10]);
        expect(events).toMatch(/SEARCH events USING INDEX events_namespace_ts \(namespace=\? AND ts>\? AND ts<\?\)/);
        // The tail reads along the rowid past the rollups: bounded by what is not rolled up.
        const tail = plan(tailSql(key, '1'), [5, 10, 10, 5, 'acme/prod', 0, 1]);
        expect(tail).toMatch(/SEARCH events USING INTEGER PRIMARY KEY \(rowid>\?\)/);
        for (const table of ['buckets', 'callers'] as const) {
          const rollup = plan(rollupSql(table, key), ['acme/prod', 0, 1]);
          expect(rollup).toMatch(
            /SEARCH usage_(buckets|caller_days) USING PRIMARY KEY \(namespace=\? AND (bucket|day)>\? AND (bucket|day)<\?\)/,
          );
        }
        for (const text of [events, tail]) expect(text).not.toMatch(/SCAN (events|usage_)/);
      },
    );
  });

  describe('GET /v1/usage groups, paged', () => {
    type Group = { key: string; events: number; units: number | string; billable_events: number; billable_units: number | string };
    type Page = {
      groups: Group[];
      totals: Group;
      next_cursor: string | null;
      as_of_seq?: number;
      by_namespace?: Array<{ namespace: string; groups: Group[]; totals: Group }>;
    };
    // Keys the engines must order alike (UTF-8 bytes): upper before lower case, accents and an
    // emoji (a surrogate pair in JS, whose UTF-16 order differs from UTF-8 against U+FFxx).
    const odd = ['Zed', 'alice', 'bob', 'é', 'ｚ', '😀', 'a b', 'a-b'];

    async function seed() {
      added = 0;
      const events = [
        ...Array.from({ length: 23 }, (_, i) => event({ caller: `c${String(i).padStart(2, '0')}`, units: i + 1, ts: base + i * H })),
        ...odd.map((caller, i) => event({ caller, units: 100 + i, ts: base + i })),
        ...Array.from({ length: 9 }, (_, i) =>
          event({ namespace: 'acme/other', caller: i % 2 ? `c${String(i).padStart(2, '0')}` : `z${i}`, units: 7, ts: base + i * 3 * H }),
        ),
      ];
      expect((await s.post({ events })).json().results.every((r: { status: string }) => r.status === 'created')).toBe(true);
    }

    /** Every page of q through next_cursor, posting more events after each page. */
    async function pages(q: string, between: () => Promise<void> = async () => {}): Promise<Page[]> {
      const out: Page[] = [];
      let cursor: string | null = null;
      do {
        const { status, body } = await usage(`${q}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(status, JSON.stringify(body)).toBe(200);
        out.push(body);
        cursor = body.next_cursor;
        await between();
      } while (cursor && out.length < 100);
      return out;
    }

    let added = 0;
    /** After each page: new callers, before and after the current key, and more of one already listed. */
    const addMore = async () => {
      const res = await s.post({
        events: [
          event({ caller: `a${added}`, units: 5, ts: base + 1 }),
          event({ caller: 'zz', units: 5, ts: base + 2 }),
          event({ caller: 'c05', units: 5, ts: base + 3 }),
        ],
      });
      expect(res.statusCode).toBe(200);
      added++;
    };

    it.each(['caller', 'hour', 'action'] as const)(
      'by %s: all pages together are the unpaged groups, every page has the same totals, while events keep arriving',
      async (g) => {
        await seed();
        const q = `namespace=acme/prod&group_by=${g}&from=${base}&to=${base + 48 * H}`;
        const whole: Page = (await usage(q)).body;
        expect(whole.next_cursor).toBeNull();
        expect(whole.as_of_seq).toBeUndefined();
        const all = await pages(`${q}&limit=4`, addMore);
        expect(all.length).toBe(Math.ceil(whole.groups.length / 4));
        expect(all.flatMap((p) => p.groups)).toEqual(whole.groups);
        for (const p of all) {
          expect(p.totals).toEqual(whole.totals);
          expect(p.groups.length).toBeLessThanOrEqual(4);
          expect(p.as_of_seq).toBe(all[0]!.as_of_seq);
        }
        expect(all.at(-1)!.next_cursor).toBeNull();
        // A fresh query sees what arrived meanwhile.
        expect((await usage(q)).body.totals.events).toBe(whole.totals.events + 3 * added);
      },
    );

    it("by caller over several namespaces: merged groups, each namespace's groups and the totals match the unpaged answer", async () => {
      await seed();
      const q = `namespace=acme/prod,acme/other&group_by=caller&from=${base}&to=${base + 48 * H}`;
      const whole: Page = (await usage(q)).body;
      // c01, c03, c05, c07 are in both namespaces, alice and bob were there before.
      expect(whole.groups.length).toBeGreaterThan(30);
      const all = await pages(`${q}&limit=5`, addMore);
      expect(all.length).toBeGreaterThan(3);
      expect(all.flatMap((p) => p.groups)).toEqual(whole.groups);
      for (const [i, ns] of ['acme/prod', 'acme/other'].entries()) {
        expect(all.flatMap((p) => p.by_namespace![i]!.groups)).toEqual(whole.by_namespace![i]!.groups);
        for (const p of all) expect(p.by_namespace![i]!.totals).toEqual(whole.by_namespace![i]!.totals);
        expect(whole.by_namespace![i]!.namespace).toBe(ns);
      }
      for (const p of all) {
        expect(p.totals).toEqual(whole.totals);
        expect(p.groups.length).toBeLessThanOrEqual(5);
      }
    });

    it('keys come in UTF-8 byte order on both engines', async () => {
      await seed();
      const keys = (await usage(`namespace=acme/prod&group_by=caller`)).body.groups.map((g: Group) => g.key);
      expect(keys).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      expect(keys.indexOf('ｚ')).toBeLessThan(keys.indexOf('😀')); // U+FF5A before U+1F600 in UTF-8, not in UTF-16
    });

    it('a cursor belongs to its query: another group_by, namespace or range is refused, naming the cursor', async () => {
      await seed();
      const first = (await usage('namespace=acme/prod&group_by=caller&limit=2')).body as Page;
      expect(first.next_cursor).toEqual(expect.any(String));
      for (const q of [
        'namespace=acme/prod&group_by=action',
        'namespace=acme/other&group_by=caller',
        `namespace=acme/prod&group_by=caller&from=${base}`,
      ]) {
        const res = await usage(`${q}&cursor=${first.next_cursor}`);
        expect(res.status, q).toBe(400);
        expect(res.body.error.details[0]).toMatchObject({ path: 'cursor', rule: 'same_query' });
      }
      const receiptsPage = await usage('namespace=acme/prod&receipts=true&limit=2');
      const wrongWay = await usage(`namespace=acme/prod&cursor=${receiptsPage.body.next_cursor}`);
      expect(wrongWay.body.error.details[0]).toMatchObject({ path: 'cursor', rule: 'requires:receipts=true' });
      const otherWay = await usage(`namespace=acme/prod&group_by=caller&receipts=true&cursor=${first.next_cursor}`);
      expect(otherWay.body.error.details[0]).toMatchObject({ path: 'cursor', rule: 'requires:receipts=false' });
    });

    it('receipts=true carries at most 1,000 groups and a groups_next_cursor to the rest, of the same snapshot', async () => {
      for (let done = 0; done < 1003; done += 1000) {
        const events = Array.from({ length: Math.min(1000, 1003 - done) }, (_, i) =>
          event({ namespace: 'acme/many', caller: `u${String(done + i).padStart(5, '0')}`, units: 1 }),
        );
        expect((await s.post({ events })).statusCode).toBe(200);
      }
      const page = (await usage('namespace=acme/many&group_by=caller&receipts=true&limit=10')).body;
      expect(page.groups).toHaveLength(1000);
      expect(page.events).toHaveLength(10);
      expect(page.totals.events).toBe(1003);
      await s.post({ events: [event({ namespace: 'acme/many', caller: 'u99999' })] });
      const rest = (await usage(`namespace=acme/many&group_by=caller&cursor=${page.groups_next_cursor}`)).body;
      expect(rest.groups.map((g: Group) => g.key)).toEqual(['u01000', 'u01001', 'u01002']);
      expect(rest.totals.events).toBe(1003);
      expect(rest.as_of_seq).toBe(page.as_of_seq);
      expect(rest.next_cursor).toBeNull();
      expect((await usage('namespace=acme/prod&receipts=true&limit=1')).body.groups_next_cursor).toBeNull();
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
      // Both requests are in the histogram (which bucket depends on the machine's load: not asserted).
      expect(text).toMatch(/receipts_http_request_duration_seconds_bucket\{le="0.1",method="POST",route="\/v1\/events"\} [0-2]\n/);
      expect(text).toMatch(/receipts_http_request_duration_seconds_bucket\{le="\+Inf",method="POST",route="\/v1\/events"\} 2/);
      expect(text).toMatch(/process_resident_memory_bytes/);
    });
  });
});
