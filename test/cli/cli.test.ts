import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.ts';
import { receipts, serve } from './run.ts';

const t = tempDir('receipts-cli-');
afterAll(() => t.cleanup());
const db = join(t.dir, 'cli.db');

describe('receipts keys', () => {
  it('creates a key, prints it once as JSON, and stores only its hash', () => {
    const r = receipts(['keys', 'create', '--db', db, '--owner', 'acme', '--namespace', 'acme/*', '--namespace', 'shared/x', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({
      key: expect.stringMatching(/^sr_[a-z0-9]{12}_/),
      id: expect.any(String),
      owner: 'acme',
      namespaces: ['acme/*', 'shared/x'],
      rights: ['record', 'read'], // without --rights
    });
    expect(out.key).toContain(out.id);
    expect(readFileSync(db).toString('latin1')).not.toContain(out.key.slice('sr_'.length + 13)); // the 43-char secret
  });

  it('lists keys without the keys themselves, and revokes', () => {
    const created = JSON.parse(receipts(['keys', 'create', '--db', db, '--owner', 'globex', '--namespace', 'globex/*', '--json']).stdout);
    const list = receipts(['keys', 'list', '--db', db, '--json']);
    expect(list.code).toBe(0);
    const entry = JSON.parse(list.stdout).find((k: { id: string }) => k.id === created.id);
    expect(entry).toMatchObject({ owner: 'globex', namespaces: ['globex/*'], rights: ['record', 'read'], revoked_at: null });
    expect(list.stdout).not.toContain(created.key);
    expect(receipts(['keys', 'revoke', created.id, '--db', db]).code).toBe(0);
    expect(receipts(['keys', 'list', '--db', db]).stdout).toMatch(new RegExp(`${created.id}.*revoked`));
    const again = receipts(['keys', 'revoke', created.id, '--db', db]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no active key with id/);
  });

  it('rejects a bad namespace pattern with the rule', () => {
    const r = receipts(['keys', 'create', '--db', db, '--owner', 'x', '--namespace', 'Bad Pattern']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/namespace pattern "Bad Pattern" must be/);
  });
});

describe('usage errors exit 2 with what is wrong and the usage', () => {
  it.each([
    [['keys', 'create', '--db', db, '--namespace', 'a'], /required option '--owner <name>' not specified/],
    [['keys', 'create', '--db', db, '--owner', 'a'], /required option '--namespace <pattern>' not specified/],
    [['serve', '--port', 'abc'], /option '--port <n>' argument 'abc' is invalid. must be an integer from 0 to 65535/],
    [['serve', '--bogus'], /unknown option '--bogus'/],
    [['serve', '--synchronous', 'sometimes'], /Allowed choices are full, normal/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['keys', 'create', '--db'], /option '--db <file\|url>' argument missing/],
  ])('receipts %j', (args, message) => {
    const r = receipts(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: receipts/);
  });
});

describe('receipts serve', () => {
  it('serves, accepts a key created while it runs, logs without secrets, and drains in-flight requests on SIGTERM', async () => {
    const file = join(t.dir, 'serve.db');
    // Environment provides the defaults; flags win (RECEIPTS_HOST points nowhere useful).
    const s = await serve(['--db', file, '--host', '127.0.0.1'], { RECEIPTS_HOST: '192.0.2.1', RECEIPTS_ACTIONS: 'recall,extract' });
    const key = JSON.parse(receipts(['keys', 'create', '--db', file, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    const ok = await fetch(`${s.url}/v1/events`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ request_id: 'a', namespace: 'acme/p', action: 'recall', caller: 'c' }),
    });
    expect((await ok.json()).results[0].status).toBe('created');
    const notAllowed = await fetch(`${s.url}/v1/events`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ request_id: 'b', namespace: 'acme/p', action: 'chat', caller: 'c' }),
    });
    expect((await notAllowed.json()).results[0].errors[0].rule).toBe('allowed_actions');

    // An in-flight request: half the body sent, then SIGTERM, then the rest.
    const body = JSON.stringify({ request_id: 'in-flight', namespace: 'acme/p', action: 'recall', caller: 'c' });
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        `${s.url}/v1/events`,
        { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 20));
      setTimeout(() => {
        s.proc.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(20)), 200);
      }, 100);
    });
    const drained = await answer;
    expect(drained.status).toBe(200);
    expect(JSON.parse(drained.text).results[0].status).toBe('created');
    expect(await s.exited).toEqual({ code: 0, signal: null });

    const log = s.output();
    expect(log).toMatch(/"msg":"stopped cleanly"/);
    expect(log.match(/"msg":"request"/g)).toHaveLength(3); // one line per request
    expect(log).not.toContain(key);

    // The drained event was committed before the process exited.
    const list = receipts(['keys', 'list', '--db', file, '--json']);
    expect(list.code).toBe(0);
    const { default: Database } = await import('better-sqlite3');
    const check = new Database(file, { readonly: true });
    expect((check.prepare("SELECT count(*) AS n FROM events WHERE request_id = 'in-flight'").get() as { n: number }).n).toBe(1);
    check.close();
  });

  it('fails to start with a clear message when the port is taken', async () => {
    const first = await serve(['--db', join(t.dir, 'port.db')]);
    const port = new URL(first.url).port;
    const r = receipts(['serve', '--db', join(t.dir, 'port2.db'), '--port', port]); // another ledger: only the port is shared
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`cannot listen on 127.0.0.1:${port}: the port is in use by another process; choose another --port`),
    );
    first.proc.kill('SIGTERM');
    await first.exited;
  });
});
