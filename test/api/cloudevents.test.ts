// POST /v1/events takes CloudEvents 1.0 (structured and batch), built here with the official
// CloudEvents JavaScript SDK: the mapping onto events, the same per-event results, idempotency and
// limits, and errors that name the CloudEvents attribute.
import { createHash } from 'node:crypto';
import { CloudEvent, CONSTANTS, HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testServer, testServerOn } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

let s: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  s = await testServer();
});
afterAll(() => s.close());

const time = () => new Date(Date.now() - 60_000).toISOString();
const ce = (over: Record<string, unknown> = {}) =>
  new CloudEvent({
    id: `ce-${Math.random().toString(36).slice(2)}`,
    source: 'https://agent.example/acme',
    type: 'recall',
    subject: 'agent-7',
    namespace: 'acme/prod',
    time: time(),
    datacontenttype: 'application/json',
    data: { units: 3, metadata: { model: 'm1' } },
    ...over,
  } as never);

const postMessage = (headers: Record<string, unknown>, body: unknown) =>
  s.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { ...s.auth, ...(headers as Record<string, string>) },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
const structured = (event: CloudEvent<unknown>) => {
  const message = HTTP.structured(event);
  return postMessage(message.headers, message.body);
};
const batch = (events: Array<CloudEvent<unknown> | Record<string, unknown>>) =>
  postMessage({ 'content-type': CONSTANTS.MIME_CE_BATCH }, JSON.stringify(events));
/** The request_id of (source, id) as the README defines it, written out here on its own. */
const key = (source: string, id: string) => {
  const full = `ce:${new TextEncoder().encode(source).length}:${source}:${id}`;
  return full.length <= 128 ? full : `ce-sha256:${createHash('sha256').update(full).digest('hex')}`;
};

describe('POST /v1/events with CloudEvents', () => {
  it('maps a structured CloudEvent onto an event: id, type, subject, time, source, namespace, and data', async () => {
    const event = ce({ data: { units: 7, artifact_digest: 'AB'.repeat(32), metadata: { model: 'm1' } } });
    const res = await structured(event);
    expect(res.statusCode).toBe(200);
    const [r] = res.json().results;
    expect(r).toMatchObject({ status: 'created', request_id: `ce:26:https://agent.example/acme:${event.id}` });
    const receipt = await s.receipt(r.id);
    expect(receipt.event).toEqual({
      namespace: 'acme/prod',
      request_id: `ce:26:https://agent.example/acme:${event.id}`,
      caller: 'agent-7',
      action: 'recall',
      units: 7,
      artifact_digest: 'ab'.repeat(32),
      ts_ms: Date.parse(event.time!),
    });
    const [row] = await s.sql<{ source: string; metadata: string }>('SELECT source, metadata FROM events WHERE id = ?', r.id);
    expect(row).toMatchObject({ source: 'https://agent.example/acme', metadata: '{"model":"m1"}' });
  });

  it('is idempotent like JSON: the same CloudEvent again is a duplicate, a changed one a conflict', async () => {
    const event = ce();
    const first = (await structured(event)).json().results[0];
    expect((await structured(event)).json().results[0]).toMatchObject({ status: 'duplicate', id: first.id });
    const changed = event.cloneWith({ data: { units: 4, metadata: { model: 'm1' } } } as never);
    expect((await structured(changed)).json().results[0]).toMatchObject({
      status: 'conflict',
      id: first.id,
      errors: [expect.objectContaining({ path: 'data.units', rule: 'same_as_recorded' })],
    });
    // The same event sent as JSON, under the request_id of its (source, id), is the same event.
    const json = await s.post({
      request_id: key(event.source, event.id),
      namespace: 'acme/prod',
      action: 'recall',
      caller: 'agent-7',
      units: 3,
      ts: event.time,
      source: event.source,
      metadata: { model: 'm1' },
    });
    expect(json.json().results[0]).toMatchObject({ status: 'duplicate', id: first.id });
  });

  it('takes a batch (application/cloudevents-batch+json): one result per event, one bad event never fails the others', async () => {
    const good = [ce(), ce()];
    const res = await batch([good[0]!, ce({ type: 'Not/An/Action' }), good[1]!]);
    expect(res.statusCode).toBe(200);
    const results = res.json().results;
    expect(results.map((r: { status: string }) => r.status)).toEqual(['created', 'rejected', 'created']);
    expect(results[1].errors).toEqual([
      expect.objectContaining({ path: 'type', rule: 'pattern:^[a-z0-9][a-z0-9._-]*$', message: expect.stringMatching(/^type must match/) }),
    ]);
    expect(results[0].request_id).toBe(key(good[0]!.source, good[0]!.id));
  });

  it.each([
    ['an id too long', { id: 'x'.repeat(129) }, 'id', 'max_length:128'],
    ['no subject', { subject: undefined }, 'subject', 'required'],
    ['no namespace extension', { namespace: undefined }, 'namespace', 'required'],
    ['no source (half of the identity)', { source: undefined }, 'source', 'required'],
    ['a time that is no date', { time: 'yesterday' }, 'time', 'epoch_ms_or_rfc3339'],
    ['negative units in data', { data: { units: -1 } }, 'data.units', 'min:0'],
    ['a bad digest in data', { data: { artifact_digest: 'zz' } }, 'data.artifact_digest', 'hex:64'],
    ['data not an object', { data: 'text', datacontenttype: 'text/plain' }, 'datacontenttype', 'one_of:application/json'],
  ])('rejects %s, naming the CloudEvents attribute', async (_n, over, path, rule) => {
    const res = await batch([{ ...ce().toJSON(), ...over }]);
    expect(res.statusCode).toBe(200);
    const [r] = res.json().results;
    expect(r.status).toBe('rejected');
    expect(r.errors).toContainEqual(expect.objectContaining({ path, rule }));
    expect(r.errors.find((e: { path: string }) => e.path === path).message.startsWith(path)).toBe(true);
  });

  it('rejects another specversion, and unknown data fields fail the whole request (a typo must not bill 1 unit)', async () => {
    const v03 = await batch([{ ...ce().toJSON(), specversion: '0.3' }]);
    expect(v03.json().results[0]).toMatchObject({
      status: 'rejected',
      errors: [expect.objectContaining({ path: 'specversion', rule: 'one_of:1.0' })],
    });
    const before = await s.count();
    const typo = await batch([ce(), { ...ce().toJSON(), data: { unit: 5 } }]);
    expect(typo.statusCode).toBe(400);
    expect(typo.json().error).toMatchObject({ code: 'unknown_field', details: [{ path: '[1].data.unit', rule: 'unknown_field' }] });
    expect(await s.count()).toBe(before);
  });

  it('keeps the limits: a batch is an array of at most 1,000; a structured body one object', async () => {
    expect((await batch(Array.from({ length: 1001 }, () => ce()))).json().error.code).toBe('too_many_events');
    const notArray = await postMessage({ 'content-type': CONSTANTS.MIME_CE_BATCH }, JSON.stringify(ce()));
    expect(notArray.statusCode).toBe(400);
    expect(notArray.json().error.code).toBe('invalid_body');
    const array = await postMessage({ 'content-type': CONSTANTS.MIME_CE_JSON }, JSON.stringify([ce()]));
    expect(array.json().error.code).toBe('invalid_body');
    const xml = await postMessage({ 'content-type': 'application/xml' }, '<a/>');
    expect(xml.statusCode).toBe(415);
    expect(xml.json().error.code).toBe('unsupported_media_type');
  });
});

// CloudEvents 1.0: "Producers MUST ensure that source + id is unique for each distinct event." The
// request_id keeps both, so producers that reuse an id never lose each other's events.
forEachEngine((fresh) => {
  describe('CloudEvents identity: (source, id)', () => {
    let t: Awaited<ReturnType<typeof testServer>>;
    beforeAll(async () => {
      t = await testServerOn(fresh);
    });
    afterAll(() => t.close());
    const send = async (...events: Array<CloudEvent<unknown> | Record<string, unknown>>) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...t.auth, 'content-type': CONSTANTS.MIME_CE_BATCH },
        payload: JSON.stringify(events),
      });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().results as Array<{
        status: string;
        id: number;
        request_id: string;
        errors?: Array<{ path: string; rule: string; message: string }>;
      }>;
    };

    it('two producers that reuse an id both record their event; each is idempotent on its own (source, id)', async () => {
      const id = `shared-${Math.random().toString(36).slice(2)}`;
      const a = ce({ id, source: 'https://a.example/meter', data: { units: 2 } });
      const b = ce({ id, source: 'https://b.example/meter', data: { units: 5 } });
      const [ra, rb] = await send(a, b);
      expect(ra).toMatchObject({ status: 'created', request_id: `ce:23:https://a.example/meter:${id}` });
      expect(rb).toMatchObject({ status: 'created', request_id: `ce:23:https://b.example/meter:${id}` });
      expect(rb!.id).not.toBe(ra!.id);
      // Retries: each meets its own event.
      const [again, againB] = await send(a, b);
      expect(again).toMatchObject({ status: 'duplicate', id: ra!.id });
      expect(againB).toMatchObject({ status: 'duplicate', id: rb!.id });
      // Both are billed, once each.
      expect(await t.count('namespace = ? AND units IN (2, 5) AND request_id LIKE ?', 'acme/prod', `%:${id}`)).toBe(2);
      // The receipt's request_id names the source too: the leaf proves whose event it is.
      expect((await t.receipt(rb!.id)).event.request_id).toBe(`ce:23:https://b.example/meter:${id}`);
    });

    it('the same (source, id) with other content is a conflict that names source and id, not a request_id', async () => {
      const event = ce({ source: 'https://a.example/meter' });
      const [first] = await send(event);
      const [changed] = await send(event.cloneWith({ data: { units: 9 } } as never));
      expect(changed).toMatchObject({ status: 'conflict', id: first!.id });
      const error = changed!.errors!.find((e) => e.path === 'data.units')!;
      expect(error.rule).toBe('same_as_recorded');
      expect(error.message).toContain(`source "https://a.example/meter"`);
      expect(error.message).toContain(`id "${event.id}"`);
      expect(error.message).not.toMatch(/request_id/);
    });

    it('no separator trick makes two pairs one request_id, and a long pair is hashed into the limit', async () => {
      const n = Math.random().toString(36).slice(2);
      // Plain source + ":" + id would make both "urn:x:…:1:y".
      const [r1, r2] = await send(ce({ source: `urn:x:${n}:1`, id: 'y' }), ce({ source: `urn:x:${n}`, id: '1:y' }));
      expect([r1!.status, r2!.status]).toEqual(['created', 'created']);
      expect(r1!.request_id).not.toBe(r2!.request_id);
      const source = `https://meter.example/${'s'.repeat(100)}`;
      const id = `${n}-${'i'.repeat(100)}`;
      const longEvent = ce({ source, id });
      const [long] = await send(longEvent);
      const full = `ce:${source.length}:${source}:${id}`;
      expect(long).toMatchObject({ status: 'created', request_id: `ce-sha256:${createHash('sha256').update(full).digest('hex')}` });
      expect(long!.request_id).toHaveLength(74);
      expect((await send(longEvent))[0]).toMatchObject({ status: 'duplicate', id: long!.id });
    });

    it('a CloudEvent stored before the upgrade (request_id = id alone) is met again when re-sent, not billed twice', async () => {
      // What the mapping of before stored: request_id = id, source = source (as a JSON event).
      const event = ce({ source: 'https://a.example/meter' });
      const [old] = (
        await t.post({
          request_id: event.id,
          namespace: 'acme/prod',
          action: 'recall',
          caller: 'agent-7',
          units: 3,
          ts: event.time,
          source: event.source,
          metadata: { model: 'm1' },
        })
      ).json().results;
      expect(old.status).toBe('created');
      const before = await t.count();
      expect((await send(event))[0]).toMatchObject({ status: 'duplicate', id: old.id, request_id: event.id });
      expect((await send(event.cloneWith({ data: { units: 4 } } as never)))[0]).toMatchObject({ status: 'conflict', id: old.id });
      expect(await t.count()).toBe(before);
      // Another producer's event with that id is its own event under the new mapping.
      const [other] = await send(ce({ id: event.id, source: 'https://b.example/meter' }));
      expect(other).toMatchObject({ status: 'created', request_id: `ce:23:https://b.example/meter:${event.id}` });
    });
  });
});
