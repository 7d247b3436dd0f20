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
  for (const res of [await s.get('/v1/epochs'), await s.get('/v1/epochs', {}), await s.get('/healthz', {}), await s.get('/no/such/route', {}), await s.post('{')]) {
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
  }
});
