// `receipts backup` as a real process, while `receipts serve` writes and seals the same SQLite
// ledger: the copy passes fsck on its own and holds a consistent prefix of the ledger (every event
// and epoch up to some point, identical to the source's). PostgreSQL and an existing --to refused.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { event, tempDir } from '../helpers.ts';
import { receipts, serve } from './run.ts';
import { spawn } from 'node:child_process';
import { MAIN } from './run.ts';

const tmp = tempDir('receipts-backup-');
afterAll(() => tmp.cleanup());

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const count = (file: string, sql: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).pluck().get();
  } finally {
    db.close();
  }
};

describe('receipts backup', () => {
  const file = join(tmp.dir, 'receipts.db');
  let key = '';
  beforeAll(async () => {
    const ledger = new SqliteLedger(file, { synchronous: 'normal' });
    try {
      const created = await ledger.keys.create('acme-inc', ['acme/*']);
      key = created.key;
      const now = Date.now();
      for (let i = 0; i < 20; i++) {
        await ledger.events.write(
          Array.from({ length: 1000 }, () => {
            const v = validateEvent(event(), { now, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS });
            if (!v.ok) throw new Error(JSON.stringify(v.errors));
            return { event: v.event, owner: 'acme-inc', keyId: created.id };
          }),
        );
      }
      await sealAll(ledger, { maxEvents: 2000 });
    } finally {
      await ledger.close();
    }
  }, 120_000);

  it('copies the ledger while a server writes and seals it: the copy passes fsck and is a prefix of the source', async () => {
    const server = await serve(['--db', file, '--epoch-ms', '100']);
    let writing = true;
    let acknowledged = 20_000;
    const writer = (async () => {
      while (writing) {
        const res = await fetch(`${server.url}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ events: Array.from({ length: 20 }, () => event()) }),
        });
        expect(res.status).toBe(200);
        acknowledged += 20;
      }
    })();
    const copy = join(tmp.dir, 'copy.db');
    let before = 0;
    let after = 0;
    try {
      while (acknowledged < 20_200) await new Promise((r) => setTimeout(r, 20)); // the server is busy writing
      before = acknowledged;
      const r = await run(['backup', '--db', file, '--to', copy]);
      after = acknowledged;
      expect(r.stderr).toMatch(/^copying pages: ([\d,]+) \/ \1$/m);
      expect(r.stderr).toMatch(/^checking the copy: epochs: (\d+) \/ \1$/m);
      expect(r.stdout).toMatch(/^backed up .*receipts\.db to .*copy\.db: [\d.]+ MiB in [\d.]+ s\n.*copy\.db checks out: \d+ epochs/);
      expect(r.code).toBe(0);
    } finally {
      writing = false;
      await writer;
      server.proc.kill('SIGTERM');
      await server.exited;
    }
    // The server went on after the snapshot: the source has more than the copy.
    const copied = Number(count(copy, 'SELECT count(*) FROM events'));
    expect(copied).toBeGreaterThanOrEqual(before);
    expect(copied).toBeLessThanOrEqual(after + 20);
    expect(Number(count(file, 'SELECT count(*) FROM events'))).toBeGreaterThan(copied);
    // A prefix: events 1 … copied and every epoch of the copy are the source's, byte for byte.
    const digest = (f: string, sql: string) => count(f, sql) as string;
    const events = `SELECT hex(group_concat(hex(leaf_hash) || namespace || request_id || ts, '|')) FROM (SELECT * FROM events WHERE seq <= ${copied} ORDER BY seq)`;
    expect(Number(count(copy, 'SELECT max(seq) FROM events'))).toBe(copied);
    expect(digest(copy, events)).toBe(digest(file, events));
    const lastEpoch = Number(count(copy, 'SELECT max(epoch) FROM epochs'));
    const epochs = `SELECT group_concat(epoch || ':' || first_seq || ':' || last_seq || ':' || hex(root), ',') FROM (SELECT * FROM epochs WHERE epoch <= ${lastEpoch} ORDER BY epoch)`;
    expect(digest(copy, epochs)).toBe(digest(file, epochs));
    expect(lastEpoch).toBeGreaterThanOrEqual(9);
    // The copy stands alone: fsck on it, and nothing left beside it.
    expect(receipts(['fsck', '--db', copy])).toMatchObject({ code: 0 });
    expect(readdirSync(tmp.dir).filter((f) => f.includes('partial'))).toEqual([]);
  }, 180_000);

  it('never overwrites --to, refuses a PostgreSQL URL pointing to pg_dump, and needs --to', async () => {
    const existing = join(tmp.dir, 'existing.db');
    writeFileSync(existing, 'keep me');
    const r = await run(['backup', '--db', file, '--to', existing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: .*existing\.db .* already exists: receipts backup never overwrites a file/m);
    expect(readFileSync(existing, 'utf8')).toBe('keep me');

    const pgUrl = 'postgres://app:pw-not-to-show-8812@127.0.0.1:1/receipts';
    const p = await run(['backup', '--db', pgUrl, '--to', join(tmp.dir, 'pg.db')]);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/is PostgreSQL: back it up with pg_dump \(docs\/operations\.md/);
    expect(p.stdout + p.stderr).not.toContain('pw-not-to-show-8812');
    expect(existsSync(join(tmp.dir, 'pg.db'))).toBe(false);

    expect((await run(['backup', '--db', file])).code).toBe(2);
    const missing = await run(['backup', '--db', join(tmp.dir, 'nope.db'), '--to', join(tmp.dir, 'x.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no SQLite ledger at .*nope\.db/);
    expect(existsSync(join(tmp.dir, 'x.db'))).toBe(false);
  }, 60_000);
});
