// Deeply nested metadata must not overflow the stack (which answered 500 and lost the whole
// batch): nesting is bounded at 32 levels, checked without recursion, and the deep event is
// rejected with a field error while the valid events beside it are stored.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { event, testServer, type TestServer } from '../helpers.ts';

let s: TestServer;
beforeEach(async () => {
  s = await testServer();
});
afterEach(async () => {
  await s.close();
});

const DEEP = '"__deep__"';
/** A body with `levels` nested arrays (or objects) spliced in as text: the test's own JSON tools would recurse. */
const nestedText = (levels: number, kind: 'array' | 'object') =>
  kind === 'array' ? `${'['.repeat(levels)}1${']'.repeat(levels)}` : `${'{"k":'.repeat(levels)}1${'}'.repeat(levels)}`;
const withDeep = (body: unknown, levels: number, kind: 'array' | 'object' = 'array') =>
  JSON.stringify(body).replace(DEEP, nestedText(levels, kind));

describe('metadata depth', () => {
  it.each(['array', 'object'] as const)('rejects ~3,000 nested %ss in one event and stores the valid events beside it', async (kind) => {
    const body = withDeep({ events: [event(), event({ metadata: { x: '__deep__' } }), event()] }, 3000, kind);
    expect(body.length).toBeLessThan(20_000);
    const res = await s.post(body);
    expect(res.statusCode).toBe(200);
    const results = res.json().results;
    expect(results.map((r: { status: string }) => r.status)).toEqual(['created', 'rejected', 'created']);
    expect(results[1].errors).toEqual([expect.objectContaining({ path: 'metadata', rule: 'max_depth:32' })]);
    expect(results[1].errors[0].message).toMatch(/metadata.*32 levels/);
    expect(await s.count()).toBe(2);
  });

  it('answers a 1 MiB body of nested arrays without a 5xx', async () => {
    const levels = 250_000;
    const res = await s.post(withDeep(event({ metadata: { x: '__deep__' } }), levels));
    expect(res.statusCode).toBeLessThan(500);
    expect(await s.count()).toBe(0);
  });

  it('answers a 1 MiB wide metadata (500,000 elements) with max_bytes, quickly', async () => {
    const body = JSON.stringify(event({ metadata: { x: '__wide__' } })).replace('"__wide__"', `[${'1,'.repeat(500_000)}1]`);
    const t = performance.now();
    const [r] = (await s.post(body)).json().results;
    expect(r).toMatchObject({ status: 'rejected', errors: [{ path: 'metadata', rule: 'max_bytes:4096' }] });
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('accepts exactly 32 levels (metadata itself is the first) and rejects 33', async () => {
    const ok = withDeep(event({ metadata: { x: '__deep__' } }), 31);
    const tooDeep = withDeep(event({ metadata: { x: '__deep__' } }), 32, 'object');
    const [a] = (await s.post(ok)).json().results;
    const [b] = (await s.post(tooDeep)).json().results;
    expect(a.status).toBe('created');
    const stored = (s.db().prepare('SELECT metadata FROM events WHERE seq = ?').get(a.id) as { metadata: string }).metadata;
    expect(stored).toBe(`{"x":${nestedText(31, 'array')}}`);
    expect(b).toMatchObject({ status: 'rejected', errors: [{ path: 'metadata', rule: 'max_depth:32' }] });
  });

  it('rejects deep values in other fields as a type error, not a 500', async () => {
    const res = await s.post(withDeep({ events: [event({ caller: '__deep__' }), event({ units: '__deep__' }), event()] }, 5000));
    expect(res.statusCode).toBe(200);
    const results = res.json().results;
    expect(results.map((r: { status: string }) => r.status)).toEqual(['rejected', 'rejected', 'created']);
    expect(results[0].errors[0]).toMatchObject({ path: 'caller', rule: 'type:string' });
  });

  it('an event that is itself deeply nested is one bad event, not a failed batch', async () => {
    const res = await s.post(withDeep({ events: ['__deep__', event()] }, 5000));
    expect(res.statusCode).toBe(200);
    expect(res.json().results.map((r: { status: string }) => r.status)).toEqual(['rejected', 'created']);
  });
});
