// `receipts webhooks create|list|delete|deliveries` as a real process: the secret printed once
// (never by list), the URL rules of the API (a loopback receiver only with --allow-private, no
// credentials), --json everywhere, a missing webhook exiting 1 with the command to look.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { receipts } from '../cli/run.ts';
import { tempDir } from '../helpers.ts';

const t = tempDir();
afterAll(() => t.cleanup());
const db = join(t.dir, 'receipts.db');

// Each receipts process takes seconds on a loaded machine: a generous deadline per test.
const SLOW = { timeout: 180_000 };

beforeAll(() => {
  expect(receipts(['keys', 'create', '--db', db, '--owner', 'acme-inc', '--namespace', 'acme/*']).code).toBe(0); // makes the ledger
}, 60_000);

it('refuses a private or credentialed URL, storing nothing', SLOW, () => {
  const refused = receipts([
    'webhooks',
    'create',
    '--db',
    db,
    '--owner',
    'acme-inc',
    '--url',
    'http://127.0.0.1:9/hook',
    '--namespace',
    'acme/prod',
  ]);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/--url: url points at 127\.0\.0\.1, a loopback address: webhooks go to public addresses only/);
  const creds = receipts([
    'webhooks',
    'create',
    '--db',
    db,
    '--owner',
    'acme-inc',
    '--url',
    'http://u:p@127.0.0.1:9/',
    '--namespace',
    'acme/prod',
    '--allow-private',
  ]);
  expect(creds.code).toBe(2);
  expect(creds.stderr).toMatch(/must not carry credentials/);
  expect(JSON.parse(receipts(['webhooks', 'list', '--db', db, '--json']).stdout)).toEqual([]);
});

it('creates, lists, shows and deletes webhooks; the secret printed once', SLOW, () => {
  const made = receipts([
    'webhooks',
    'create',
    '--db',
    db,
    '--owner',
    'acme-inc',
    '--url',
    'http://127.0.0.1:9/hook',
    '--namespace',
    'acme/prod',
    '--namespace',
    'acme/eu-*',
    '--allow-private',
    '--json',
  ]); // prettier-ignore
  expect(made.code, made.stderr).toBe(0);
  const w = JSON.parse(made.stdout);
  expect(w).toEqual({
    id: expect.stringMatching(/^wh_[0-9a-f]{16}$/),
    owner: 'acme-inc',
    url: 'http://127.0.0.1:9/hook',
    namespaces: ['acme/prod', 'acme/eu-*'],
    created_at: expect.any(String),
    secret: expect.stringMatching(/^whsec_/),
  });

  const listed = receipts(['webhooks', 'list', '--db', db, '--json']);
  expect(JSON.parse(listed.stdout)).toEqual([
    { id: w.id, owner: 'acme-inc', url: w.url, namespaces: w.namespaces, created_at: w.created_at },
  ]);
  const text = receipts(['webhooks', 'list', '--db', db, '--owner', 'acme-inc']);
  expect(text.stdout).toContain(`${w.id}  acme-inc  http://127.0.0.1:9/hook  acme/prod,acme/eu-*`);
  for (const out of [listed.stdout, text.stdout]) expect(out).not.toContain(w.secret.slice(6));
  expect(JSON.parse(receipts(['webhooks', 'list', '--db', db, '--owner', 'globex', '--json']).stdout)).toEqual([]);

  expect(JSON.parse(receipts(['webhooks', 'deliveries', w.id, '--db', db, '--json']).stdout)).toEqual({
    webhook_id: w.id,
    messages: [],
    attempts: [],
  });
  expect(JSON.parse(receipts(['webhooks', 'delete', w.id, '--db', db, '--json']).stdout)).toEqual({
    id: w.id,
    deleted: true,
    discarded: 0,
  });
  const again = receipts(['webhooks', 'delete', w.id, '--db', db]);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/no webhook with id wh_[0-9a-f]{16}; see `receipts webhooks list`/);
});
