// Witness cosignatures stored on both engines (migration 009): the service submits each new
// checkpoint to a witness (here in this process, on a port), stores the cosignature it returns
// and serves it appended to GET /checkpoint and the proof bundle's checkpoint. The store refuses
// what is not a cosignature of a stored checkpoint.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  generateSigningKey,
  parseCosignerKey,
  verifierKeyOf,
  verifyCheckpoint,
  parseVerifierKey,
  cosignerVerifierOf,
  formatVerifierKey,
} from '../../src/checkpoint/index.ts';
import { createWitnessServer } from '../../src/witness/server.ts';
import { WitnessStore } from '../../src/witness/store.ts';
import { parseWitnessArg } from '../../src/witness/submitter.ts';
import { openPostgresLedger } from '../../src/ledger/postgres/index.ts';
import { buildService } from '../../src/service.ts';
import { event, tempDir, testServerOn, until } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

const t = tempDir('receipts-cosig-');
let n = 0;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function inProcessWitness(logVkey: string) {
  const key = generateSigningKey(`witness.test/inproc-${++n}`);
  const store = new WitnessStore(join(t.dir, `w${n}.db`));
  const log = parseVerifierKey(logVkey);
  const server = createWitnessServer({ key, logs: new Map([[log.name, [log]]]), store, logger: pino({ level: 'silent' }) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
    () => store.close(),
  );
  return { url, vkey: formatVerifierKey(cosignerVerifierOf(key)), vkey01: verifierKeyOf(key) };
}

forEachEngine((fresh, engine) => {
  describe('witness cosignatures', () => {
    it('each new checkpoint is cosigned by the witness, stored, and served with GET /checkpoint and the proof bundle', async () => {
      const logKey = generateSigningKey(`receipts.test/cosig-${++n}`);
      const w = await inProcessWitness(verifierKeyOf(logKey));
      // The witness given by its type 0x01 vkey (what signing-key create printed): the same key.
      const s = await testServerOn(fresh, {
        logKey,
        sealing: { epochMs: 10, maxEvents: 1000 },
        witnesses: [parseWitnessArg(`${w.url}=${w.vkey01}`)],
      });
      cleanups.push(() => s.close());
      const witness = parseCosignerKey(w.vkey);
      const log = parseVerifierKey(verifierKeyOf(logKey));
      const cosignedAt = async (size: number) => {
        const res = await s.get('/checkpoint', {});
        if (res.statusCode !== 200) return false;
        const v = verifyCheckpoint(res.body, log, { witnesses: [witness] });
        return v.checkpoint.size >= size && v.cosignatures.length === 1;
      };
      const ids: number[] = [];
      for (let size = 1; size <= 3; size++) {
        const res = await s.post({ events: [event(), event()] });
        ids.push(...res.json().results.map((r: { id: number }) => r.id));
        await until(() => cosignedAt(size));
      }
      const res = await s.get('/checkpoint', {});
      const v = verifyCheckpoint(res.body, log, { witnesses: [witness], minWitnesses: 1 });
      expect(v.cosignatures[0]).toMatchObject({ name: witness.name, type: 0x04 });
      // One row per cosigned size, keyed by the witness's 0x04 vkey whatever form it was given in.
      const rows = await s.sql<{ size: number | string; witness: string }>('SELECT size, witness FROM witness_cosignatures ORDER BY size');
      expect(rows.length).toBeGreaterThanOrEqual(3);
      expect(new Set(rows.map((r) => r.witness))).toEqual(new Set([w.vkey]));
      expect(await s.ledger.cosignatures.latestSize(w.vkey)).toBe(v.checkpoint.size);
      // The proof bundle's checkpoint carries the cosignature too.
      const bundle = (await s.get(`/v1/events/${ids[0]}/proof`)).json();
      expect(verifyCheckpoint(bundle.checkpoint, log, { witnesses: [witness], minWitnesses: 1 }).cosignatures).toHaveLength(1);
      const health = (await s.get('/healthz', {})).json();
      expect(health.status).toBe('ok');
      expect(health.witnesses).toEqual([{ url: w.url, vkey: w.vkey, status: 'ok', cosigned_size: v.checkpoint.size, error: null }]);
      const metrics = (await s.get('/metrics', {})).body;
      expect(metrics).toMatch(new RegExp(`receipts_witness_submissions_total\\{witness="${witness.name}",result="cosigned"\\} [1-9]`));
    });

    it('a witness that never answers delays no seal (its request times out), and one that answers without a valid cosignature is refused: degraded', async () => {
      const logKey = generateSigningKey(`receipts.test/slow-${++n}`);
      // Accepts connections and never answers.
      const held: Socket[] = [];
      const silent = createTcpServer((socket) => held.push(socket));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      // Answers 200 with a signature line by another key.
      const liar = createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/x.tlog.signature' });
        res.end(`\u2014 witness.test/liar ${'A'.repeat(104)}\n`);
      });
      await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
      cleanups.push(
        () => new Promise<void>((r) => silent.close(() => r())),
        () => held.forEach((sock) => sock.destroy()),
        () => new Promise<void>((r) => liar.close(() => r())),
      );
      const silentKey = verifierKeyOf(generateSigningKey('witness.test/silent'));
      const liarKey = verifierKeyOf(generateSigningKey('witness.test/liar'));
      const s = await testServerOn(fresh, {
        logKey,
        sealing: { epochMs: 10, maxEvents: 1000 },
        witnesses: [
          parseWitnessArg(`http://127.0.0.1:${(silent.address() as AddressInfo).port}=${silentKey}`),
          parseWitnessArg(`http://127.0.0.1:${(liar.address() as AddressInfo).port}=${liarKey}`),
        ],
        witnessTimeoutMs: 300,
      });
      cleanups.push(() => s.close());
      // Five seals, each signed, while one witness hangs every request.
      for (let size = 1; size <= 5; size++) {
        await s.post({ events: [event()] });
        await until(async () => (await s.get('/v1/log', {})).json().size >= size);
      }
      await until(async () => {
        const h = (await s.get('/healthz', {})).json();
        return h.witnesses[0].status === 'unreachable' && h.witnesses[1].status === 'refused';
      });
      const health = (await s.get('/healthz', {})).json();
      expect(health.status).toBe('degraded'); // the liar needs a person; the silent one only retries
      expect(health.sealing.status).toBe('ok');
      expect(health.witnesses[0].error).toMatch(/no answer from .* within 300 ms/);
      expect(health.witnesses[1].error).toMatch(/without a valid cosignature/);
      expect(await s.ledger.cosignatures.forSize((await s.get('/v1/log', {})).json().size)).toEqual([]);
    });

    it.skipIf(engine !== 'postgres')('PostgreSQL: only the leader submits; a follower given the same witness sends nothing', async () => {
      const logKey = generateSigningKey(`receipts.test/leader-${++n}`);
      const w = await inProcessWitness(verifierKeyOf(logKey));
      const witnesses = [parseWitnessArg(`${w.url}=${w.vkey}`)];
      const s = await testServerOn(fresh, { logKey, sealing: { epochMs: 10, maxEvents: 1000 }, witnesses });
      cleanups.push(() => s.close());
      const second = await openPostgresLedger(s.ledger.location, { leaseMs: 600 });
      const follower = buildService({ ledger: second, logKey, sealing: { epochMs: 10, maxEvents: 1000 }, witnesses });
      cleanups.push(async () => {
        await follower.close();
        await second.close();
      });
      await follower.ready();
      expect(second.leadership.role()).toBe('follower');
      await s.post({ events: [event()] });
      await until(async () => (await s.ledger.cosignatures.latestSize(w.vkey)) === 1);
      const metrics = (await follower.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).not.toMatch(/receipts_witness_submissions_total\{/);
      expect((await follower.inject({ method: 'GET', url: '/healthz' })).json().witnesses[0].status).toBe('pending');
    });

    it('the store refuses what is not a cosignature of a stored checkpoint, naming the field', async () => {
      const s = await testServerOn(fresh, {});
      cleanups.push(() => s.close());
      const c = { size: 1, witness: 'w+01020304+AAAA', line: `\u2014 w ${'A'.repeat(104)}`, cosigned_at: 1, received_at_ms: 2 };
      await expect(s.ledger.cosignatures.add(c)).rejects.toThrow(/cosignature size: no checkpoint of size 1 is stored/);
      await expect(s.ledger.cosignatures.add({ ...c, line: 'x\n— y' })).rejects.toThrow(/cosignature line: must be one signature line/);
      await expect(s.ledger.cosignatures.add({ ...c, size: 0 })).rejects.toThrow(/cosignature size: must be a checkpoint size/);
      await expect(s.ledger.cosignatures.add({ ...c, witness: 'a b' })).rejects.toThrow(/cosignature witness/);
      expect(await s.ledger.cosignatures.forSize(1)).toEqual([]);
      expect(await s.ledger.cosignatures.latestSize(c.witness)).toBeNull();
    });
  });
});
