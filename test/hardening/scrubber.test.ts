// The credential scrubber is a security boundary: every class of credential below, sent in
// metadata, is removed before storage (and reported), and sent in a leaf field (which can never
// be removed later) is refused. Checked through HTTP against the stored row and the database
// file's bytes, so nothing of a secret survives anywhere.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { entropyToMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { event, testServer, type TestServer } from '../helpers.ts';

let s: TestServer;
beforeEach(async () => {
  s = await testServer();
});
afterEach(async () => {
  await s.close();
});

const storedMetadata = (id: number) =>
  (s.db().prepare('SELECT metadata FROM events WHERE seq = ?').get(id) as { metadata: string }).metadata;
function dbBytes(): string {
  s.db().pragma('wal_checkpoint(TRUNCATE)');
  return Buffer.concat([readFileSync(s.ledger.location), readFileSync(`${s.ledger.location}-wal`)]).toString('latin1');
}

const OWN_KEY = 'sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXktbm90LXJlYWw';
const PEM_LINES = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6Jx1YBBJbwBvtgp2Ec8XrUeNk',
  'q7rGnDw3rX5lSs0Pz8jH2kV9TfWm1bYqLpXo4uNcRtE6aGhJkMnBvCxZ0aSdFgHj',
  '-----END RSA PRIVATE KEY-----',
];
const PGP_BLOCK = [
  '-----BEGIN PGP PRIVATE KEY BLOCK-----',
  '',
  'lQOYBGVkZXN0AQgAxQ3nYc5Zb8wKp1rTqLmNoPvW2sE4dF6gH8jK0lM3nO5pQ7rS',
  '=Xy9Z',
  '-----END PGP PRIVATE KEY BLOCK-----',
].join('\n');

const hex32 = (label: string) => createHash('sha256').update(label).digest('hex');
const mnemonic = (bytes: number) =>
  entropyToMnemonic(
    new Uint8Array(bytes).map((_, i) => (i * 37 + 11) & 0xff),
    wordlist,
  );
const middleWords = (phrase: string) => phrase.split(' ').slice(3, 9).join(' ');
const DOCKER_AUTH = Buffer.from('acme-ci:dckr_pat_7Hq2Lm9XvB4nR8sT1wY6zK3p').toString('base64');
const AZURE_KEY = 'q8Vb3kR2mZ7xT1nP5wL9cH4jD6fG0sA2eU8yI3oK7rM1tN5vB9xC3zQ6wE2rT4yU8iO0pA1sD5fG7hJ9kL3zX7cV==';
const MNEMONIC_12 = mnemonic(16);
const MNEMONIC_24 = mnemonic(32);

/** [class, value, the part of it that must never be stored]. */
const SECRET_VALUES: Array<[string, string, string]> = [
  ['own key after %20', `x%20${OWN_KEY}`, OWN_KEY.slice(16)],
  ['own key glued after _', `caller_${OWN_KEY}`, OWN_KEY.slice(16)],
  ['Bearer after %3D', 'auth_header%3DBearer%20mF9B5f41JqMxyz', 'mF9B5f41JqMxyz'],
  ['double-encoded Bearer', 'h%3DBearer%2520c2VjcmV0LXRva2VuLXZhbHVl', 'c2VjcmV0LXRva2VuLXZhbHVl'],
  ['token= in an encoded URL', 'https%3A%2F%2Fapi.example.com%2Fv1%3Fapi_key%3DZxCvBnM123456', 'ZxCvBnM123456'],
  ['form-encoded Bearer', 'q=Bearer+tok9f8e7d6c5b', 'tok9f8e7d6c5b'],
  ['password in a query string', 'user=bob&password=hunter2-correct-horse', 'hunter2-correct-horse'],
  ['JSON text with a secret name', '{"x-api-key":"k3y-val-9f8e7d6c"}', 'k3y-val-9f8e7d6c'],
  ['URL with a password', 'postgres://app:s3cr3t-pa55@db.internal:5432/prod', 's3cr3t-pa55'],
  ['Token scheme', 'Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b'],
  ['Basic scheme', 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', 'QWxhZGRpbjpvcGVuIHNlc2FtZQ'],
  ['Basic, short', 'Basic YTpi', 'YTpi'],
  [
    'Digest scheme',
    'Digest username="Mufasa", realm="api", response="6629fae49393a05397450978507c4ef1"',
    '6629fae49393a05397450978507c4ef1',
  ],
  ['ApiKey scheme', 'ApiKey a1b2c3d4e5f6', 'a1b2c3d4e5f6'],
  ['short bearer', 'Bearer ab12', 'ab12'],
  ['lowercase short bearer', 'bearer x9y8z7', 'x9y8z7'],
  ['AWS access key id', 'AKIAIOSFODNN7EXAMPLE', 'IOSFODNN7EXAMPLE'],
  ['AWS temporary key id', 'id=ASIAY34FZKBOKMUTVV7A', 'Y34FZKBOKMUTVV7A'],
  ['GitHub classic token', 'ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R', '1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R'],
  ['GitHub OAuth token', 'gho_16C7e42F292c6912E7710c838347Ae178B4a', '16C7e42F292c6912E7710c838347Ae178B4a'],
  [
    'GitHub fine-grained token',
    'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN',
    '11ABCDEFG0123456789_abcdefghij',
  ],
  ['Slack bot token', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx', 'AbCdEfGhIjKlMnOpQrStUvWx'],
  ['Stripe secret key', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc', '4eC39HqLyjWDarjtT1zdp7dc'],
  ['Stripe restricted key', 'rk_live_51H8abcDEFghiJKLmnoPQRstu', '51H8abcDEFghiJKLmnoPQRstu'],
  ['OpenAI project key', 'sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z', 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z'],
  ['OpenAI legacy key', 'sk-ABCdef123456GHIjkl789012MNOpqr345678STUvwx901234', 'ABCdef123456GHIjkl789012MNOpqr345678STUvwx901234'],
  ['Anthropic key', 'sk-ant-api03-Xy7Zabc123DEF456ghi789JKL', 'Xy7Zabc123DEF456ghi789JKL'],
  ['Google API key', 'AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe', 'SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe'],
  ['PEM in one string', PEM_LINES.join('\n'), PEM_LINES[1]!],
  ['PGP private key block', PGP_BLOCK, 'lQOYBGVkZXN0AQgAxQ3nYc5Zb8wKp1rTqLmNoPvW2sE4dF6gH8jK0lM3nO5pQ7rS'],
  // issue 21: shapes that were stored as sent
  [
    'Azure storage connection string',
    `DefaultEndpointsProtocol=https;AccountName=acmeusage;AccountKey=${AZURE_KEY};EndpointSuffix=core.windows.net`,
    AZURE_KEY.slice(0, 40),
  ],
  [
    'Azure SAS URL',
    'https://acmeusage.blob.core.windows.net/exports/2026-11.csv?sv=2022-11-02&ss=b&sp=r&se=2026-12-01T00:00:00Z&spr=https&sig=Zk3QbW9xT2yL7pN4mV8cR1sD6fH0jK5gA9eU3iO7wB2%3D',
    'Zk3QbW9xT2yL7pN4mV8cR1sD6fH0jK5gA9eU3iO7wB2',
  ],
  [
    'S3 presigned URL',
    'https://b.s3.amazonaws.com/k?X-Amz-Date=20261101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a49382',
    '9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a49382',
  ],
  [
    'Vault token',
    'hvs.CAESIJlU9JMYEhOPYv4iSQ8Qy5TuZ3xK7mN2pL4wR6tY8uI0GiEKHGh2cy5aTzFYZ2JLbXBqWnNOdkR2',
    'CAESIJlU9JMYEhOPYv4iSQ8Qy5TuZ3xK7mN2pL4wR6tY8uI0',
  ],
  ['DigitalOcean token', `dop_v1_${hex32('do')}`, hex32('do')],
  [
    'PyPI token',
    'pypi-AgEIcHlwaS5vcmcCJGI4YzE2ZDQ1LTk0ZjEtNGFkMy1iNGM4LTlmNzVmZDkxYjA2MQACKlszLCJkOGY3',
    'CJGI4YzE2ZDQ1LTk0ZjEtNGFkMy1iNGM4LTlmNzVmZDkxYjA2MQACKlszLCJkOGY3',
  ],
  ['Twilio API key SID', 'SK3f9c2a7be14d4f0a9c6e8b1d2f7a5c30', '3f9c2a7be14d4f0a9c6e8b1d2f7a5c30'],
  ['docker config auth (base64 user:password)', DOCKER_AUTH, DOCKER_AUTH],
  ['session cookie', 'session=7f3kQ9zLp2Xv8Rm4Tn6Wc1Yb5Hd0Gs3J; Path=/; HttpOnly; Secure', '7f3kQ9zLp2Xv8Rm4Tn6Wc1Yb5Hd0Gs3J'],
  ['express session cookie', 'connect.sid=s%3Aj9XkR2mP7qL4vN8wT1yZ5cB3.Hf6Gd0Sa9Ue2Io7Pk4Lm1Nb8', 'j9XkR2mP7qL4vN8wT1yZ5cB3'],
  ['BIP-39 mnemonic, 12 words', MNEMONIC_12, middleWords(MNEMONIC_12)],
  ['BIP-39 mnemonic, 15 words', mnemonic(20), middleWords(mnemonic(20))],
  ['BIP-39 mnemonic, 18 words', mnemonic(24), middleWords(mnemonic(24))],
  ['BIP-39 mnemonic, 21 words', mnemonic(28), middleWords(mnemonic(28))],
  ['BIP-39 mnemonic, 24 words', MNEMONIC_24, middleWords(MNEMONIC_24)],
  ['BIP-39 mnemonic in a sentence', `restore with: ${MNEMONIC_12.replaceAll(' ', ', ')}`, MNEMONIC_12.replaceAll(' ', ', ').slice(20, 60)],
  ['0x private key after seed=', `seed=0x${hex32('sui key')}`, hex32('sui key')],
  ['hex private key after "private key:"', `private key: ${hex32('sui key 2')}`, hex32('sui key 2')],
];

/** Values that look a little like credentials but are ordinary usage data: kept. */
const KEPT = {
  prompt_tokens: 812,
  completion_tokens: 40,
  max_tokens: 1024,
  seed: 42,
  model: 'gpt-4o-mini',
  error: 'Token limit exceeded',
  prose: 'the bearer of news',
  plan: 'Basic plan',
  strategy: 'risk-averse-strategy-2024-ABCDEFGHIJ',
  issuer: 'https://auth.example.com:443/login',
  path: '/v1/usage?namespace=acme/prod',
};

describe('credential values in metadata are removed, at any depth, and reported', () => {
  it.each(SECRET_VALUES)('%s', async (_kind, value, secret) => {
    const res = await s.post(event({ metadata: { ...KEPT, note: value, deep: { list: ['ok', value] } } }));
    const [r] = res.json().results;
    expect(r.status).toBe('created');
    // A key block in an array takes the whole array: its other elements may be the key's lines.
    const block = value.includes('-----BEGIN');
    expect(r.redacted.sort()).toEqual([block ? 'metadata.deep.list' : 'metadata.deep.list[1]', 'metadata.note']);
    expect(JSON.parse(storedMetadata(r.id))).toEqual({ ...KEPT, deep: block ? {} : { list: ['ok'] } });
    expect(dbBytes()).not.toContain(secret);
  });
});

describe('credentials in leaf fields are refused (a leaf can never be edited)', () => {
  const fields: Array<['request_id' | 'caller' | 'source', number]> = [
    ['request_id', 128],
    ['caller', 256],
    ['source', 128],
  ];
  const cases = fields.flatMap(([field, max]) =>
    SECRET_VALUES.filter(([, value]) => value.length <= max && !value.includes('\u0000')).map(
      ([kind, value, secret]) => [field, kind, value, secret] as const,
    ),
  );
  it.each(cases)('%s: %s', async (field, _kind, value, secret) => {
    const res = await s.post(event({ [field]: value }));
    const [r] = res.json().results;
    expect(r.status).toBe('rejected');
    expect(r.errors).toContainEqual(expect.objectContaining({ path: field, rule: 'no_credentials' }));
    expect(await s.count()).toBe(0);
    expect(dbBytes()).not.toContain(secret);
  });

  it('refuses our own API key hidden behind %20 in caller (it was answered created)', async () => {
    const res = await s.post(event({ caller: `x%20${s.key}` }));
    expect(res.json().results[0]).toMatchObject({
      status: 'rejected',
      errors: [expect.objectContaining({ path: 'caller', rule: 'no_credentials' })],
    });
    expect(await s.count()).toBe(0);
  });

  it('refuses a Sui private key as namespace or action (their alphabet admits one)', async () => {
    await s.close();
    s = await testServer();
    await s.ledger.keys.create('acme-inc', ['*']);
    const sui = 'suiprivkey1qzdlfxn2qa2lj5uprl8pyhexs02sg2wrhdy7qaq50cqgnffw4c2477kg9h3';
    const res = await s.post({ events: [event({ namespace: `acme/${sui}` }), event({ action: sui.slice(0, 64) })] });
    const [a, b] = res.json().results;
    expect(a.errors).toContainEqual(expect.objectContaining({ path: 'namespace', rule: 'no_credentials' }));
    expect(b.errors).toContainEqual(expect.objectContaining({ path: 'action', rule: 'no_credentials' }));
    expect(await s.count()).toBe(0);
  });

  it('accepts ordinary leaf values that only resemble credentials', async () => {
    const res = await s.post({
      events: [
        event({ caller: 'Token limit exceeded' }),
        event({ caller: 'the bearer of news', source: 'risk-averse-svc' }),
        event({ request_id: 'task-0123456789ABCDEFGHIJKLMNOP', caller: 'Basic plan user' }),
      ],
    });
    expect(res.json().results.map((r: { status: string }) => r.status)).toEqual(['created', 'created', 'created']);
  });
});

describe('credentials in structure: names in arrays, pairs, keys, key blocks', () => {
  async function store(metadata: Record<string, unknown>) {
    const res = await s.post(event({ metadata }));
    const [r] = res.json().results;
    expect(r.status).toBe('created');
    return { stored: JSON.parse(storedMetadata(r.id)) as Record<string, unknown>, redacted: (r.redacted ?? []) as string[] };
  }

  it("drops the value after a credential's name in a flat array (Node's req.rawHeaders)", async () => {
    const { stored, redacted } = await store({
      raw: [
        'Host',
        'api.example.com',
        'X-Api-Key',
        'opaque-key-value-1',
        'Accept',
        '*/*',
        'Cookie',
        'sid=abc',
        'authorization',
        'opaque-2',
      ],
    });
    expect(stored.raw).toEqual(['Host', 'api.example.com', 'Accept', '*/*']);
    expect(redacted).toEqual(expect.arrayContaining(['metadata.raw[3]', 'metadata.raw[7]', 'metadata.raw[9]']));
    for (const v of ['opaque-key-value-1', 'sid=abc', 'opaque-2']) expect(dbBytes()).not.toContain(v);
  });

  it('drops credential pairs ([["x-api-key", "…"]]) and name/value objects ({name, value})', async () => {
    const { stored } = await store({
      pairs: [
        ['x-api-key', 'opaque-pair-value'],
        ['accept', 'json'],
      ],
      har: [
        { name: 'Authorization', value: 'opaque-har-value' },
        { name: 'Accept', value: 'json' },
      ],
      kv: [{ key: 'password', value: 'opaque-kv-value' }],
    });
    expect(stored.pairs).toEqual([[], ['accept', 'json']]);
    expect(stored.har).toEqual([{ name: 'Authorization' }, { name: 'Accept', value: 'json' }]);
    for (const v of ['opaque-pair-value', 'opaque-har-value', 'opaque-kv-value']) expect(dbBytes()).not.toContain(v);
  });

  it('drops an object key that is itself a credential, and never echoes it in the report', async () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz';
    const res = await s.post(event({ metadata: { [OWN_KEY]: 1, 'Bearer q1w2e3r4t5y6u7i8': 'x', [jwt]: true, ok: 1 } }));
    const [r] = res.json().results;
    expect(JSON.parse(storedMetadata(r.id))).toEqual({ ok: 1 });
    expect(r.redacted).toHaveLength(3);
    const answer = res.body;
    for (const v of [OWN_KEY.slice(16), 'q1w2e3r4t5y6u7i8', 'c2lnbmF0dXJlLWJ5dGVz']) {
      expect(answer).not.toContain(v);
      expect(dbBytes()).not.toContain(v);
    }
  });

  it('drops the whole array of a PEM key split into lines, header or not', async () => {
    const { stored, redacted } = await store({ key_lines: PEM_LINES, tail: PEM_LINES.slice(1), other: ['kept'] });
    expect(stored).toEqual({ other: ['kept'] });
    expect(redacted.sort()).toEqual(['metadata.key_lines', 'metadata.tail']);
    expect(dbBytes()).not.toContain(PEM_LINES[1]!.slice(0, 40));
    expect(dbBytes()).not.toContain(PEM_LINES[2]!.slice(0, 40));
  });

  it('drops a nested object holding a key block line beside its key material', async () => {
    const { stored } = await store({ key: undefined, file: { begin: PEM_LINES[0], body: PEM_LINES[1] }, n: 1 });
    expect(stored).toEqual({ n: 1 });
    expect(dbBytes()).not.toContain(PEM_LINES[1]!.slice(0, 40));
  });

  it.each([
    'seed_phrase',
    'seedPhrase',
    'mnemonic',
    'recovery_phrase',
    'wallet-seed',
    'backup_codes',
    'x%2Dapi%2Dkey',
    'APIKey',
    'XApiKey',
  ])('drops the key %s', async (name) => {
    const { stored, redacted } = await store({
      [name]: 'abandon ability able about above absent absorb abstract absurd abuse access accident',
      n: 1,
    });
    expect(stored).toEqual({ n: 1 });
    expect(redacted).toEqual([`metadata.${name}`]);
  });

  it('keeps usage fields that only contain a secret word inside another word', async () => {
    const kept = { prompt_tokens: 1, keyword: 'k', monkey: 2, author: 'a', secretary_count: 3, seed: 7, random_seed: 8, passenger: 'p' };
    const { stored, redacted } = await store(kept);
    expect(stored).toEqual(kept);
    expect(redacted).toEqual([]);
  });
});

describe('32-byte hex: a key under a key-material name, a digest or address otherwise (issue 21)', () => {
  it('drops seed/signer_sk/sk hex and a mnemonic split into an array; keeps digests, Sui addresses and ordinary text', async () => {
    const key = hex32('wallet key');
    const kept = {
      digest: hex32('artifact'), // a sha256 digest
      tx_digest: '8oZ7bq5Fe7ABUJ6U1hBpoVZjcbY2w7jYQ4vYy8yjGqy3', // a Sui transaction digest (base58)
      checkpoint: 'checkpoint digest 8oZ7bq5Fe7ABUJ6U1hBpoVZjcbY2w7jYQ4vYy8yjGqy3',
      sender: `0x${hex32('sender')}`, // a Sui address
      note: `0x${hex32('object')}`, // a bare 32-byte hex: an object id as likely as a key, kept
      seed_hash: `0x${hex32('seed hash')}`,
      seed: 42,
      prose: 'I am about to order a banana and an apple and a lemon for the office party',
      tags: ['apple', 'banana', 'orange', 'grape'],
      eleven: 'abandon ability able about above absent absorb abstract absurd abuse access',
      blob: Buffer.from(Uint8Array.from({ length: 48 }, (_, i) => (i * 97) & 0xff)).toString('base64'),
      text_b64: Buffer.from('an ordinary blob of text without a pair').toString('base64'),
      node_id: Buffer.from('User:12345').toString('base64'), // a GraphQL global id
      session_id: 'chat-2026-11-01-0042',
    };
    const res = await s.post(
      event({ metadata: { ...kept, wallet: { seed: `0x${key}`, signer_sk: key.toUpperCase() }, words: MNEMONIC_24.split(' ') } }),
    );
    const [r] = res.json().results;
    expect(r.status).toBe('created');
    expect(r.redacted.sort()).toEqual(['metadata.wallet.seed', 'metadata.wallet.signer_sk', 'metadata.words']);
    expect(JSON.parse(storedMetadata(r.id))).toEqual({ ...kept, wallet: {} });
    expect(dbBytes().toLowerCase()).not.toContain(key);
    expect(dbBytes()).not.toContain(middleWords(MNEMONIC_24).split(' ').join('","'));
  });
});

describe('credentials in request URLs never reach the log', () => {
  it('redacts a key in the URL path, as query parameters already were', async () => {
    const urls = [
      `/v1/receipts/${s.key}`,
      `/v1/usage/x%20${s.key}/more`,
      `/v1/token/opaque-path-value-77`,
      `/v1/usage/Bearer%20opaquebearer99?namespace=acme/prod`,
      `/v1/usage?namespace=acme/prod&q=${encodeURIComponent('Bearer opaquebearer98')}`,
      `/v1/usage?namespace=acme/prod&x%2Dapi%2Dkey=opaque-query-value`,
    ];
    for (const url of urls) await s.get(url);
    const logs = s.logs.join('');
    expect(logs.match(/"msg":"request"/g)?.length).toBe(urls.length); // every request was logged
    expect(logs).toContain('"url":"/v1/receipts/[redacted]"');
    expect(logs).toContain('"url":"/v1/usage/[redacted]/more"');
    expect(logs).toContain('"url":"/v1/token/[redacted]"');
    for (const secret of [s.key.slice(16), 'opaque-path-value-77', 'opaquebearer99', 'opaquebearer98', 'opaque-query-value']) {
      expect(logs).not.toContain(secret);
    }
  });
});
