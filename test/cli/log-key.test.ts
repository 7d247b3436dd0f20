// `receipts serve` and the log key: a SQLite ledger gets `<db>.log-key` (0600) on first start and
// keeps it; --log-key signs with a given file; PostgreSQL refuses to start without the flag. The
// private key never reaches the database file or a log line.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatSignerKey, parseSignerKey, parseVerifierKey, verifierKeyOf, verifyCheckpoint } from '../../src/checkpoint/index.ts';
import { tempDir } from '../helpers.ts';
import { logKeyFile, receipts, serve } from './run.ts';

const t = tempDir('receipts-logkey-');
afterAll(() => t.cleanup());

async function sealOne(url: string, key: string): Promise<void> {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ request_id: `r-${Math.random()}`, namespace: 'acme/prod', action: 'recall', caller: 'u', units: 1 }),
  });
  expect(res.ok).toBe(true);
}

async function untilCheckpoint(url: string, size: number): Promise<string> {
  const end = Date.now() + 10_000;
  for (;;) {
    const log = (await (await fetch(`${url}/v1/log`)).json()) as { size: number };
    if (log.size >= size) return (await fetch(`${url}/checkpoint`)).text();
    if (Date.now() > end) throw new Error('no checkpoint');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('serve --log-key', () => {
  it('SQLite without the flag: creates <db>.log-key (0600) on first start, logs its vkey only, and keeps it', async () => {
    const db = join(t.dir, 'auto.db');
    const first = await serve(['--db', db, '--epoch-ms', '50']);
    let vkey: string;
    try {
      const file = `${db}.log-key`;
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const secret = readFileSync(file, 'utf8').trim();
      const key = parseSignerKey(secret);
      vkey = verifierKeyOf(key);
      expect(first.output()).toContain(vkey);
      const log = (await (await fetch(`${first.url}/v1/log`)).json()) as { origin: string; vkey: string };
      expect(log).toMatchObject({ origin: key.name, vkey });
      const apiKey = JSON.parse(receipts(['keys', 'create', '--db', db, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
      await sealOne(first.url, apiKey);
      verifyCheckpoint(await untilCheckpoint(first.url, 1), parseVerifierKey(vkey));
      first.proc.kill('SIGTERM');
      await first.exited;
      expect(first.output()).not.toContain(secret);
      // the base64 material follows PRIVATE+KEY+name+hash+ and may itself hold '+'
      const material = secret.split('+').slice(4).join('+');
      expect(material.length).toBe(44);
      expect(first.output()).not.toContain(material);
      for (const f of [db, `${db}-wal`]) {
        let bytes: Buffer;
        try {
          bytes = readFileSync(f);
        } catch {
          continue;
        }
        expect(bytes.includes(secret)).toBe(false);
        expect(bytes.includes(material)).toBe(false);
        expect(bytes.includes(Buffer.from(key.seed))).toBe(false);
      }
    } finally {
      first.proc.kill('SIGKILL');
    }
    const again = await serve(['--db', db]);
    try {
      expect(((await (await fetch(`${again.url}/v1/log`)).json()) as { vkey: string }).vkey).toBe(vkey);
    } finally {
      again.proc.kill('SIGTERM');
      await again.exited;
    }
  });

  it('signs with the key file given', async () => {
    const file = logKeyFile(t.dir, 'receipts.example.com/given');
    const key = parseSignerKey(readFileSync(file, 'utf8').trim());
    const s = await serve(['--db', join(t.dir, 'given.db'), '--log-key', file]);
    try {
      expect(await (await fetch(`${s.url}/v1/log`)).json()).toEqual({
        origin: 'receipts.example.com/given',
        vkey: verifierKeyOf(key),
        size: 0,
      });
    } finally {
      s.proc.kill('SIGTERM');
      await s.exited;
    }
    expect(s.output()).not.toContain(formatSignerKey(key));
  });

  it('PostgreSQL without the flag: exit 2 with the usage, saying how to make one key for every instance', () => {
    const r = receipts(['serve', '--db', 'postgres://nobody@127.0.0.1:1/none', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--log-key FILE is required on PostgreSQL/);
    expect(r.stderr).toMatch(/signing-key create/);
    expect(r.stderr).toMatch(/every instance/);
    expect(r.stderr).toMatch(/Usage: receipts serve/);
  });
});
