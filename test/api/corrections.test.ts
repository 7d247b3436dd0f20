// Corrections over HTTP (issue 24, docs/api.md "Corrections"), on both engines through the real
// service: void and amend by id, by request id in a batch; the `correct` right; the chain head
// rule (409 already_corrected naming the head); the correction window (422); idempotent retries;
// bad input named by field and rule, storing nothing; and the sealed correction's receipt verifies.
import { describe, expect, it } from 'vitest';
import type { Right } from '../../src/ledger/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { event, serverEachTest } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

const NOW = Date.parse('2026-03-12T12:00:00Z');
const DAY = 86_400_000;

forEachEngine((fresh) => {
  const s = serverEachTest(fresh, { now: () => NOW, correctionWindowMs: 7 * DAY });

  const keyWith = async (rights: Right[], owner = 'acme-inc', patterns = ['acme/*']) => {
    const k = await s.ledger.keys.create(owner, patterns, undefined, rights);
    return { authorization: `Bearer ${k.key}` };
  };
  const postJson = (url: string, body: unknown, headers: Record<string, string>) =>
    s.app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const record = async (fields: Record<string, unknown>) => {
    const res = await s.post(event({ ts: NOW - DAY, ...fields }));
    expect(res.statusCode).toBe(200);
    const r = res.json().results[0];
    expect(r.status).toBe('created');
    return r as { id: number; leaf_hash: string; request_id: string };
  };

  describe('void and amend by id', () => {
    it('needs the correct right: a key that may record gets 403 right_missing, and nothing is stored', async () => {
      const e = await record({ request_id: 'r-1' });
      const before = await s.count();
      const res = await postJson(`/v1/events/${e.id}/void`, { request_id: 'fix-1' }, s.auth);
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toMatchObject({ code: 'right_missing', details: [{ rule: 'right:correct' }] });
      expect(await s.count()).toBe(before);
    });

    it('amends, then voids the head; the stale version and anything after a void are 409 naming the head', async () => {
      const corrector = await keyWith(['record', 'read', 'correct']);
      const e = await record({ request_id: 'r-1', units: 10, action: 'chat' });
      const amend = await postJson(`/v1/events/${e.id}/amend`, { request_id: 'fix-1', units: 4, reason: 'double counted' }, corrector);
      expect(amend.statusCode).toBe(201);
      const a = amend.json();
      expect(a).toMatchObject({ status: 'created', kind: 'amend', request_id: 'fix-1', corrects_id: e.id, chain_id: e.id });
      expect(a.receipt).toBe(`/v1/events/${a.id}/receipt`);

      // A retry is the same answer with 200.
      const retry = await postJson(`/v1/events/${e.id}/amend`, { request_id: 'fix-1', units: 4, reason: 'double counted' }, corrector);
      expect(retry.statusCode).toBe(200);
      expect(retry.json()).toEqual({ ...a, status: 'duplicate' });
      // The same request id with other values: 409 request_id_conflict naming the field.
      const other = await postJson(`/v1/events/${e.id}/amend`, { request_id: 'fix-1', units: 5 }, corrector);
      expect(other.statusCode).toBe(409);
      expect(other.json().error.code).toBe('request_id_conflict');
      expect(other.json().error.details.map((d: { path: string }) => d.path)).toContain('units');

      const stale = await postJson(`/v1/events/${e.id}/void`, { request_id: 'fix-2' }, corrector);
      expect(stale.statusCode).toBe(409);
      expect(stale.json().error).toMatchObject({ code: 'already_corrected', details: [{ path: 'id', rule: 'chain_head' }] });
      expect(stale.json().error.message).toContain(`event ${a.id}`);

      const v = await postJson(`/v1/events/${a.id}/void`, { request_id: 'fix-3' }, corrector);
      expect(v.statusCode).toBe(201);
      expect(v.json()).toMatchObject({ kind: 'void', corrects_id: a.id, chain_id: e.id });
      const afterVoid = await postJson(`/v1/events/${v.json().id}/amend`, { request_id: 'fix-4', units: 1 }, corrector);
      expect(afterVoid.statusCode).toBe(409);
      expect(afterVoid.json().error.code).toBe('already_corrected');
    });

    it('refuses past the window (422), an unknown or foreign event (404), an empty amend and bad fields (400), storing nothing', async () => {
      const corrector = await keyWith(['record', 'read', 'correct']);
      const old = await record({ request_id: 'r-old', ts: NOW - 10 * DAY });
      const recent = await record({ request_id: 'r-new' });
      const before = await s.count();

      const closed = await postJson(`/v1/events/${old.id}/void`, { request_id: 'fix-1' }, corrector);
      expect(closed.statusCode).toBe(422);
      expect(closed.json().error).toMatchObject({
        code: 'correction_window_closed',
        details: [{ path: 'id', rule: `max_age_ms:${7 * DAY}` }],
      });

      expect((await postJson('/v1/events/999999/void', { request_id: 'fix-2' }, corrector)).statusCode).toBe(404);
      const foreign = await keyWith(['correct'], 'globex', ['acme/*']);
      expect((await postJson(`/v1/events/${recent.id}/void`, { request_id: 'fix-3' }, foreign)).statusCode).toBe(404);
      const narrow = await keyWith(['correct'], 'acme-inc', ['acme/dev']);
      const forbidden = await postJson(`/v1/events/${recent.id}/void`, { request_id: 'fix-3' }, narrow);
      expect(forbidden.statusCode).toBe(403);
      expect(forbidden.json().error.code).toBe('namespace_forbidden');

      const empty = await postJson(`/v1/events/${recent.id}/amend`, { request_id: 'fix-4' }, corrector);
      expect(empty.statusCode).toBe(400);
      expect(empty.json().error.details[0]).toMatchObject({ rule: 'required' });
      const badAction = await postJson(`/v1/events/${recent.id}/amend`, { request_id: 'fix-5', action: 'Not Valid' }, corrector);
      expect(badAction.statusCode).toBe(400);
      expect(badAction.json().error.details[0].path).toBe('action');
      const unknown = await postJson(`/v1/events/${recent.id}/void`, { request_id: 'fix-6', units: 3 }, corrector);
      expect(unknown.statusCode).toBe(400);
      const badId = await postJson('/v1/events/abc/void', { request_id: 'fix-7' }, corrector);
      expect(badId.statusCode).toBe(404); // as GET /v1/events/abc/receipt: no such event
      expect(await s.count()).toBe(before);
    });
  });

  describe('hostile and odd input', () => {
    it("another owner's event is 404 whatever the key's patterns: ids tell nothing of another owner's namespaces", async () => {
      const e = await record({ request_id: 'r-1' });
      const globex = await keyWith(['correct'], 'globex', ['globex/*']);
      const res = await postJson(`/v1/events/${e.id}/void`, { request_id: 'g-1' }, globex);
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain('acme/prod');
    });

    it('a request id with U+0000 is a named refusal or not found, never a 500, and never fails the rest of a batch', async () => {
      const corrector = await keyWith(['record', 'read', 'correct']);
      const e = await record({ request_id: 'r-1' });
      const single = await postJson(`/v1/events/${e.id}/void`, { request_id: 'w\u0000' }, corrector);
      expect(single.statusCode).toBe(400);
      expect(single.json().error.details[0].path).toBe('request_id');
      const batch = await postJson(
        '/v1/corrections',
        {
          corrections: [
            { kind: 'void', namespace: 'acme/prod', corrects_request_id: 'r-1', request_id: 'ok-first' },
            { kind: 'void', namespace: 'acme/prod', corrects_request_id: 'x\u0000', request_id: 'nul-2' },
            { kind: 'void', namespace: 'acme/prod', corrects_request_id: 'r-1', request_id: 'nul\u0000-3' },
          ],
        },
        corrector,
      );
      expect(batch.statusCode).toBe(200);
      expect(batch.json().results.map((r: { status: string }) => r.status)).toEqual(['created', 'not_found', 'rejected']);
    });

    it('an amendment that changes nothing is refused (it would only lengthen the chain); a long chain still names its head', async () => {
      const corrector = await keyWith(['record', 'read', 'correct']);
      const e = await record({ request_id: 'r-1', units: 5, artifact_digest: 'AB'.repeat(32) });
      const same = await postJson(
        `/v1/events/${e.id}/amend`,
        { request_id: 'same', units: 5, artifact_digest: 'ab'.repeat(32) },
        corrector,
      );
      expect(same.statusCode).toBe(400);
      expect(same.json().error.details[0].rule).toBe('unchanged');
      let head = e.id;
      for (let i = 1; i <= 25; i++) {
        const a = await postJson(`/v1/events/${head}/amend`, { request_id: `a-${i}`, units: 5 + i }, corrector);
        expect(a.statusCode).toBe(201);
        head = a.json().id;
      }
      const stale = await postJson(`/v1/events/${e.id}/void`, { request_id: 'late' }, corrector);
      expect(stale.statusCode).toBe(409);
      expect(stale.json().error.message).toContain(`event ${head}`);
    });

    it('ingest of a request id a correction holds is a conflict naming kind, not a duplicate', async () => {
      const corrector = await keyWith(['record', 'read', 'correct']);
      const e = await record({ request_id: 'r-1', units: 3, action: 'recall', caller: 'user-1' });
      const v = (await postJson(`/v1/events/${e.id}/void`, { request_id: 'd-2' }, corrector)).json();
      const res = await s.post(event({ request_id: 'd-2', units: 0, action: 'recall', caller: 'user-1', ts: NOW - DAY }));
      const r = res.json().results[0];
      expect(r.status).toBe('conflict');
      expect(r.id).toBe(v.id);
      expect(r.errors.map((x: { path: string }) => x.path)).toContain('kind');
    });
  });

  describe('POST /v1/corrections', () => {
    it('corrects by request id, one result per item in order; one bad item never fails another', async () => {
      const corrector = await keyWith(['record', 'read', 'correct']);
      await record({ request_id: 'r-1', units: 10 });
      await record({ request_id: 'r-2', units: 20 });
      const res = await postJson(
        '/v1/corrections',
        {
          corrections: [
            { kind: 'void', namespace: 'acme/prod', corrects_request_id: 'r-1', request_id: 'fix-1' },
            { kind: 'amend', namespace: 'acme/prod', corrects_request_id: 'r-2', request_id: 'fix-2', units: 2 },
            { kind: 'amend', namespace: 'acme/prod', corrects_request_id: 'r-2', request_id: 'fix-3', units: 3 },
            { kind: 'void', namespace: 'acme/prod', corrects_request_id: 'nope', request_id: 'fix-4' },
            { kind: 'amend', namespace: 'acme/prod', corrects_request_id: 'r-2', request_id: 'fix-5' },
            { kind: 'void', namespace: 'other/prod', corrects_request_id: 'r-2', request_id: 'fix-6' },
          ],
        },
        corrector,
      );
      expect(res.statusCode).toBe(200);
      const results = res.json().results;
      expect(results.map((r: { status: string }) => r.status)).toEqual([
        'created',
        'created',
        'already_corrected',
        'not_found',
        'rejected',
        'rejected',
      ]);
      expect(results[2].head_id).toBe(results[1].id);
      expect(results[5].errors[0].rule).toBe('namespace_forbidden');
      // One item on its own, and an unknown field refuses the whole request.
      const single = await postJson(
        '/v1/corrections',
        { kind: 'void', namespace: 'acme/prod', corrects_request_id: 'fix-2', request_id: 'fix-7' },
        corrector,
      );
      expect(single.json().results[0]).toMatchObject({ status: 'created', kind: 'void', corrects_id: results[1].id });
      const typo = await postJson(
        '/v1/corrections',
        { kind: 'void', namespace: 'acme/prod', corrects_request_id: 'r-2', request_id: 'fix-8', unit: 3 },
        corrector,
      );
      expect(typo.statusCode).toBe(400);
    });
  });

  describe('receipts', () => {
    it("a sealed correction's receipt is a leaf v2 receipt that verifies against its epoch root", async () => {
      const corrector = await keyWith(['record', 'read', 'correct']);
      const e = await record({ request_id: 'r-1', units: 10 });
      const a = (await postJson(`/v1/events/${e.id}/amend`, { request_id: 'fix-1', units: 3 }, corrector)).json();
      await sealAll(s.ledger, { maxEvents: 1000 });
      const res = await s.get(a.receipt);
      expect(res.statusCode).toBe(200);
      const receipt = res.json();
      expect(receipt.version).toBe(2);
      expect(receipt.event).toMatchObject({ kind: 'amend', corrects: e.leaf_hash, units: 3 });
      expect(receipt.leaf_hash).toBe(a.leaf_hash);
      expect(verifyReceipt(receipt)).toMatchObject({ ok: true });
    });
  });

  describe('with an action allow-list', () => {
    const a = serverEachTest(fresh, { now: () => NOW, actions: ['recall', 'chat'] });
    it('an amendment may not bring in an action ingest refuses', async () => {
      const k = await a.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['record', 'correct']);
      const auth = { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' };
      const e = (await a.post(event({ request_id: 'r-1', action: 'chat', ts: NOW - DAY }))).json().results[0];
      const res = await a.app.inject({
        method: 'POST',
        url: `/v1/events/${e.id}/amend`,
        headers: auth,
        payload: JSON.stringify({ request_id: 'fix-1', action: 'secret-free' }),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details[0]).toMatchObject({ path: 'action', rule: 'allowed_actions' });
    });
  });
});
