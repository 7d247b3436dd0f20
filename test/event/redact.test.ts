import { createHash } from 'node:crypto';
import { entropyToMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { describe, expect, it } from 'vitest';
import { isSecretKey, looksLikeSecret, redactJson, redactUrl, secretKind } from '../../src/event/redact.ts';

describe('credential redaction', () => {
  it.each([
    'authorization',
    'Authorization',
    'cookie',
    'Set-Cookie',
    'api_key',
    'apiKey',
    'X-API-KEY',
    'apikey',
    'token',
    'access_token',
    'refreshToken',
    'secret',
    'client_secret',
    'password',
    'PASSWORD',
    'private_key',
    'privateKey',
    'delegate_key',
    'delegateKey',
    'credentials',
    'mnemonic',
  ])('treats the key %s as a credential', (k) => expect(isSecretKey(k)).toBe(true));

  it.each(['prompt_tokens', 'completion_tokens', 'total_tokens', 'model', 'keyword', 'author', 'monkey', 'path', 'secretary_count'])(
    'keeps the usage field %s',
    (k) => expect(isSecretKey(k)).toBe(false),
  );

  it.each([
    'Bearer abcdefghijklmnop',
    'bearer sr_0123456789ab_xyz',
    'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    'suiprivkey1qzdlfxn2qa2lj5uprl8pyhexs02sg2wrhdy7qaq50cqgnffw4c2477kg9h3',
    'prefix Bearer abcdefghijklmnop suffix',
    '-----BEGIN OPENSSH PRIVATE KEY-----',
  ])('treats the value %s as a credential', (v) => expect(looksLikeSecret(v)).toBe(true));

  it.each(['hello', 'bearer', 'the bearer of news', '0xabc', 'eyJ', 'gpt-5'])('keeps the value %s', (v) =>
    expect(looksLikeSecret(v)).toBe(false),
  );

  it('removes at any depth and inside arrays, and lists the paths', () => {
    const out = redactJson(
      {
        model: 'm',
        prompt_tokens: 5,
        headers: { Authorization: 'Basic dXNlcjpwYXNzd29yZA==', 'x-trace': 't' },
        list: ['ok', 'Bearer abcdefghijk'],
        nested: [{ password: 'p' }],
      },
      'metadata',
    );
    expect(out.value).toEqual({ model: 'm', prompt_tokens: 5, headers: { 'x-trace': 't' }, list: ['ok'], nested: [{}] });
    expect(out.redacted.sort()).toEqual(['metadata.headers.Authorization', 'metadata.list[1]', 'metadata.nested[0].password']);
  });

  it('redacts credential query parameters in logged URLs', () => {
    expect(redactUrl('/v1/usage?namespace=a&api_key=sr_x&token=abc')).toBe('/v1/usage?namespace=a&api_key=[redacted]&token=[redacted]');
    expect(redactUrl('/v1/usage?namespace=a')).toBe('/v1/usage?namespace=a');
  });
});

describe('credential redaction: the classes that used to get through', () => {
  it.each([
    'seed_phrase',
    'seedPhrase',
    'recovery_phrase',
    'mnemonic_words',
    'wallet_seed',
    'backup_codes',
    'APIKey',
    'XApiKey',
    'x%2Dapi%2Dkey',
    'Proxy-Authorization',
    'aws_secret_access_key',
  ])('treats the key %s as a credential', (k) => expect(isSecretKey(k)).toBe(true));

  it.each(['seed', 'random_seed', 'passenger', 'max_tokens', 'monkey_count', 'phrase'])('keeps the key %s', (k) =>
    expect(isSecretKey(k)).toBe(false),
  );

  it.each([
    ['x%20sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXk', 'api_key'],
    ['x_sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXk', 'api_key'],
    ['h%3DBearer%2520c2VjcmV0LXRva2Vu', 'authorization'],
    ['Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', 'authorization'],
    ['Basic YTpi', 'authorization'],
    ['Digest username="bob", response="6629fae4"', 'authorization'],
    ['ApiKey a1b2c3d4', 'authorization'],
    ['Bearer ab12', 'authorization'],
    ['q=Bearer+tok9f8e7d6c5b', 'authorization'],
    ['AKIAIOSFODNN7EXAMPLE', 'provider_key'],
    ['ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R', 'provider_key'],
    ['xoxb-123456789012-1234567890123-AbCdEfGhIjKl', 'provider_key'],
    ['sk_live_4eC39HqLyjWDarjtT1zdp7dc', 'provider_key'],
    ['sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z', 'provider_key'],
    ['AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe', 'provider_key'],
    ['password=hunter2', 'named_credential'],
    ['{"x-api-key":"abc"}', 'named_credential'],
    [JSON.stringify(JSON.stringify({ password: 'hunter2' })), 'named_credential'],
    ['Authorization: opaque', 'named_credential'],
    ['postgres://app:s3cr3t@db/prod', 'url_password'],
    ['-----BEGIN PGP PRIVATE KEY BLOCK-----', 'private_key_block'],
    ['-----END RSA PRIVATE KEY-----', 'private_key_block'],
    ['%2D%2D%2D%2D%2DBEGIN%20EC%20PRIVATE%20KEY%2D%2D%2D%2D%2D', 'private_key_block'],
  ])('finds %s (%s)', (v, kind) => expect(secretKind(v)).toBe(kind));

  it.each([
    'Token limit exceeded',
    'Basic plan',
    'Basic tier-1',
    'Bearer bonds',
    'Signature verified',
    'OAuth 2.0',
    'gpt-4o-mini',
    'risk-averse-sk-strategy',
    'task-0123456789ABCDEFGHIJKLMNOP',
    'auth:svc-1',
    'urn:token:x',
    'https://auth.example.com:443/login',
    'http://auth:8080/x',
    'max_tokens=100',
    'prompt_tokens: 5',
    '100%',
    '%E0%A4%A',
    'a+b=c',
    'sr_short_x',
  ])('keeps %s', (v) => expect(looksLikeSecret(v)).toBe(false));

  it('removes raw header pairs and name/value objects, and never echoes a key that is a credential', () => {
    const key = 'sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXk';
    const out = redactJson(
      {
        raw: ['Host', 'h', 'X-Api-Key', 'v1', 'Accept', '*/*'],
        pairs: [
          ['cookie', 'c'],
          ['a', 'b'],
        ],
        har: [{ name: 'Authorization', value: 'v2' }],
        [key]: 1,
      },
      'metadata',
    );
    expect(out.value).toEqual({ raw: ['Host', 'h', 'Accept', '*/*'], pairs: [[], ['a', 'b']], har: [{ name: 'Authorization' }] });
    expect(out.redacted.sort()).toEqual(
      [
        'metadata.[redacted-key]',
        'metadata.har[0].value',
        'metadata.pairs[0][0]',
        'metadata.pairs[0][1]',
        'metadata.raw[2]',
        'metadata.raw[3]',
      ].sort(),
    );
  });

  it('drops a whole array holding a private key line', () => {
    const out = redactJson({ pem: ['-----BEGIN PRIVATE KEY-----', 'MIIEvQ', '-----END PRIVATE KEY-----'], ok: [1] }, 'metadata');
    expect(out.value).toEqual({ ok: [1] });
    expect(out.redacted).toEqual(['metadata.pem']);
  });

  it('redacts credentials in the URL path, and whole URLs of too many parts', () => {
    expect(redactUrl('/v1/receipts/sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXk?x=1')).toBe('/v1/receipts/[redacted]?x=1');
    expect(redactUrl('/v1/x%20Bearer%20abcdefgh1/y')).toBe('/v1/[redacted]/y');
    expect(redactUrl('/v1/token/opaque/next')).toBe('/v1/token/[redacted]/next');
    expect(redactUrl('/v1/usage?namespace=a&x%2Dapi%2Dkey=v&q=Bearer%20abcdefgh1')).toBe(
      '/v1/usage?namespace=a&x%2Dapi%2Dkey=[redacted]&q=[redacted]',
    );
    expect(redactUrl('/v1/usage?sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXk')).toBe('/v1/usage?[redacted]');
    expect(redactUrl(`/${'a/'.repeat(100)}password=x`)).toBe('[redacted]');
    expect(redactUrl('/v1/usage/acme/prod?namespace=acme/prod&limit=10')).toBe('/v1/usage/acme/prod?namespace=acme/prod&limit=10');
  });
});

describe('credential shapes that were stored as sent (issue 21)', () => {
  const hex32 = createHash('sha256').update('not a real key').digest('hex');
  const mnemonic = (bytes: number) =>
    entropyToMnemonic(
      new Uint8Array(bytes).map((_, i) => (i * 37 + 11) & 0xff),
      wordlist,
    );
  const dockerAuth = Buffer.from('acme-ci:dckr_pat_7Hq2Lm9XvB4nR8sT1wY6zK3p').toString('base64');

  it.each([
    [
      'DefaultEndpointsProtocol=https;AccountName=acmeusage;AccountKey=q8Vb3kR2mZ7xT1nP5wL9cH4jD6fG0sA2eU8yI3oK7rM1tN5vB9xC3zQ6wE2rT4yU8iO0pA1sD5fG7hJ9kL3z==;EndpointSuffix=core.windows.net',
      'connection_string_key',
    ],
    [
      'https://acmeusage.blob.core.windows.net/x/y.csv?sv=2022-11-02&sp=r&se=2026-12-01T00:00:00Z&sig=Zk3QbW9xT2yL7pN4mV8cR1sD6fH0jK5gA9eU3iO7wB2%3D',
      'signed_url',
    ],
    ['X-Amz-Date=20261101T000000Z&X-Amz-Signature=9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0', 'signed_url'],
    ['hvs.CAESIJlU9JMYEhOPYv4iSQ8Qy5TuZ3xK7mN2pL4wR6tY8uI0GiEKHGh2cy5aTzFYZ2JLbXBqWnNOdkR2', 'provider_key'],
    [`dop_v1_${hex32}`, 'provider_key'],
    ['pypi-AgEIcHlwaS5vcmcCJGI4YzE2ZDQ1LTk0ZjEtNGFkMy1iNGM4LTlmNzVmZDkxYjA2MQACKlszLCJkOGY3', 'provider_key'],
    ['SK3f9c2a7be14d4f0a9c6e8b1d2f7a5c30', 'provider_key'],
    [dockerAuth, 'basic_credentials'],
    ['session=7f3kQ9zLp2Xv8Rm4Tn6Wc1Yb5Hd0Gs3J; Path=/; HttpOnly', 'session_cookie'],
    ['sessionid=k2j3h4g5f6d7s8a9q0w1e2r3t4y5u6i7', 'session_cookie'],
    ['connect.sid=s%3Aj9XkR2mP7qL4vN8wT1yZ5cB3.Hf6Gd0Sa9Ue2Io7Pk4Lm1Nb8', 'session_cookie'],
    [mnemonic(16), 'mnemonic'],
    [mnemonic(20), 'mnemonic'],
    [mnemonic(24), 'mnemonic'],
    [mnemonic(28), 'mnemonic'],
    [mnemonic(32), 'mnemonic'],
    [`my wallet words: ${mnemonic(16).toUpperCase().replaceAll(' ', ', ')}.`, 'mnemonic'],
    [`seed=0x${hex32}`, 'hex_private_key'],
    [`private key: ${hex32}`, 'hex_private_key'],
    [`{"signer_sk":"0x${hex32}"}`, 'hex_private_key'],
  ])('finds %s (%s)', (v, kind) => expect(secretKind(v)).toBe(kind));

  it.each([
    `0x${hex32}`, // a Sui address or object id looks exactly like this
    `digest=${hex32}`,
    `tx digest 0x${hex32}`,
    `seed_hash: 0x${hex32}`,
    '8oZ7bq5Fe7ABUJ6U1hBpoVZjcbY2w7jYQ4vYy8yjGqy3', // a Sui transaction digest (base58)
    'checkpoint digest 8oZ7bq5Fe7ABUJ6U1hBpoVZjcbY2w7jYQ4vYy8yjGqy3', // was read as an HTTP Digest header
    'I am about to order a banana and an apple and a lemon for the office party',
    'abandon ability able about above absent absorb abstract absurd abuse access', // 11 words
    Buffer.from('an ordinary blob of text without a pair').toString('base64'),
    Buffer.from(Uint8Array.from({ length: 48 }, (_, i) => (i * 97) & 0xff)).toString('base64'),
    Buffer.from('User:12345').toString('base64'), // a GraphQL global id
    'session=expired',
    'session_id=chat-2026-11-01',
    'sig=ok',
    'AccountKey=',
    'pypi-upload-job',
    'SKU-1234',
  ])('keeps %s', (v) => expect(looksLikeSecret(v)).toBe(false));

  it('drops a key-context field holding a 32-byte hex, keeps digests and addresses beside it', () => {
    const out = redactJson(
      {
        seed: `0x${hex32}`,
        signer_sk: hex32,
        digest: hex32,
        tx_digest: `0x${hex32}`,
        sender: `0x${hex32}`,
        note: `0x${hex32}`,
        seed_n: 42,
      },
      'metadata',
    );
    expect(out.value).toEqual({ digest: hex32, tx_digest: `0x${hex32}`, sender: `0x${hex32}`, note: `0x${hex32}`, seed_n: 42 });
    expect(out.redacted.sort()).toEqual(['metadata.seed', 'metadata.signer_sk']);
  });

  it('drops an array of mnemonic words whole', () => {
    const out = redactJson({ words: mnemonic(16).split(' '), tags: ['apple', 'banana'] }, 'metadata');
    expect(out.value).toEqual({ tags: ['apple', 'banana'] });
    expect(out.redacted).toEqual(['metadata.words']);
  });
});
