// `receipts migrate` and the source file: nothing may change it while it is copied (keys, seal,
// any other writer), and a malformed row in it is refused in a sentence naming the row. All
// through the CLI as real processes, on a ledger large enough that the copy takes seconds.
import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { checkCopy } from '../../src/ledger/migrate.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { event, tempDir, until } from '../helpers.ts';
import { freshDatabase, startPostgres } from '../support/postgres.ts';
import { MAIN, receipts } from './run.ts';

const cluster = await startPostgres();
const tmp = tempDir('receipts-migrate-source-');
afterAll(async () => {
  await cluster?.stop();
  tmp.cleanup();
});

/** Events in the big ledger: enough for a copy and check of several seconds. */
const BIG = 100_000;

async function build(file: string, events: number, unsealed: number, perEpoch = 10_000): Promise<{ keyId: string; key: string }> {
  const ledger = new SqliteLedger(file, { synchronous: 'normal' });
  try {
    const { id: keyId, key } = await ledger.keys.create('acme-inc', ['acme/*']);
    const now = Date.now();
    const write = async (n: number) => {
      for (let done = 0; done < n; done += 2000) {
        const batch = Array.from({ length: Math.min(2000, n - done) }, () => {
          const v = validateEvent(event(), { now, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS });
          if (!v.ok) throw new Error(JSON.stringify(v.errors));
          return { event: v.event, owner: 'acme-inc', keyId };
        });
        await ledger.events.write(batch);
      }
    };
    await write(events - unsealed);
    await sealAll(ledger, { maxEvents: perEpoch });
    await write(unsealed);
    return { keyId, key };
  } finally {
    await ledger.close();
  }
}

/** The CLI as a child process, without blocking this one (migrate runs meanwhile). */
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

async function one<T extends pg.QueryResultRow>(url: string, text: string): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows[0]!;
  } finally {
    await c.end();
  }
}

describe.skipIf(!cluster)('receipts migrate: the source while it is copied', () => {
  const file = join(tmp.dir, 'big.db');
  let keyId = '';

  beforeAll(async () => {
    ({ keyId } = await build(file, BIG, 50));
  }, 120_000);

  it('keys revoke/create and seal on the source refuse while migrate copies it, naming it; any other writer is locked out; the copy equals the source', async () => {
    const url = await freshDatabase(cluster!.url);
    const proc = spawn(process.execPath, [MAIN, 'migrate', '--from', file, '--to', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      // Past the source check: migrate holds the file and is copying it.
      await until(() => /^checking source epochs: (\d+) \/ \1$/m.test(err) || proc.exitCode !== null, 60_000);
      expect(proc.exitCode, err).toBeNull();

      const busy =
        /^error: receipts migrate \(pid \d+, since [^)]+\) is copying the ledger .*big\.db to PostgreSQL, so (.*?): a change made to the file now would be missing from the copy\. Once the migrate is done, run this again with --db set to the PostgreSQL URL/m;
      // Together: each CLI process takes a second or two to start.
      const [revoke, create, seal] = await Promise.all([
        run(['keys', 'revoke', keyId, '--db', file]),
        run(['keys', 'create', '--owner', 'late-inc', '--namespace', 'late/*', '--db', file]),
        run(['seal', '--db', file]),
      ]);
      expect(revoke.code).toBe(1);
      expect(revoke.stderr).toMatch(busy);
      expect(create.code).toBe(1);
      expect(create.stderr).toMatch(busy);
      expect(create.stdout).not.toMatch(/key:/);
      expect(seal.code).toBe(1);
      expect(seal.stderr).toMatch(busy);
      expect(seal.stderr).toMatch(/so nothing is sealed:/);
      expect(`${revoke.stderr}${create.stderr}${seal.stderr}`.match(new RegExp(`pid ${proc.pid}\\b`, 'g'))).toHaveLength(3);

      // A writer that does not ask (another program, an old build): SQLite's write lock stops it.
      const raw = new Database(file, { timeout: 200 });
      try {
        expect(() => raw.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(Date.now(), keyId)).toThrow(
          expect.objectContaining({ code: 'SQLITE_BUSY' }),
        );
      } finally {
        raw.close();
      }
      // All of that happened during the copy, not after it.
      expect(proc.exitCode, err).toBeNull();
    } finally {
      if (proc.exitCode === null) await exited;
    }
    expect(await exited, err).toBe(0);
    expect(out).toMatch(new RegExp(`^copied 1 key, ${BIG.toLocaleString('en-US')} events \\(50 events after the last epoch`));

    // The target is the source: every row and every epoch root.
    await expect(checkCopy({ from: file, to: url })).resolves.toMatchObject({ epochs_checked: 10 });
    expect(await one<{ revoked_at: string | null }>(url, 'SELECT revoked_at FROM api_keys')).toEqual({ revoked_at: null });
    // The refusals were migrate's: with it gone, the same command works on the file.
    const after = join(tmp.dir, 'after.db');
    copyFileSync(file, after);
    expect(receipts(['keys', 'revoke', keyId, '--db', after])).toMatchObject({ code: 0, stdout: `revoked ${keyId}\n` });
  }, 180_000);
});

describe.skipIf(!cluster)('receipts migrate: a malformed row in the source', () => {
  const file = join(tmp.dir, 'small.db');
  beforeAll(async () => {
    await build(file, 305, 5, 100); // 3 epochs of 100; level 0 of each in 2 chunks (64 + 36)
  });

  const NEXT =
    /The file is damaged or was changed outside sui-receipts: restore it from a backup and migrate that \(`sqlite3 .*'PRAGMA integrity_check'` shows whether SQLite finds damage too\)$/m;
  it.each([
    [
      'a tree-node chunk one byte short',
      'UPDATE epoch_nodes SET hashes = substr(hashes, 1, 31) WHERE epoch = 1 AND level = 0 AND chunk = 1',
      /epoch_nodes row \(epoch 1, level 0, chunk 1\): hashes is a 31-byte blob, not a chunk of 1 … 64 tree-node hashes of 32 bytes each/,
    ],
    [
      'a tree-node chunk stored as text',
      "UPDATE epoch_nodes SET hashes = 'oops' WHERE epoch = 2 AND level = 3 AND chunk = 0",
      /epoch_nodes row \(epoch 2, level 3, chunk 0\): hashes is the text "oops", not a chunk of 1 … 64 tree-node hashes/,
    ],
    [
      'an empty tree-node chunk',
      "UPDATE epoch_nodes SET hashes = x'' WHERE epoch = 0 AND level = 6 AND chunk = 0",
      /epoch_nodes row \(epoch 0, level 6, chunk 0\): hashes is a 0-byte blob, not a chunk/,
    ],
    [
      'a sealed leaf hash of 33 bytes',
      "UPDATE events SET leaf_hash = CAST(leaf_hash || x'00' AS BLOB) WHERE seq = 150",
      /events row \(seq 150\): leaf_hash is a 33-byte blob, not a 32-byte hash/,
    ],
    [
      'an unsealed leaf hash of 31 bytes',
      'UPDATE events SET leaf_hash = substr(leaf_hash, 1, 31) WHERE seq = 303',
      /events row \(seq 303\): leaf_hash is a 31-byte blob, not a 32-byte hash/,
    ],
    [
      'an epoch root of 16 bytes',
      'UPDATE epochs SET root = substr(root, 1, 16) WHERE epoch = 2',
      /epochs row \(epoch 2\): root is a 16-byte blob, not a 32-byte hash/,
    ],
    [
      'a key hash stored as text',
      "UPDATE api_keys SET key_hash = 'abc'",
      /api_keys row \(id "[0-9a-f]+"\): key_hash is the text "abc", not a 32-byte hash/,
    ],
    [
      'units stored as text',
      "UPDATE events SET units = 'ten' WHERE seq = 7",
      /events row \(seq 7\): units is the text "ten", not an integer/,
    ],
    [
      'an artifact digest of 5 bytes',
      "UPDATE events SET artifact_digest = x'0102030405' WHERE seq = 304",
      /events row \(seq 304\): artifact_digest is a 5-byte blob, not a 32-byte hash/,
    ],
  ])(
    '%s: refused naming the table, row and column; nothing copied',
    async (_, sql, problem) => {
      const bad = join(tmp.dir, `bad-${Math.random().toString(36).slice(2)}.db`);
      copyFileSync(file, bad);
      const db = new Database(bad);
      db.pragma('ignore_check_constraints = ON'); // as a damaged file or a hand edit may have it
      expect(db.prepare(sql).run().changes).toBe(1);
      db.close();
      const url = await freshDatabase(cluster!.url);
      const r = await run(['migrate', '--from', bad, '--to', url]);
      expect(r.stderr).toMatch(/^error: the source ledger .*bad-\w+\.db has a malformed row, so nothing was copied: /m);
      expect(r.stderr).toMatch(problem);
      expect(r.stderr).toMatch(NEXT);
      expect(r.stderr).not.toMatch(/TypeError|RangeError|\n\s+at /);
      expect(r.code).toBe(1);
      const events = await one<{ n: string }>(url, 'SELECT count(*) AS n FROM events').then(
        (x) => Number(x.n),
        () => 0,
      );
      expect(events).toBe(0);
    },
    60_000,
  );
});
