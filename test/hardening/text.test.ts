// Text must not change on the way in: ill-formed Unicode in any field is refused with the field
// named (it used to be stored as U+FFFD, so a byte-identical retry answered conflict), and a
// body that is not valid UTF-8 is refused with 400 invalid_utf8 instead of being rewritten.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { event, testServer, type TestServer } from '../helpers.ts';

let s: TestServer;
beforeEach(async () => {
  s = await testServer();
});
afterEach(async () => {
  await s.close();
});

const postBytes = (payload: Buffer, contentType = 'application/json') =>
  s.app.inject({ method: 'POST', url: '/v1/events', headers: { ...s.auth, 'content-type': contentType }, payload });

describe('ill-formed Unicode (lone surrogates) is refused in every field', () => {
  // JSON text with a \ud800 escape: valid JSON and valid UTF-8, but not well-formed text once parsed.
  const lone = (text: string) => text.replace('LONE', '\\ud800');
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['source', { source: 'svc-LONE' }, 'source'],
    ['caller', { caller: 'user-LONE' }, 'caller'],
    ['request_id', { request_id: 'req-LONE' }, 'request_id'],
    ['a metadata value', { metadata: { note: 'hi LONE' } }, 'metadata.note'],
    ['a metadata value in an array', { metadata: { list: ['ok', 'LONE'] } }, 'metadata.list[1]'],
    ['a metadata key', { metadata: { n: { kLONE: 1 } } }, 'metadata.n.k\ufffd'],
  ];

  it.each(cases)('%s', async (_name, override, path) => {
    const body = lone(JSON.stringify(event(override)));
    for (let attempt = 0; attempt < 2; attempt++) {
      // the same bytes twice: rejected both times (never created, then conflict)
      const [r] = (await s.post(body)).json().results;
      expect(r.status).toBe('rejected');
      expect(r.errors).toContainEqual(expect.objectContaining({ path, rule: 'well_formed_text' }));
    }
    expect(await s.count()).toBe(0);
  });

  it('stores well-formed non-ASCII text exactly and answers a retry as duplicate', async () => {
    const body = JSON.stringify(event({ source: 'svc-é☃😀', caller: 'Zoë 😀', metadata: { note: 'naïve ☃ 😀', clé: 'v' } }));
    const first = (await s.post(body)).json().results[0];
    const again = (await s.post(body)).json().results[0];
    expect(first.status).toBe('created');
    expect(again).toMatchObject({ status: 'duplicate', id: first.id });
    const row = s.db().prepare('SELECT source, caller, metadata FROM events WHERE seq = ?').get(first.id) as Record<string, string>;
    expect(row).toEqual({ source: 'svc-é☃😀', caller: 'Zoë 😀', metadata: '{"clé":"v","note":"naïve ☃ 😀"}' });
  });
});

describe('a body that is not valid UTF-8 is refused, not rewritten', () => {
  const valid = () => Buffer.from(JSON.stringify(event({ source: 'svc-X' })));
  /** The valid body with the bytes of `X` replaced. */
  const withBytes = (bytes: number[]) => {
    const b = valid();
    const at = b.indexOf('svc-X') + 4;
    return Buffer.concat([b.subarray(0, at), Buffer.from(bytes), b.subarray(at + 1)]);
  };

  it.each([
    ['a stray continuation byte', [0x80]],
    ['0xFF', [0xff]],
    ['a truncated sequence', [0xe2, 0x98]],
    ['an overlong encoding of /', [0xc0, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ])('%s: 400 invalid_utf8, nothing stored', async (_name, bytes) => {
    const res = await postBytes(withBytes(bytes));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: { code: 'invalid_utf8', message: expect.stringMatching(/UTF-8/), details: [] } });
    expect(await s.count()).toBe(0);
  });

  it('also with a charset parameter, and in a batch (the whole request is refused)', async () => {
    const res = await postBytes(
      Buffer.concat([Buffer.from('{"events":['), withBytes([0xff]), Buffer.from(`,${JSON.stringify(event())}]}`)]),
      'application/json; charset=utf-8',
    );
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_utf8');
    expect(await s.count()).toBe(0);
  });

  it('accepts valid multi-byte UTF-8', async () => {
    const res = await postBytes(withBytes([...Buffer.from('é☃😀')]));
    expect(res.json().results[0].status).toBe('created');
    expect((s.db().prepare('SELECT source FROM events').get() as { source: string }).source).toBe('svc-é☃😀');
  });

  it('keeps the other body errors as they were', async () => {
    const cases: Array<[Buffer | string, string, number, string]> = [
      ['', 'application/json', 400, 'malformed_json'],
      ['{"request_id":', 'application/json', 400, 'malformed_json'],
      ['{"__proto__":{"x":1}}', 'application/json', 400, 'malformed_json'],
      [JSON.stringify(event()), 'text/plain', 415, 'unsupported_media_type'],
      [Buffer.alloc(1024 * 1024 + 1, 0x20), 'application/json', 413, 'payload_too_large'],
    ];
    for (const [payload, type, status, code] of cases) {
      const res = await s.app.inject({ method: 'POST', url: '/v1/events', headers: { ...s.auth, 'content-type': type }, payload });
      expect([res.statusCode, res.json().error.code]).toEqual([status, code]);
    }
    expect(await s.count()).toBe(0);
  });
});
