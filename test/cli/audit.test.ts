// `receipts audit` and `receipts verify` on a proof bundle or a usage page, as real processes,
// against a real service behind a proxy that lies when told to (test/verify/audit-lies.ts).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey, verifierKeyOf } from '../../src/checkpoint/index.ts';
import { tempDir } from '../helpers.ts';
import { isUsage, lyingSetup, onJson, type LyingSetup } from '../verify/audit-lies.ts';
import { MAIN } from './run.ts';

/** The CLI in a child process, without blocking this process (which serves the service). */
function run(args: string[], env: Record<string, string> = {}) {
  return runIn(process.execPath, [MAIN, ...args], env);
}

function runIn(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let t: LyingSetup;
const dir = tempDir();
beforeAll(async () => {
  t = await lyingSetup();
});
afterAll(async () => {
  await t.close();
  dir.cleanup();
});
beforeEach(() => {
  t.lie.fn = (_p, b) => b;
});

const audit = (...extra: string[]) => [
  'audit',
  '--url',
  t.url,
  '--namespace',
  'acme/prod',
  '--from',
  String(t.period.from),
  '--to',
  new Date(t.period.to).toISOString(),
  ...extra,
];
const env = () => ({ RECEIPTS_API_KEY: t.s.key });

describe('receipts audit', () => {
  it('exits 0 with the summary when every number is backed by the signed, cosigned log', async () => {
    const r = await run(audit('--log-key', t.vkey, '--witness', t.witnessVkey), env());
    expect(r.stderr).toBe(''); // no progress when stderr is not a terminal
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^backed: acme\/prod over \[/);
    for (const line of [
      /events {10}7\n/,
      /units {11}46\n/,
      /billable units {2}36 \(5 billable events\)\n/,
      /epochs {10}3\n/,
      new RegExp(`checkpoints {5}1 signed by ${t.vkey.replace(/[+/]/g, '\\$&')}\n`),
      /witnesses {7}1 cosigned each checkpoint\n/,
      /embed: 2 events, 30 units, 30 billable\n/,
      /ping: 2 events, 10 units, 0 billable\n/,
    ])
      expect(r.stdout).toMatch(line);
    expect(r.stdout).not.toContain(t.s.key);
  });

  it('shows progress on standard error when it is a terminal', async () => {
    // script(1) runs the command on a pseudo-terminal; its output is the terminal's.
    const quoted = [process.execPath, MAIN, ...audit('--log-key', t.vkey)].map((a) => `'${a}'`).join(' ');
    const r = await runIn('script', ['-qec', quoted, '/dev/null'], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\rauditing: 1 page, 7 receipts\r?\n/);
    expect(r.stdout).toMatch(/backed: acme\/prod/);
  });

  it('--json prints the report for programs', async () => {
    const r = await run(audit('--log-key', t.vkey, '--json', '--key', t.s.key));
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, events: 7, units: 46, billable_units: 36, epochs: 3, checkpoints: 1, witnesses: 0 });
  });

  it('exits 1 and names each problem when the server lies', async () => {
    t.lie.fn = onJson(isUsage, (page) => {
      for (const r of page.events) if (r.event.units === 20) r.event.caller = 'someone-else';
    });
    const r = await run(audit('--log-key', t.vkey), env());
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^NOT BACKED: /);
    expect(r.stdout).toMatch(/problem \[tampered_event\]: event .*: the leaf hash does not match the event fields/);
  });

  it('exits 1 when a checkpoint is signed by another log key than the one pinned', async () => {
    const r = await run(audit('--log-key', verifierKeyOf(generateSigningKey('receipts.test/audit'))), env());
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/problem \[wrong_log_key\]/);
  });

  it("--trust-server passes on the server's own roots and says loudly that nothing outside it was checked", async () => {
    const r = await run(audit('--trust-server'), env());
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^WARNING: TRUSTING THE SERVER: .*nothing outside the server was checked/);
    expect(r.stdout).toMatch(/checkpoints {5}none checked: roots taken from the server \(--trust-server\)/);
  });

  it('--rpc with nothing anchored (no Sui here) checks nothing on chain and says so', async () => {
    const r = await run(audit('--log-key', t.vkey, '--rpc', 'http://127.0.0.1:9'), env());
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/WARNING: no epoch of the period is anchored on chain: nothing was checked on chain/);
    expect(r.stdout).toMatch(/on chain {8}0 epochs checked, 3 not anchored/);
  });

  it('exits 2 for bad usage, naming the flag and the rule', async () => {
    const cases: Array<[string[], RegExp]> = [
      [audit(), /--log-key VKEY is required/],
      [
        audit('--log-key', t.vkey, '--witness', t.witnessVkey, '--min-witnesses', '2'),
        /--min-witnesses 2 needs at least as many --witness keys \(1 given\)/,
      ],
      [audit('--log-key', 'not-a-key'), /logKeys\[0\] is not a verifier key/],
      [audit('--log-key', t.vkey, '--from', 'last week'), /from must be epoch milliseconds .* or an RFC 3339 date-time/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args, env());
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const noKey = await run(audit('--log-key', t.vkey), { RECEIPTS_API_KEY: '' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/--key \(or RECEIPTS_API_KEY\) is required/);
  });
});

describe('receipts verify: a proof bundle and a usage page', () => {
  const fetchJson = async (path: string) => (await fetch(t.upstream + path, { headers: t.s.auth })).json();
  const file = (name: string, json: unknown) => {
    const f = join(dir.dir, name);
    writeFileSync(f, JSON.stringify(json));
    return f;
  };

  it('a bundle: signed by the pinned log key with --log-key; only consistent with itself without', async () => {
    const bundle = await fetchJson('/v1/events/4/proof');
    const f = file('bundle.json', bundle);
    const signed = await run(['verify', f, '--log-key', t.vkey]);
    expect(signed.code).toBe(0);
    expect(signed.stdout).toMatch(
      /^valid: leaf 0 of 3 in epoch 1 is under root [0-9a-f]{64}, which is in the epoch log of size 3 signed by the log key /,
    );
    const alone = await run(['verify', f]);
    expect(alone.code).toBe(0);
    expect(alone.stdout).toMatch(/^consistent with the bundle only: .*its signature was NOT checked \(no log key given\)/);
    const json = JSON.parse((await run(['verify', f, '--json'])).stdout);
    expect(json).toMatchObject({ ok: true, checked: 'bundle_only', signed_by: null, epoch: 1 });
  });

  it('a bundle signed by another key, or with an altered event, or a header not in the log, is invalid (exit 1)', async () => {
    const bundle = await fetchJson('/v1/events/4/proof');
    const other = await run(['verify', file('b1.json', bundle), '--log-key', verifierKeyOf(generateSigningKey('receipts.test/audit'))]);
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(/\[wrong_log_key\]/);
    const altered = structuredClone(bundle);
    altered.receipt.event.units += 1;
    const a = await run(['verify', file('b2.json', altered), '--log-key', t.vkey]);
    expect(a.code).toBe(1);
    expect(a.stdout).toMatch(/\[tampered_event\]/);
    const moved = structuredClone(bundle);
    moved.epoch_header.last_ts_ms += 1;
    const m = await run(['verify', file('b3.json', moved), '--log-key', t.vkey]);
    expect(m.code).toBe(1);
    expect(m.stdout).toMatch(/is not in the epoch log of the checkpoint of size 3 \[unsigned_root\]/);
  });

  it('a usage page: every receipt in it (exit 0); one altered receipt makes it invalid (exit 1)', async () => {
    const q = new URLSearchParams({ namespace: 'acme/prod', from: String(t.period.from), to: String(t.period.to), receipts: 'true' });
    const page = await fetchJson(`/v1/usage?${q}`);
    const ok = await run(['verify', file('page.json', page)]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^valid: 7 receipts in the page: 7 valid \(46 units\), 0 invalid, 0 pending/);
    page.events[2].event.action = 'free';
    const bad = await run(['verify', file('page2.json', page)]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^invalid: receipt 2 \(event 3 req-.*\): the leaf hash does not match the event fields.*\[leaf_mismatch\]/);
    const flags = await run(['verify', file('page3.json', page), '--log-key', t.vkey]);
    expect(flags.code).toBe(2);
    expect(flags.stderr).toMatch(/--log-key, --witness and --min-witnesses check a proof bundle's checkpoint/);
  });
});
