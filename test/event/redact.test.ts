import { describe, expect, it } from 'vitest';
import { isSecretKey, looksLikeSecret, redactJson, redactUrl } from '../../src/event/redact.ts';

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
