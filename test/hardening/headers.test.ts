// The usual response headers of a service that also serves a page, on every kind of answer.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { testServer, type TestServer } from '../helpers.ts';

let s: TestServer;
beforeAll(async () => {
  s = await testServer();
});
afterAll(async () => {
  await s.close();
});

it('sends nosniff, frame, referrer and content-security policies on API answers, errors and 404s', async () => {
  for (const res of [
    await s.get('/v1/epochs'),
    await s.get('/v1/epochs', {}),
    await s.get('/healthz', {}),
    await s.get('/no/such/route', {}),
    await s.post('{'),
  ]) {
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    // Exactly helmet's set for these options (computed once at start, see security-headers.ts).
    expect(Object.fromEntries(Object.entries(res.headers).filter(([k]) => HELMET.includes(k)))).toEqual({
      'content-security-policy':
        "default-src 'self';img-src 'self' data:;style-src 'self' 'unsafe-inline';connect-src 'self';object-src 'none';base-uri 'none';frame-ancestors 'none'",
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'origin-agent-cluster': '?1',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-dns-prefetch-control': 'off',
      'x-download-options': 'noopen',
      'x-frame-options': 'DENY',
      'x-permitted-cross-domain-policies': 'none',
      'x-xss-protection': '0',
    });
    expect(res.headers).not.toHaveProperty('strict-transport-security');
  }
});

const HELMET = [
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
];

it("computes helmet's headers once, and refuses options that would need the request", async () => {
  const { helmetHeaders } = await import('../../src/api/security-headers.ts');
  expect(helmetHeaders({ frameguard: { action: 'deny' } }).set['x-frame-options']).toBe('DENY');
  expect(helmetHeaders({}).remove).toContain('x-powered-by');
  expect(() =>
    helmetHeaders({ contentSecurityPolicy: { directives: { scriptSrc: [(req) => `'nonce-${String((req as { n?: string }).n)}'`] } } }),
  ).toThrow(/depend on the request/);
});
