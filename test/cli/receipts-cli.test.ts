// The receipt path through the real executable: serve seals on its own, `receipts verify` checks.
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { tempDir } from '../helpers.ts';
import { MAIN, receipts, serve } from './run.ts';

const t = tempDir('receipts-cli3-');
afterAll(() => t.cleanup());

it('serve seals within --epoch-ms; verify says valid (exit 0), invalid (exit 1) or unreadable (exit 2)', async () => {
  const file = join(t.dir, 'r.db');
  const s = await serve(['--db', file, '--epoch-ms', '200']);
  const key = JSON.parse(receipts(['keys', 'create', '--db', file, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const events = Array.from({ length: 5 }, (_, i) => ({
    request_id: `v${i}`,
    namespace: 'acme/p',
    action: 'recall',
    caller: 'c',
    units: i + 1,
  }));
  const created = (await (await fetch(`${s.url}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) })).json()) as {
    results: Array<{ id: number }>;
  };
  const id = created.results[3]!.id;

  let receipt: Record<string, unknown> = {};
  for (let i = 0; i < 100 && receipt.status !== 'sealed'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    receipt = (await (await fetch(`${s.url}/v1/events/${id}/receipt`, { headers })).json()) as Record<string, unknown>;
  }
  expect(receipt.status).toBe('sealed');
  s.proc.kill('SIGTERM');
  await s.exited;
  expect(s.output()).toMatch(/"msg":"sealed epoch"/);

  const good = join(t.dir, 'good.json');
  writeFileSync(good, JSON.stringify(receipt));
  const ok = receipts(['verify', good]);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toBe(`valid: epoch 0, leaf 3 of 5, root ${receipt.root} (the receipt's own root)\n`);
  expect(receipts(['verify', good, '--root', receipt.root as string, '--size', '5']).stdout).toMatch(/^valid: .*\(trusted root\)/);

  // Standard input.
  const stdin = spawnSync(process.execPath, [MAIN, 'verify', '-'], { input: JSON.stringify(receipt), encoding: 'utf8' });
  expect(stdin.status).toBe(0);

  const bad = join(t.dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ ...receipt, event: { ...(receipt.event as object), units: 400 } }));
  const no = receipts(['verify', bad]);
  expect(no.code).toBe(1);
  expect(no.stdout).toMatch(/^invalid: the leaf hash does not match the event fields/);
  const wrongRoot = receipts(['verify', good, '--root', 'ab'.repeat(32), '--size', '5']);
  expect(wrongRoot.code).toBe(1);

  const junk = join(t.dir, 'junk.json');
  writeFileSync(junk, '{ not json');
  expect(receipts(['verify', junk])).toMatchObject({ code: 2, stderr: expect.stringMatching(/is not JSON/) });
  expect(receipts(['verify', join(t.dir, 'missing.json')])).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot read/) });
  expect(receipts(['verify', good, '--root', 'ab'.repeat(32)]).code).toBe(2);
}, 180_000); // a dozen child processes: slow on a loaded 2-core machine

it('receipts seal seals what is waiting and says so', async () => {
  const file = join(t.dir, 's.db');
  const s = await serve(['--db', file, '--epoch-ms', '3600000']);
  const key = JSON.parse(receipts(['keys', 'create', '--db', file, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
  const posted = await fetch(`${s.url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      events: Array.from({ length: 7 }, (_, i) => ({ request_id: `s${i}`, namespace: 'acme/p', action: 'recall', caller: 'c' })),
    }),
  });
  const id = ((await posted.json()) as { results: Array<{ id: number }> }).results[0]!.id;
  // The README walkthrough: a receipt saved before sealing is pending (exit 3, not "invalid"); fetched again after, valid.
  const saved = join(t.dir, 'receipt.json');
  const fetchReceipt = async () =>
    writeFileSync(saved, await (await fetch(`${s.url}/v1/events/${id}/receipt`, { headers: { authorization: `Bearer ${key}` } })).text());
  await fetchReceipt();
  expect(receipts(['verify', saved])).toMatchObject({
    code: 3,
    stdout: expect.stringMatching(/^not verifiable yet: the receipt is pending/),
  });
  // While the server runs on the same file.
  const sealed = receipts(['seal', '--db', file, '--max-events', '5']);
  expect(sealed.code).toBe(0);
  expect(sealed.stdout).toMatch(/^sealed epoch 0: 5 events, root [0-9a-f]{64} \(\d+ ms\)\nsealed epoch 1: 2 events/);
  expect(receipts(['seal', '--db', file]).stdout).toMatch(/nothing to seal/);
  expect(receipts(['verify', saved]).code).toBe(3); // the saved copy stays pending
  await fetchReceipt();
  expect(receipts(['verify', saved])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^valid: epoch 0, leaf 0 of 5/) });
  s.proc.kill('SIGTERM');
  await s.exited;
}, 180_000); // a dozen child processes: slow on a loaded 2-core machine
