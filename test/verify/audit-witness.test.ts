// auditPeriod with a real witness: `receipts witness serve` in a child process cosigns the service's
// checkpoints (serve's witness submitter), and the audit counts its cosignature, pinned by its vkey.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, parseCosignerKey, parseVerifierKey, verifierKeyOf, verifyCheckpoint } from '../../src/checkpoint/index.ts';
import { auditPeriod } from '../../src/index.ts';
import { parseWitnessArg } from '../../src/witness/submitter.ts';
import { event, tempDir, testServer, until, type TestServer } from '../helpers.ts';
import { keyFile, startWitness, type Witness } from '../witness/run.ts';

describe('auditPeriod with a real witness', () => {
  const dir = tempDir();
  const logKey = generateSigningKey('receipts.test/witnessed');
  let w: Witness;
  let s: TestServer;
  let url: string;
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;

  beforeAll(async () => {
    const k = keyFile(dir.dir, 'witness.test/audit');
    w = await startWitness(['--key', k.file, '--db', join(dir.dir, 'witness.db'), '--log', verifierKeyOf(logKey)]);
    // The service seals by itself (epochs of 2) and submits each new checkpoint to the witness.
    s = await testServer({ logKey, witnesses: [parseWitnessArg(`${w.url}=${w.vkey}`)], sealing: { epochMs: 20, maxEvents: 2 } });
    url = await s.app.listen({ port: 0, host: '127.0.0.1' });
    await s.post({ events: [1, 2, 3, 4].map((i) => event({ units: i, ts: t0 + i })) });
    const log = parseVerifierKey(verifierKeyOf(logKey));
    await until(async () => {
      const res = await fetch(`${url}/checkpoint`);
      if (res.status !== 200) return false;
      const v = verifyCheckpoint(await res.text(), log, { witnesses: [parseCosignerKey(w.vkey)] });
      return v.checkpoint.size === 2 && v.cosignatures.length === 1;
    }, 30_000).catch((err) => {
      throw new Error(`no cosignature: ${s.logs.join('')}\n${w.output()}`, { cause: err });
    });
  });
  afterAll(async () => {
    await s?.close();
    await w?.stop();
    dir.cleanup();
  });

  it('backs the period with the log key and the witness cosignature; a second witness required is missing', async () => {
    const base = { url, key: s.key, namespace: 'acme/prod', from: t0, to: t0 + 1000, logKeys: [verifierKeyOf(logKey)] };
    const report = await auditPeriod({ ...base, witnesses: [w.vkey], minWitnesses: 1 });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, events: 4, units: 10, billable_units: 10, epochs: 2, checkpoints: 1, witnesses: 1 });
    const other = verifierKeyOf(generateSigningKey('witness.test/absent'));
    const short = await auditPeriod({ ...base, witnesses: [w.vkey, other], minWitnesses: 2 });
    expect([...new Set(short.problems.map((p) => p.code))]).toEqual(['too_few_witnesses']);
    expect(short.witnesses).toBe(1);
  });
});
