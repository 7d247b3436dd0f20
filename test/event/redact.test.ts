import { describe, expect, it } from 'vitest';
import { isSecretKey, looksLikeSecret, redactJson, redactUrl, secretKind } from '../../src/event/redact.ts';

describe('credential redaction', () => {
  it.each([
    'authorization', 'Authorization', 'cookie', 'Set-Cookie', 'api_key', 'apiKey', 'X-API-KEY', 'apikey', 'token',
    'access_token', 'refreshToken', 'secret', 'client_secret', 'password', 'PASSWORD', 'private_key', 'privateKey',
    'delegate_key', 'delegateKey', 'credentials', 'mnemonic',
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

  it.each(['hello', 'bearer', 'the bearer of news', '0xabc', 'eyJ', 'gpt-5'])('keeps the value %s', (v) => expect(looksLikeSecret(v)).toBe(false));

  it('removes at any depth and inside arrays, and lists the paths', () => {
    const out = redactJson(
      { model: 'm', prompt_tokens: 5, headers: { Authorization: 'Basic dXNlcjpwYXNzd29yZA==', 'x-trace': 't' }, list: ['ok', 'Bearer abcdefghijk'], nested: [{ password: 'p' }] },
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
    'seed_phrase', 'seedPhrase', 'recovery_phrase', 'mnemonic_words', 'wallet_seed', 'backup_codes', 'APIKey', 'XApiKey',
    'x%2Dapi%2Dkey', 'Proxy-Authorization', 'aws_secret_access_key',
  ])('treats the key %s as a credential', (k) => expect(isSecretKey(k)).toBe(true));

  it.each(['seed', 'random_seed', 'passenger', 'max_tokens', 'monkey_count', 'phrase'])(
    'keeps the key %s',
    (k) => expect(isSecretKey(k)).toBe(false),
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
    'Token limit exceeded', 'Basic plan', 'Basic tier-1', 'Bearer bonds', 'Signature verified', 'OAuth 2.0', 'gpt-4o-mini',
    'risk-averse-sk-strategy', 'task-0123456789ABCDEFGHIJKLMNOP', 'auth:svc-1', 'urn:token:x', 'https://auth.example.com:443/login',
    'http://auth:8080/x', 'max_tokens=100', 'prompt_tokens: 5', '100%', '%E0%A4%A', 'a+b=c', 'sr_short_x',
  ])('keeps %s', (v) => expect(looksLikeSecret(v)).toBe(false));

  it("removes raw header pairs and name/value objects, and never echoes a key that is a credential", () => {
    const key = 'sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXk';
    const out = redactJson(
      { raw: ['Host', 'h', 'X-Api-Key', 'v1', 'Accept', '*/*'], pairs: [['cookie', 'c'], ['a', 'b']], har: [{ name: 'Authorization', value: 'v2' }], [key]: 1 },
      'metadata',
    );
    expect(out.value).toEqual({ raw: ['Host', 'h', 'Accept', '*/*'], pairs: [[], ['a', 'b']], har: [{ name: 'Authorization' }] });
    expect(out.redacted.sort()).toEqual(
      ['metadata.[redacted-key]', 'metadata.har[0].value', 'metadata.pairs[0][0]', 'metadata.pairs[0][1]', 'metadata.raw[2]', 'metadata.raw[3]'].sort(),
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
    expect(redactUrl('/v1/usage?namespace=a&x%2Dapi%2Dkey=v&q=Bearer%20abcdefgh1')).toBe('/v1/usage?namespace=a&x%2Dapi%2Dkey=[redacted]&q=[redacted]');
    expect(redactUrl('/v1/usage?sr_0a1b2c3d4e5f_Q29tZS1vbi10aGlzLWlzLWEtdGVzdC1rZXk')).toBe('/v1/usage?[redacted]');
    expect(redactUrl('/' + 'a/'.repeat(100) + 'password=x')).toBe('[redacted]');
    expect(redactUrl('/v1/usage/acme/prod?namespace=acme/prod&limit=10')).toBe('/v1/usage/acme/prod?namespace=acme/prod&limit=10');
  });
});
