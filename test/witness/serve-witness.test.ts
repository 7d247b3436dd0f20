// `receipts serve --witness URL=VKEY` and `receipts witness serve` as two real processes: a
// witness that is down does not stop sealing, is said in /healthz and counted in /metrics, and
// catches up when it is back (same port, same state file); a witness flag that is not URL=VKEY
// is refused with the usage.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCosignerKey, parseVerifierKey, verifyCheckpoint } from '../../src/checkpoint/index.ts';
import { tempDir } from '../helpers.ts';
import { receipts, serve } from '../cli/run.ts';
import { keyFile, startWitness } from './run.ts';

const t = tempDir('receipts-serve-witness-');
afterAll(() => t.cleanup());

async function poll<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('serve --witness with a witness process', () => {
  it('a down witness delays no seal, shows in /healthz and /metrics, and cosigns the latest checkpoint once it is back', async () => {
    const db = join(t.dir, 'ledger.db');
    const wdb = join(t.dir, 'witness.db');
    const { file: logKey, vkey: logVkey } = keyFile(t.dir, 'receipts.test/serve-witness');
    const { file: witnessKey, vkey: witnessVkey01 } = keyFile(t.dir, 'witness.test/serve');
    const apiKey = JSON.parse(receipts(['keys', 'create', '--db', db, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
    // Learn a free port from a first run of the witness, then stop it: the server starts with it down.
    const probe = await startWitness(['--key', witnessKey, '--db', wdb, '--log', logVkey]);
    const witnessUrl = probe.url;
    await probe.stop();

    const server = await serve(['--db', db, '--log-key', logKey, '--epoch-ms', '50', '--witness', `${witnessUrl}=${witnessVkey01}`]);
    const log = parseVerifierKey(logVkey);
    const witness = parseCosignerKey(witnessVkey01);
    let back: Awaited<ReturnType<typeof startWitness>> | undefined;
    try {
      const record = async () => {
        const res = await fetch(`${server.url}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ request_id: `r-${Math.random()}`, namespace: 'acme/prod', action: 'recall', caller: 'u', units: 1 }),
        });
        expect(res.status).toBe(200);
      };
      const size = async () => ((await (await fetch(`${server.url}/v1/log`)).json()) as { size: number }).size;
      // Sealing goes on while the witness is down.
      for (let i = 1; i <= 3; i++) {
        await record();
        await poll(`checkpoint ${i}`, async () => ((await size()) >= i ? true : undefined));
      }
      const health = await poll('the witness reported unreachable', async () => {
        const h = (await (await fetch(`${server.url}/healthz`)).json()) as {
          status: string;
          witnesses: Array<{ status: string; error: string }>;
        };
        return h.witnesses[0]!.status === 'unreachable' ? h : undefined;
      });
      expect(health.status).toBe('ok'); // down is retried, not an alarm; refused or conflict would be
      expect(health.witnesses[0]!.error).toMatch(/cannot reach|no answer/);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/receipts_witness_submissions_total\{witness="witness\.test\/serve",result="unreachable"\} [1-9]/);
      expect(metrics).toMatch(/receipts_witness_up\{witness="witness\.test\/serve"\} 0/);
      const unsigned = await (await fetch(`${server.url}/checkpoint`)).text();
      expect(verifyCheckpoint(unsigned, log, { witnesses: [witness] }).cosignatures).toHaveLength(0);

      // The witness comes back on its port with its state; the next seal catches it up.
      back = await startWitness(['--key', witnessKey, '--db', wdb, '--log', logVkey], Number(new URL(witnessUrl).port));
      await record();
      const cosigned = await poll('a cosigned checkpoint', async () => {
        const text = await (await fetch(`${server.url}/checkpoint`)).text();
        const v = verifyCheckpoint(text, log, { witnesses: [witness] });
        return v.cosignatures.length === 1 && v.checkpoint.size >= 4 ? v : undefined;
      });
      expect(cosigned.cosignatures[0]).toMatchObject({ name: 'witness.test/serve', type: 0x04 });
      const after = (await (await fetch(`${server.url}/healthz`)).json()) as {
        witnesses: Array<{ status: string; cosigned_size: number }>;
      };
      expect(after.witnesses[0]).toMatchObject({ status: 'ok', cosigned_size: cosigned.checkpoint.size });
      // The witness now holds this log's size: a first submission from elsewhere (old 0) is told it.
      const latest = await (await fetch(`${server.url}/checkpoint`)).text();
      const res = await fetch(`${back.url}/add-checkpoint`, { method: 'POST', body: `old 0\n\n${latest}` });
      expect(res.status).toBe(409);
      expect(Number((await res.text()).trim())).toBeGreaterThanOrEqual(cosigned.checkpoint.size);
    } finally {
      server.proc.kill('SIGTERM');
      await server.exited;
      await back?.stop();
    }
  }, 180_000); // five processes start one after another: minutes on a loaded machine

  it('refuses a --witness that is not URL=VKEY, with the usage (exit 2)', () => {
    const db = join(t.dir, 'flags.db');
    for (const [value, message] of [
      ['http://127.0.0.1:1', /must be URL=VKEY/],
      ['ftp://x=a+01020304+AAAA', /http:\/\/ or https:\/\//],
      ['http://127.0.0.1:1/?q=1=x', /no query/],
      ['http://127.0.0.1:1=not-a-key', /verifier key/],
    ] as const) {
      const r = receipts(['serve', '--db', db, '--witness', value]);
      expect(r.code, value).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  }, 120_000);
});
