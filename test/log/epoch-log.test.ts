// The epoch log through HTTP, on both engines: each seal signs a checkpoint in its transaction;
// a proof bundle verifies offline with the pure core alone (receipt → epoch root, epoch header →
// checkpoint root, checkpoint signature by the log key); consistency proofs verify between every
// pair of sizes; a tampered epoch root stops sealing and stores nothing.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  epochLeafHash,
  formatSignerKey,
  fromBase64,
  generateSigningKey,
  parseCheckpoint,
  parseVerifierKey,
  toBase64,
  verifierKeyOf,
  verifyCheckpoint,
} from '../../src/checkpoint/index.ts';
import { EpochLogError, logSigner, type SqliteLedger } from '../../src/ledger/index.ts';
import { verifyConsistency } from '../../src/merkle/consistency.ts';
import { equalBytes, rootFromInclusionProof } from '../../src/merkle/proof.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { event, serverEachTest, testServerOn, until } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

const key = generateSigningKey('receipts.example.com/acme');
const signer = logSigner(key);
const hexBytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

forEachEngine((fresh, engine) => {
  describe('the epoch log', () => {
    const s = serverEachTest(fresh, { logKey: key });

    const post = async (n: number) => {
      const res = await s.post({ events: Array.from({ length: n }, () => event()) });
      return res.json().results.map((r: { id: number }) => r.id) as number[];
    };
    const seal = (maxEvents = 100) => sealNext(s.ledger, { maxEvents, log: signer });
    const checkpoints = async () => Number((await s.sql<{ n: number | string }>('SELECT count(*) AS n FROM checkpoints'))[0]!.n);

    it('signs a checkpoint with every seal, served without an API key', async () => {
      expect((await s.get('/checkpoint', {})).json().error.code).toBe('no_checkpoint');
      expect((await s.get('/v1/log', {})).json()).toEqual({ origin: key.name, vkey: verifierKeyOf(key), size: 0 });
      await post(3);
      await seal(2);
      await seal(2);
      const res = await s.get('/checkpoint', {});
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const verified = verifyCheckpoint(res.body, parseVerifierKey(verifierKeyOf(key)));
      expect(verified.checkpoint.origin).toBe(key.name);
      expect(verified.checkpoint.size).toBe(2);
      expect((await s.get('/v1/log', {})).json().size).toBe(2);
      expect(await checkpoints()).toBe(2);
    });

    it('hands out a proof bundle that verifies offline, from the leaf to the signed checkpoint', async () => {
      const ids = await post(7);
      for (let i = 0; i < 4; i++) await seal(2); // epochs of 2, 2, 2, 1
      const { vkey } = (await s.get('/v1/log', {})).json();
      const log = parseVerifierKey(vkey);
      for (const id of ids) {
        const res = await s.get(`/v1/events/${id}/proof`);
        expect(res.statusCode).toBe(200);
        const bundle = res.json();
        // 1. the receipt: leaf → epoch root
        const receipt = verifyReceipt(bundle.receipt);
        expect(receipt.ok).toBe(true);
        const h = bundle.epoch_header;
        expect(h.root).toBe(bundle.receipt.root);
        expect(h.size).toBe(bundle.receipt.tree_size);
        expect(h.epoch).toBe(bundle.receipt.epoch);
        // 2. the checkpoint, signed by the log key
        const { checkpoint } = verifyCheckpoint(bundle.checkpoint, log);
        // 3. the epoch header → the checkpoint root
        const leaf = epochLeafHash({ ...h, root: hexBytes(h.root) });
        expect(bundle.epoch_proof.index).toBe(h.epoch);
        expect(bundle.epoch_proof.size).toBe(checkpoint.size);
        const walked = rootFromInclusionProof(
          leaf,
          bundle.epoch_proof.index,
          bundle.epoch_proof.size,
          bundle.epoch_proof.hashes.map(hexBytes),
        );
        expect('root' in walked && equalBytes(walked.root, checkpoint.root)).toBe(true);
        // A tampered header leads elsewhere.
        const other = epochLeafHash({ ...h, root: hexBytes(h.root), size: h.size + 1 });
        const wrong = rootFromInclusionProof(
          other,
          bundle.epoch_proof.index,
          bundle.epoch_proof.size,
          bundle.epoch_proof.hashes.map(hexBytes),
        );
        expect('root' in wrong && equalBytes(wrong.root, checkpoint.root)).toBe(false);
      }
    });

    it('proves consistency between every pair of sizes of a small log', async () => {
      const roots: Uint8Array[] = [];
      for (let n = 1; n <= 6; n++) {
        await post(1);
        await seal();
        roots[n] = parseCheckpoint(`${(await s.get('/checkpoint', {})).body.split('\n\n')[0]!}\n`).root;
      }
      for (let m = 1; m <= 6; m++)
        for (let n = m; n <= 6; n++) {
          const res = await s.get(`/v1/log/consistency?from=${m}&to=${n}`, {});
          expect(res.statusCode).toBe(200);
          const proof = (res.json().hashes as string[]).map(hexBytes);
          expect(verifyConsistency(m, n, proof, roots[m]!, roots[n]!)).toEqual({ ok: true });
          if (m < n) expect(verifyConsistency(m, n, proof, roots[n]!, roots[n]!).ok).toBe(false);
        }
      for (const q of ['from=0&to=2', 'from=3&to=2', 'from=1&to=7', 'from=1'])
        expect((await s.get(`/v1/log/consistency?${q}`, {})).json().error.code).toBe('invalid_query');
    });

    it('answers not_in_log for a pending event, 401 without a key, 404 to a key that may not read it', async () => {
      const [id] = await post(1);
      expect((await s.get(`/v1/events/${id}/proof`)).json().error.code).toBe('not_in_log');
      await sealNext(s.ledger, { maxEvents: 100 }); // sealed without the log key: not in a checkpoint yet
      expect((await s.get(`/v1/events/${id}/proof`)).json().error.code).toBe('not_in_log');
      expect((await s.get(`/v1/events/${id}/proof`, {})).statusCode).toBe(401);
      const other = await s.ledger.keys.create('globex', ['globex/*']);
      expect((await s.get(`/v1/events/${id}/proof`, { authorization: `Bearer ${other.key}` })).json().error.code).toBe('not_found');
    });

    it('signs the whole log at the first seal with a key on a ledger that has epochs and no checkpoint', async () => {
      await post(3);
      await sealNext(s.ledger, { maxEvents: 1 });
      await sealNext(s.ledger, { maxEvents: 1 });
      expect(await checkpoints()).toBe(0);
      await seal();
      const cp = verifyCheckpoint((await s.get('/checkpoint', {})).body, parseVerifierKey(verifierKeyOf(key)));
      expect(cp.checkpoint.size).toBe(3);
    });

    it('refuses to sign a log inconsistent with its last checkpoint: nothing is stored', async () => {
      await post(2);
      await seal(1);
      await seal(1);
      await s.sql('UPDATE epochs SET root = ? WHERE epoch = 0', Buffer.alloc(32, 7));
      await post(1);
      await expect(seal()).rejects.toThrow(EpochLogError);
      await expect(seal()).rejects.toThrow(/not consistent with the checkpoint of size 2/);
      expect(await checkpoints()).toBe(2);
      expect(Number((await s.sql<{ n: number | string }>('SELECT count(*) AS n FROM epochs'))[0]!.n)).toBe(2);
      expect((await s.ledger.events.unsealed()).events).toBe(1);
    });

    it.runIf(engine === 'sqlite')('never stores the private key in the database or writes it to a log line', async () => {
      await post(3);
      await seal(1);
      await seal(1);
      await s.get('/checkpoint', {});
      const secret = formatSignerKey(key);
      const seed = toBase64(key.seed);
      const file = readFileSync((s.ledger as SqliteLedger).location);
      expect(file.includes(secret)).toBe(false);
      expect(file.includes(Buffer.from(key.seed))).toBe(false);
      expect(file.includes(seed)).toBe(false);
      const logs = s.logs.join('');
      expect(logs).not.toContain(secret);
      expect(logs).not.toContain(seed);
      // the key's base64 material is everything after PRIVATE+KEY+name+hash+, and may itself hold '+'
      const material = secret.split('+').slice(4).join('+');
      expect(material.length).toBe(44);
      expect(logs).not.toContain(material);
      expect(fromBase64(seed)).toEqual(key.seed);
    });
  });

  describe('the epoch log, sealed by the service', () => {
    it('signs with each background seal (a worker thread on SQLite) and stops sealing, loudly, on a tampered epoch', async () => {
      const s = await testServerOn(fresh, { logKey: key, sealing: { epochMs: 20, maxEvents: 100 } });
      try {
        await s.app.ready();
        await s.post(event());
        await until(async () => (await s.get('/v1/log', {})).json().size === 1);
        await s.post(event());
        await until(async () => (await s.get('/v1/log', {})).json().size === 2);
        verifyCheckpoint((await s.get('/checkpoint', {})).body, parseVerifierKey(verifierKeyOf(key)));
        await s.sql('UPDATE epochs SET root = ? WHERE epoch = 1', Buffer.alloc(32, 9));
        await s.post(event());
        await until(() => s.logs.join('').includes('SEALING STOPPED'));
        // Said where an operator looks, not only in a log line: /healthz is degraded and says why.
        const health = (await s.get('/healthz', {})).json();
        expect(health).toMatchObject({ status: 'degraded', sealing: { status: 'stopped', error: expect.stringMatching(/checkpoint/) } });
        await new Promise((r) => setTimeout(r, 100));
        expect((await s.ledger.events.unsealed()).events).toBe(1);
        expect((await s.get('/v1/log', {})).json().size).toBe(2);
        expect(s.logs.join('')).not.toContain(formatSignerKey(key));
      } finally {
        await s.close();
      }
    });

    it('without a log key the log routes answer log_off', async () => {
      const s = await testServerOn(fresh);
      try {
        expect((await s.get('/checkpoint', {})).json().error.code).toBe('log_off');
        expect((await s.get('/v1/log', {})).json().error.code).toBe('log_off');
        expect((await s.get('/v1/log/consistency?from=1&to=1', {})).json().error.code).toBe('log_off');
        const [id] = (await s.post(event())).json().results.map((r: { id: number }) => r.id);
        expect((await s.get(`/v1/events/${id}/proof`)).json().error.code).toBe('log_off');
      } finally {
        await s.close();
      }
    });
  });
});
