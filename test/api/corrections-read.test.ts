// The read side of corrections (issue 24), through HTTP on both engines: a correction's receipt is
// a receipt v2 that the verifier checks (and links to the version it replaces), a replaced
// version's receipt says by which event, GET /v1/events/:id shows the chain, and an event is
// found by its idempotency key.
import { describe, expect, it } from 'vitest';
import { generateSigningKey, verifierKeyOf } from '../../src/checkpoint/index.ts';
import { verifyReceipt } from '../../src/index.ts';
import { logSigner } from '../../src/ledger/index.ts';
import { verifyProofBundle } from '../../src/verify/index.ts';
import type { CorrectionToWrite } from '../../src/ledger/types.ts';
import { sealAll, sealNext } from '../../src/seal/sealer.ts';
import { event, serverEachTest, type TestServer } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

/** A void or an amendment written through the ledger (the write routes are another change's). */
async function correct(s: TestServer, target: number, kind: 'void' | 'amend', requestId: string, changes?: CorrectionToWrite['changes']) {
  const [r] = await s.ledger.events.correct([
    {
      kind,
      target: { id: target },
      request_id: requestId,
      ...(changes && { changes }),
      owner: 'acme-inc',
      keyId: s.keyId,
      notBeforeMs: 0,
      receivedAtMs: Date.now(),
    },
  ]);
  if (r?.status !== 'created') throw new Error(`correction not created: ${JSON.stringify(r)}`);
  return r;
}

const logKey = generateSigningKey('receipts.example.com/corrections');

forEachEngine((fresh) => {
  const s = serverEachTest(fresh, { logKey });
  const receiptOf = async (id: number) => (await s.get(`/v1/events/${id}/receipt`)).json();

  /** An event, amended (units 5), then the amendment voided. */
  async function chain() {
    const original = event({ units: 3, artifact_digest: 'ab'.repeat(32) });
    const [a] = (await s.post(original)).json().results;
    const b = await correct(s, a.id, 'amend', `${original.request_id}-amend`, { units: 5 });
    const c = await correct(s, b.id, 'void', `${original.request_id}-void`);
    return { original, a, b, c };
  }

  describe('receipts of corrections', () => {
    it('builds a receipt v2 for a correction, pending then sealed, that verifies and links to the version it replaces', async () => {
      const { a, b, c } = await chain();
      const pending = await receiptOf(b.id);
      expect(pending).toMatchObject({ version: 2, status: 'pending', proof: null, leaf_hash: b.leaf_hash });
      expect(pending.event).toMatchObject({ kind: 'amend', corrects: a.leaf_hash, units: 5 });

      await sealAll(s.ledger, { maxEvents: 1000 });
      const [ra, rb, rc] = [await receiptOf(a.id), await receiptOf(b.id), await receiptOf(c.id)];
      expect(ra).toMatchObject({ version: 1, status: 'sealed', corrected_by: { id: b.id, kind: 'amend' } });
      expect(ra.event.kind).toBeUndefined();
      expect(rb).toMatchObject({ version: 2, status: 'sealed', corrected_by: { id: c.id, kind: 'void' } });
      expect(rb.event).toMatchObject({ kind: 'amend', corrects: a.leaf_hash });
      expect(rc).toMatchObject({ version: 2, event: { kind: 'void', units: 0, corrects: b.leaf_hash } });
      expect(rc.corrected_by).toBeUndefined();
      for (const r of [ra, rb, rc]) expect(verifyReceipt(r).ok, JSON.stringify(verifyReceipt(r))).toBe(true);
      expect(verifyReceipt(rb, { corrected: ra }).ok).toBe(true);
      expect(verifyReceipt(rc, { corrected: rb }).ok).toBe(true);
      // The label is not the proof: the void does not correct the original.
      expect(verifyReceipt(rc, { corrected: ra })).toMatchObject({ ok: false, code: 'correction_mismatch' });
    });

    it("hands out a correction's proof bundle, its receipt v2 verifying up to the signed checkpoint", async () => {
      const { b, c } = await chain();
      await sealNext(s.ledger, { maxEvents: 1000, log: logSigner(logKey) });
      for (const id of [b.id, c.id]) {
        const res = await s.get(`/v1/events/${id}/proof`);
        expect(res.statusCode, res.body).toBe(200);
        const bundle = res.json();
        expect(bundle.receipt).toMatchObject({ version: 2, id });
        expect(verifyProofBundle(bundle, { logKeys: [verifierKeyOf(logKey)] })).toMatchObject({ ok: true });
      }
      expect((await s.get(`/v1/events/${b.id}/proof`)).json().receipt.corrected_by).toEqual({ id: c.id, kind: 'void' });
    });

    it('pages corrections with receipts=true, every receipt v1 or v2 verifying', async () => {
      const { a, b, c } = await chain();
      await s.post(event({ units: 2 }));
      await sealAll(s.ledger, { maxEvents: 1000 });
      const res = await s.get('/v1/usage?namespace=acme/prod&receipts=true&limit=100');
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json();
      const byId = new Map((page.events as Array<{ id: number; version: number }>).map((r) => [r.id, r]));
      expect(byId.get(a.id)).toMatchObject({ version: 1, corrected_by: { id: b.id } });
      expect(byId.get(b.id)).toMatchObject({ version: 2, event: { kind: 'amend' } });
      expect(byId.get(c.id)).toMatchObject({ version: 2, event: { kind: 'void' } });
      for (const r of page.events) expect(verifyReceipt(r).ok).toBe(true);
    });
  });

  describe('an event and its chain', () => {
    it('GET /v1/events/:id shows every version in order, each with its receipt link, from any version', async () => {
      const { original, a, b, c } = await chain();
      for (const id of [a.id, b.id, c.id]) {
        const res = await s.get(`/v1/events/${id}`);
        expect(res.statusCode).toBe(200);
        const view = res.json();
        expect(view).toMatchObject({ id, chain_id: a.id, head_id: c.id, receipt: `/v1/events/${id}/receipt` });
        expect(view.chain.map((v: { id: number; kind: string }) => [v.id, v.kind])).toEqual([
          [a.id, 'event'],
          [b.id, 'amend'],
          [c.id, 'void'],
        ]);
        expect(view.chain[1]).toMatchObject({ corrects_id: a.id, corrects: a.leaf_hash, units: 5, receipt: `/v1/events/${b.id}/receipt` });
        expect(view.chain[2]).toMatchObject({ corrects_id: b.id, corrects: b.leaf_hash, units: 0 });
        // Each link is fetched as it says, and is the receipt of that version.
        for (const v of view.chain) expect((await s.get(v.receipt)).json().leaf_hash).toBe(v.leaf_hash);
      }
      expect((await s.get(`/v1/events/${a.id}`)).json()).toMatchObject({
        kind: 'event',
        request_id: original.request_id,
        units: 3,
        corrected_by: { id: b.id, kind: 'amend' },
      });
    });

    it('an event never corrected has a chain of one', async () => {
      const [r] = (await s.post(event())).json().results;
      const view = (await s.get(`/v1/events/${r.id}`)).json();
      expect(view).toMatchObject({ id: r.id, kind: 'event', chain_id: r.id, head_id: r.id, leaf_hash: r.leaf_hash });
      expect(view.chain).toHaveLength(1);
      expect(view.corrected_by).toBeUndefined();
      expect((await s.get('/v1/events/999999')).statusCode).toBe(404);
    });

    it('GET /v1/events?namespace=&request_id= finds an event or a correction by its idempotency key', async () => {
      const { original, a, b } = await chain();
      const found = await s.get(`/v1/events?namespace=acme/prod&request_id=${encodeURIComponent(original.request_id)}`);
      expect(found.statusCode).toBe(200);
      expect(found.json()).toMatchObject({ id: a.id, leaf_hash: a.leaf_hash, receipt: `/v1/events/${a.id}/receipt` });
      const amend = (await s.get(`/v1/events?namespace=acme/prod&request_id=${encodeURIComponent(`${original.request_id}-amend`)}`)).json();
      expect(amend).toMatchObject({ id: b.id, kind: 'amend', corrects_id: a.id });

      const missing = await s.get('/v1/events?namespace=acme/prod&request_id=nope');
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe('not_found');
    });

    it('checks the namespace against the key and the query against its rules', async () => {
      const [r] = (await s.post(event({ namespace: 'acme/dev' }))).json().results;
      const other = await s.ledger.keys.create('other-inc', ['other/*'], undefined, ['read']);
      const otherAuth = { authorization: `Bearer ${other.key}` };
      // Another key's namespace: as missing as a request id never recorded.
      expect((await s.get(`/v1/events?namespace=acme/dev&request_id=${encodeURIComponent(r.request_id)}`, otherAuth)).statusCode).toBe(404);
      expect((await s.get(`/v1/events/${r.id}`, otherAuth)).statusCode).toBe(404);
      expect((await s.get(`/v1/events?namespace=acme/dev&request_id=${encodeURIComponent(r.request_id)}`)).statusCode).toBe(200);

      for (const [query, field] of [
        ['namespace=acme/dev', 'request_id'],
        [`namespace=acme/dev&request_id=${'x'.repeat(129)}`, 'request_id'],
        ['namespace=acme/dev&request_id=a&limit=3', 'limit'],
      ] as const) {
        const res = await s.get(`/v1/events?${query}`);
        expect(res.statusCode, query).toBe(400);
        expect(res.json().error.code).toBe('invalid_query');
        expect(JSON.stringify(res.json().error), query).toContain(field);
      }
      // A key without the read right is refused before anything is looked up.
      const recorder = await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['record']);
      const refused = await s.get('/v1/events?namespace=acme/dev&request_id=a', { authorization: `Bearer ${recorder.key}` });
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.code).toBe('right_missing');
    });
  });
});
