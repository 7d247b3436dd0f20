import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bytesToHex, leafHash } from '../../src/event/leaf.ts';
import { event, testServerOn, type TestServer } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, engine) => {
  let s: TestServer;
  beforeEach(async () => {
    s = await testServerOn(fresh);
  });
  afterEach(async () => {
    await s.close();
  });

  const count = () => s.count();

  describe('POST /v1/events: accepting events', () => {
    it('creates one event and answers with its id and leaf hash (leaf v1 of the stored fields)', async () => {
      const ts = Date.now() - 60_000;
      const e = event({ units: 3, artifact_digest: 'AB'.repeat(32), ts });
      const res = await s.post(e);
      expect(res.statusCode).toBe(200);
      const [r] = res.json().results;
      expect(r.status).toBe('created');
      expect(typeof r.id).toBe('number');
      const expected = bytesToHex(leafHash({ ...e, artifact_digest: 'ab'.repeat(32), ts_ms: ts } as never));
      expect(r.leaf_hash).toBe(expected);
      const row = (await s.sql('SELECT * FROM events WHERE id = ?', r.id))[0]!;
      expect(row).toMatchObject({
        namespace: 'acme/prod',
        caller: 'user-1',
        action: 'recall',
        units: 3,
        ts,
        owner: 'acme-inc',
        key_id: s.keyId,
      });
      expect((row.leaf_hash as Buffer).toString('hex')).toBe(expected);
    });

    it('accepts a batch and answers one result per event, in order', async () => {
      const events = Array.from({ length: 5 }, () => event());
      const res = await s.post({ events });
      expect(res.statusCode).toBe(200);
      const results = res.json().results;
      expect(results.map((r: { request_id: string }) => r.request_id)).toEqual(events.map((e) => e.request_id));
      expect(results.every((r: { status: string }) => r.status === 'created')).toBe(true);
      const ids = results.map((r: { id: number }) => r.id);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids); // ledger order follows request order
    });

    it('defaults units to 1 and ts to the received time', async () => {
      const before = Date.now();
      const { request_id, namespace, action, caller } = event();
      const res = await s.post({ request_id, namespace, action, caller });
      const row = (
        await s.sql<Record<string, number>>('SELECT units, ts, ts_explicit, received_at FROM events WHERE id = ?', res.json().results[0].id)
      )[0]!;
      expect(row.units).toBe(1);
      expect(row.ts).toBe(row.received_at);
      expect(row.ts).toBeGreaterThanOrEqual(before);
      expect(Number(row.ts_explicit)).toBe(0);
    });

    it('accepts RFC 3339 times with offsets', async () => {
      const ts = new Date(Date.now() - 3600_000);
      ts.setUTCMilliseconds(250);
      const local = ts.toISOString().replace('Z', '+00:00');
      const res = await s.post(event({ ts: local }));
      const row = (await s.sql<{ ts: number }>('SELECT ts FROM events WHERE id = ?', res.json().results[0].id))[0]!;
      expect(row.ts).toBe(ts.getTime());
    });

    it('takes the owner from the key: an owner in the body is an unknown field', async () => {
      const res = await s.post(event({ owner: 'someone-else' }));
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('unknown_field');
      expect(await count()).toBe(0);
    });
  });

  describe('POST /v1/events: idempotency', () => {
    it('answers duplicate with the original id for the same request id and content', async () => {
      const e = event({ ts: Date.now() - 1000 });
      const first = (await s.post(e)).json().results[0];
      const again = (await s.post(e)).json().results[0];
      expect(again).toMatchObject({ status: 'duplicate', id: first.id, leaf_hash: first.leaf_hash });
      expect(await count()).toBe(1);
    });

    it('treats a retry without ts as the same event (ts defaulted both times)', async () => {
      const { ts: _ts, ...e } = event() as Record<string, unknown>;
      const first = (await s.post(e)).json().results[0];
      await new Promise((r) => setTimeout(r, 5));
      const again = (await s.post(e)).json().results[0];
      expect(again).toMatchObject({ status: 'duplicate', id: first.id });
    });

    it('answers conflict naming the differing field when content differs, and changes nothing', async () => {
      const e = event({ units: 2 });
      const first = (await s.post(e)).json().results[0];
      const res = (await s.post({ ...e, units: 5 })).json().results[0];
      expect(res.status).toBe('conflict');
      expect(res.id).toBe(first.id);
      expect(res.errors).toEqual([expect.objectContaining({ path: 'units', rule: 'same_as_recorded' })]);
      const row = (await s.sql<{ units: number }>('SELECT units FROM events WHERE id = ?', first.id))[0]!;
      expect(row.units).toBe(2);
    });

    it('gives one created and 49 duplicate for 50 parallel posts of one request id', async () => {
      const e = event();
      const answers = await Promise.all(Array.from({ length: 50 }, () => s.post(e)));
      const statuses = answers.map((a) => a.json().results[0].status);
      expect(statuses.filter((x) => x === 'created')).toHaveLength(1);
      expect(statuses.filter((x) => x === 'duplicate')).toHaveLength(49);
      expect(new Set(answers.map((a) => a.json().results[0].id)).size).toBe(1);
      expect(await count()).toBe(1);
    });

    it('scopes request ids to their namespace', async () => {
      const a = event({ namespace: 'acme/a', request_id: 'same' });
      const b = event({ namespace: 'acme/b', request_id: 'same' });
      const res = (await s.post({ events: [a, b] })).json().results;
      expect(res.map((r: { status: string }) => r.status)).toEqual(['created', 'created']);
    });
  });

  describe('POST /v1/events: field rules (each names the field and the rule)', () => {
    const cases: Array<[string, Record<string, unknown>, string, string]> = [
      ['missing request_id', { request_id: undefined }, 'request_id', 'required'],
      ['empty request_id', { request_id: '' }, 'request_id', 'min_length:1'],
      ['long request_id', { request_id: 'r'.repeat(129) }, 'request_id', 'max_length:128'],
      ['namespace with capitals', { namespace: 'Acme/prod' }, 'namespace', 'pattern:^[a-z0-9][a-z0-9._/-]*$'],
      ['namespace starting with /', { namespace: '/acme' }, 'namespace', 'pattern:^[a-z0-9][a-z0-9._/-]*$'],
      ['long namespace', { namespace: `acme/${'a'.repeat(124)}` }, 'namespace', 'max_length:128'],
      ['action with a slash', { action: 'a/b' }, 'action', 'pattern:^[a-z0-9][a-z0-9._-]*$'],
      ['long action', { action: 'a'.repeat(65) }, 'action', 'max_length:64'],
      ['missing caller', { caller: undefined }, 'caller', 'required'],
      ['long caller', { caller: 'c'.repeat(257) }, 'caller', 'max_length:256'],
      ['negative units', { units: -1 }, 'units', 'min:0'],
      ['fractional units', { units: 1.5 }, 'units', 'type:integer'],
      ['units above 2^53-1', { units: 2 ** 53 }, 'units', 'max:9007199254740991'],
      ['units as a string', { units: '3' }, 'units', 'type:number'],
      ['short artifact digest', { artifact_digest: 'ab' }, 'artifact_digest', 'hex:64'],
      ['non-hex artifact digest', { artifact_digest: 'zz'.repeat(32) }, 'artifact_digest', 'hex:64'],
      ['ts in the future', { ts: Date.now() + 60 * 60_000 }, 'ts', 'max_future_ms:300000'],
      ['ts too old', { ts: Date.now() - 36 * 86_400_000 }, 'ts', `max_age_ms:${35 * 86_400_000}`],
      ['ts not a date', { ts: 'yesterday' }, 'ts', 'epoch_ms_or_rfc3339'],
      ['ts impossible date', { ts: '2026-02-30T00:00:00Z' }, 'ts', 'epoch_ms_or_rfc3339'],
      ['ts as a boolean', { ts: true }, 'ts', 'epoch_ms_or_rfc3339'],
      ['metadata an array', { metadata: [1] }, 'metadata', 'type:object'],
      ['metadata too large', { metadata: { blob: 'x'.repeat(5000) } }, 'metadata', 'max_bytes:4096'],
      ['caller with a NUL', { caller: 'a\u0000b' }, 'caller', 'well_formed_text'],
      ['caller holding a credential', { caller: 'Bearer abcdefghijklmnopqrstuv' }, 'caller', 'no_credentials'],
    ];

    it.each(cases)('rejects %s', async (_name, override, path, rule) => {
      const res = await s.post(event(override));
      expect(res.statusCode).toBe(200);
      const [r] = res.json().results;
      expect(r.status).toBe('rejected');
      expect(r.errors).toContainEqual(expect.objectContaining({ path, rule }));
      expect(r.errors.find((e: { path: string }) => e.path === path).message).toMatch(new RegExp(path));
      expect(await count()).toBe(0);
    });

    it('with a window reaching back past 1970, refuses a date-time before it (years 0–99 too) alone, and stores the rest of its commit', async () => {
      // A leaf holds ts as unsigned milliseconds; the schema keeps numbers ≥ 0, and this rule the
      // text dates (before it, the leaf encoder threw inside the group commit, failing every request in it).
      const old = await testServerOn(fresh, { maxEventAgeMs: 150 * 365 * 86_400_000 });
      try {
        const res = await old.post({
          events: [
            event({ ts: '1969-12-31T23:59:59.999Z' }),
            // Years 0–99 are years 0–99 (JavaScript's Date.UTC would read 1999 here).
            event({ ts: '0099-06-01T00:00:00Z' }),
            event({ ts: '1970-01-01T00:00:00Z' }),
            event(),
          ],
        });
        expect(res.statusCode).toBe(200);
        const [before, year99, epoch, now] = res.json().results;
        for (const refused of [before, year99]) {
          expect(refused.status).toBe('rejected');
          expect(refused.errors).toEqual([
            expect.objectContaining({ path: 'ts', rule: 'epoch_ms_or_rfc3339', message: expect.stringMatching(/^ts .*1970/) }),
          ]);
        }
        expect([epoch.status, now.status]).toEqual(['created', 'created']);
        expect(await old.count()).toBe(2);
      } finally {
        await old.close();
      }
    });

    it('accepts the edges: units 0 and 2^53-1, ts 4 minutes ahead, 128-char ids', async () => {
      const res = await s.post({
        events: [
          event({ units: 0 }),
          event({ units: Number.MAX_SAFE_INTEGER }),
          event({ ts: Date.now() + 4 * 60_000 }),
          event({ request_id: 'r'.repeat(128), namespace: 'a'.repeat(128) }),
        ],
      });
      // 'a'×128 is outside acme/*: rejected for the namespace, not the length
      expect(res.json().results.map((r: { status: string }) => r.status)).toEqual(['created', 'created', 'created', 'rejected']);
      expect(res.json().results[3].errors[0].rule).toBe('namespace_forbidden');
    });

    it('one bad event never fails the others', async () => {
      const res = await s.post({ events: [event(), event({ units: -5 }), event()] });
      expect(res.json().results.map((r: { status: string }) => r.status)).toEqual(['created', 'rejected', 'created']);
      expect(await count()).toBe(2);
    });

    it('applies the configured action allow-list', async () => {
      await s.close();
      s = await testServerOn(fresh, { actions: ['extract', 'recall'] });
      const res = await s.post({ events: [event({ action: 'recall' }), event({ action: 'chat' })] });
      const [ok, bad] = res.json().results;
      expect(ok.status).toBe('created');
      expect(bad.errors[0]).toMatchObject({ path: 'action', rule: 'allowed_actions' });
      expect(bad.errors[0].message).toContain('extract, recall');
    });
  });

  describe('POST /v1/events: authentication and namespaces', () => {
    it('answers 401 without a key, with a malformed key, and with a revoked key', async () => {
      expect((await s.post(event(), { authorization: '' })).statusCode).toBe(401);
      expect((await s.post(event(), { authorization: 'Bearer nope' })).statusCode).toBe(401);
      expect((await s.post(event(), { authorization: `Bearer ${s.key.slice(0, -1)}x` })).statusCode).toBe(401);
      await s.ledger.keys.revoke(s.keyId);
      const res = await s.post(event());
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('unauthorized');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(await count()).toBe(0);
    });

    it('rejects an event outside the key namespaces with namespace_forbidden', async () => {
      const res = await s.post({ events: [event({ namespace: 'globex/prod' }), event()] });
      const [bad, ok] = res.json().results;
      expect(bad).toMatchObject({ status: 'rejected', errors: [{ path: 'namespace', rule: 'namespace_forbidden' }] });
      expect(ok.status).toBe('created');
    });
  });

  describe('POST /v1/events: malformed requests store nothing', () => {
    it.each([
      ['malformed JSON', '{"request_id": ', 'application/json', 400, 'malformed_json'],
      ['an array at top level', JSON.stringify([event()]), 'application/json', 400, 'invalid_body'],
      ['a scalar', '42', 'application/json', 400, 'invalid_body'],
      ['an empty body', '', 'application/json', 400, 'malformed_json'],
      ['a wrong content type', JSON.stringify(event()), 'text/plain', 415, 'unsupported_media_type'],
      ['a form body', 'request_id=x', 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
      ['events not an array', JSON.stringify({ events: {} }), 'application/json', 400, 'invalid_body'],
    ])('%s', async (_name, body, type, status, code) => {
      const res = await s.post(body, { 'content-type': type });
      expect(res.statusCode).toBe(status);
      const err = res.json().error;
      expect(err.code).toBe(code);
      expect(err.message.length).toBeGreaterThan(10);
      expect(Array.isArray(err.details)).toBe(true);
      expect(await count()).toBe(0);
    });

    it('refuses a batch with an unknown field anywhere, naming its path', async () => {
      const res = await s.post({ events: [event(), event({ unit: 5 })] });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'unknown_field', details: [{ path: 'events[1].unit', rule: 'unknown_field' }] });
      expect(await count()).toBe(0);
    });

    it('refuses an unknown field beside events', async () => {
      const res = await s.post({ events: [event()], dry_run: true });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details[0].path).toBe('dry_run');
    });

    it('answers 413 for more than 1,000 events and for more than 1 MiB', async () => {
      const many = await s.post({ events: Array.from({ length: 1001 }, () => event()) });
      expect(many.statusCode).toBe(413);
      expect(many.json().error.code).toBe('too_many_events');
      const big = await s.post({ events: Array.from({ length: 300 }, () => event({ metadata: { pad: 'x'.repeat(3900) } })) });
      expect(big.statusCode).toBe(413);
      expect(big.json().error.code).toBe('payload_too_large');
      expect(await count()).toBe(0);
    });

    it('accepts exactly 1,000 events', async () => {
      const res = await s.post({ events: Array.from({ length: 1000 }, () => event()) });
      expect(res.statusCode).toBe(200);
      expect(await count()).toBe(1000);
    });
  });

  describe('secrets never reach the database or the logs', () => {
    it.runIf(engine === 'sqlite')(
      'removes credentials from metadata, reports them, and leaves no trace in the db file or log',
      async () => {
        const secrets = [
          'Bearer tok_live_5f2c9a1e7d3b4c8a',
          'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY21lLXNlcnZpY2UifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU',
          'suiprivkey1qzdlfxn2qa2lj5uprl8pyhexs02sg2wrhdy7qaq50cqgnffw4c2477kg9h3',
          'hunter2-password-value',
          'cookie-value-9d8e7f',
          'delegate-key-material-1a2b3c',
        ];
        const e = event({
          metadata: {
            model: 'gpt-x',
            prompt_tokens: 812,
            headers: { Authorization: secrets[0], Cookie: secrets[4] },
            session: { token: secrets[1], nested: [{ password: secrets[3] }] },
            signer: secrets[2],
            DELEGATE_KEY: secrets[5],
          },
        });
        const res = await s.post(e);
        const [r] = res.json().results;
        expect(r.status).toBe('created');
        expect(r.redacted.sort()).toEqual(
          [
            'metadata.DELEGATE_KEY',
            'metadata.headers.Authorization',
            'metadata.headers.Cookie',
            'metadata.session.nested[0].password',
            'metadata.session.token',
            'metadata.signer',
          ].sort(),
        );
        const stored = (await s.sql<{ metadata: string }>('SELECT metadata FROM events WHERE id = ?', r.id))[0]!;
        expect(JSON.parse(stored.metadata)).toEqual({ headers: {}, model: 'gpt-x', prompt_tokens: 812, session: { nested: [{}] } });
        await s.get(`/v1/usage?namespace=acme/prod&api_key=${encodeURIComponent(s.key)}`);

        s.db().pragma('wal_checkpoint(TRUNCATE)');
        const file = s.ledger.location;
        const raw = Buffer.concat([readFileSync(file), readFileSync(`${file}-wal`)]).toString('latin1');
        const logs = s.logs.join('');
        expect(logs).toContain('"url":"/v1/events"'); // the log was written
        for (const secret of [...secrets, s.key]) {
          expect(raw).not.toContain(secret);
          expect(logs).not.toContain(secret);
        }
      },
    );
  });
});
