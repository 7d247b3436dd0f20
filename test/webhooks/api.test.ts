// Webhooks over HTTP (issue 25, docs/api.md "Webhooks"): admin right only; the secret is answered
// once and never again (not by GET, not in a log line); URLs that are not http(s), carry
// credentials or reach loopback, private or link-local addresses (literal or by DNS) are refused
// naming the rule, storing nothing; a webhook takes only namespaces its key may touch; deletes
// are per owner. Both engines, through fastify inject on the real service.
import { expect, it } from 'vitest';
import type { Right } from '../../src/ledger/index.ts';
import { serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh) => {
  // Public names resolve through a stand-in DNS: the tests need no network.
  const resolver = async (host: string) => {
    if (host === 'hooks.example.com') return [{ address: '93.184.215.14', family: 4 }];
    if (host === 'inside.example.com')
      return [
        { address: '93.184.215.14', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ];
    if (host === 'localhost') return [{ address: '127.0.0.1', family: 4 }];
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  const s = serverEachTest(fresh, { webhooks: { resolver } });

  const keyWith = async (rights: Right[], owner = 'acme-inc', namespaces = ['acme/*']) => {
    const k = await s.ledger.keys.create(owner, namespaces, undefined, rights);
    return { authorization: `Bearer ${k.key}` };
  };
  const send = (method: 'POST' | 'DELETE', url: string, headers: Record<string, string>, body?: unknown) =>
    s.app.inject({
      method,
      url,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body !== undefined && { payload: JSON.stringify(body) }),
    });
  const create = (body: unknown, headers: Record<string, string>) => send('POST', '/v1/webhooks', headers, body);

  it('needs the admin right on every route: 403 right_missing naming admin, nothing stored', async () => {
    const plain = s.auth; // record, read
    for (const res of [
      await create({ url: 'https://hooks.example.com/r', namespaces: ['acme/*'] }, plain),
      await s.get('/v1/webhooks', plain),
      await send('DELETE', '/v1/webhooks/wh_0123456789abcdef', plain),
      await s.get('/v1/webhooks/wh_0123456789abcdef/deliveries', plain),
    ]) {
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toMatchObject({ code: 'right_missing', details: [{ rule: 'right:admin' }] });
    }
    expect(await s.ledger.webhooks.list()).toEqual([]);
  });

  it('answers the secret once: GET lists the webhook without it, and no log line holds it', async () => {
    const admin = await keyWith(['admin']);
    const res = await create({ url: 'https://hooks.example.com/r?tenant=7', namespaces: ['acme/prod', 'acme/eu-*', 'acme/prod'] }, admin);
    expect(res.statusCode).toBe(201);
    const made = res.json();
    expect(made).toEqual({
      id: expect.stringMatching(/^wh_[0-9a-f]{16}$/),
      url: 'https://hooks.example.com/r?tenant=7',
      namespaces: ['acme/prod', 'acme/eu-*'],
      created_at: expect.any(String),
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    const listed = await s.get('/v1/webhooks', admin);
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual({ webhooks: [{ id: made.id, url: made.url, namespaces: made.namespaces, created_at: made.created_at }] });
    expect(listed.body).not.toContain(made.secret.slice(6));
    const deliveries = await s.get(`/v1/webhooks/${made.id}/deliveries`, admin);
    expect(deliveries.json()).toEqual({ webhook_id: made.id, messages: [], attempts: [] });
    expect(s.logs.join('')).not.toContain(made.secret.slice(6));
    // Another owner neither sees nor deletes it.
    const other = await keyWith(['admin'], 'globex', ['globex/*']);
    expect((await s.get('/v1/webhooks', other)).json()).toEqual({ webhooks: [] });
    expect((await send('DELETE', `/v1/webhooks/${made.id}`, other)).statusCode).toBe(404);
    expect((await s.get(`/v1/webhooks/${made.id}/deliveries`, other)).statusCode).toBe(404);
    // Its owner deletes it, once.
    const deleted = await send('DELETE', `/v1/webhooks/${made.id}`, admin);
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toEqual({ id: made.id, deleted: true, discarded: 0 });
    expect((await send('DELETE', `/v1/webhooks/${made.id}`, admin)).json().error.code).toBe('not_found');
    expect((await s.get('/v1/webhooks', admin)).json()).toEqual({ webhooks: [] });
  });

  it('refuses URLs it must not call, naming the rule, and stores nothing', async () => {
    const admin = await keyWith(['admin']);
    const cases: Array<[string, string]> = [
      ['ftp://hooks.example.com/r', 'scheme:http|https'],
      ['file:///etc/passwd', 'scheme:http|https'],
      ['https://user:pw@hooks.example.com/r', 'no_credentials'],
      ['https://token@hooks.example.com/r', 'no_credentials'],
      ['not a url', 'url'],
      ['http://127.0.0.1:8080/r', 'public_address'],
      ['http://127.1/r', 'public_address'], // the URL parser's 127.0.0.1
      ['http://0x7f000001/r', 'public_address'],
      ['http://[::1]/r', 'public_address'],
      ['http://[::ffff:127.0.0.1]/r', 'public_address'],
      ['http://10.1.2.3/r', 'public_address'],
      ['http://192.168.0.10/r', 'public_address'],
      ['http://169.254.169.254/latest/meta-data', 'public_address'],
      ['http://[fe80::1]/r', 'public_address'],
      ['http://[fc00::1]/r', 'public_address'],
      ['http://100.64.0.1/r', 'public_address'],
      ['http://0.0.0.0/r', 'public_address'],
      ['http://localhost:8080/r', 'public_address'], // by DNS
      ['https://inside.example.com/r', 'public_address'], // one private address among public ones
      ['https://nowhere.invalid/r', 'resolves'],
    ];
    for (const [url, rule] of cases) {
      const res = await create({ url, namespaces: ['acme/*'] }, admin);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error, url).toMatchObject({ code: 'invalid_body', details: [{ path: 'url', rule }] });
    }
    expect((await create({ url: `https://hooks.example.com/${'a'.repeat(2100)}`, namespaces: ['acme/*'] }, admin)).statusCode).toBe(400);
    expect(await s.ledger.webhooks.list()).toEqual([]);
  });

  it("takes only namespaces within the key's, and refuses bad bodies naming the field", async () => {
    const admin = await keyWith(['admin'], 'acme-inc', ['acme/prod', 'acme/eu-*']);
    const ok = await create({ url: 'https://hooks.example.com/r', namespaces: ['acme/prod', 'acme/eu-*', 'acme/eu-west-*'] }, admin);
    expect(ok.statusCode).toBe(201);
    for (const namespaces of [['acme/*'], ['*'], ['acme/dev'], ['acme/prod', 'globex/prod']]) {
      const res = await create({ url: 'https://hooks.example.com/r', namespaces }, admin);
      expect(res.statusCode, namespaces.join()).toBe(403);
      expect(res.json().error.code).toBe('namespace_forbidden');
    }
    const bad: Array<[unknown, string, string]> = [
      [{ url: 'https://hooks.example.com/r', namespaces: [] }, 'namespaces', 'min_items:1'],
      [
        { url: 'https://hooks.example.com/r', namespaces: Array.from({ length: 33 }, (_, i) => `acme/prod${i}`) },
        'namespaces',
        'max_items:32',
      ],
      [{ url: 'https://hooks.example.com/r' }, 'namespaces', 'required'],
      [{ url: 'https://hooks.example.com/r', namespaces: ['ACME/prod'] }, 'namespaces.0', 'pattern:^[a-z0-9._/*-]{1,128}$'],
      [{ namespaces: ['acme/prod'] }, 'url', 'required'],
    ];
    for (const [body, path, rule] of bad) {
      const res = await create(body, admin);
      expect(res.statusCode, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.json().error.details[0]).toMatchObject({ path, rule });
    }
    const unknown = await create({ url: 'https://hooks.example.com/r', namespaces: ['acme/prod'], secret: 'mine' }, admin);
    expect(unknown.json().error.code).toBe('unknown_field');
    expect(await s.ledger.webhooks.list()).toHaveLength(1);
  });
});
