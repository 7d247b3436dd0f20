// `receipts fsck` as a real process on both engines: a ledger sealed through the ledger API
// (3 epochs of 100 events, level 0 of each in two chunks, 5 events after the last epoch), then
// one stored value at a time changed in the database and put back: a tree-node chunk, a leaf
// hash, an epoch boundary, an unsealed event's leaf hash. Each is named; the clean ledger passes.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { SqliteLedger, type Ledger } from '../../src/ledger/index.ts';
import { openPostgresLedger } from '../../src/ledger/postgres/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { event, tempDir, until } from '../helpers.ts';
import { freshDatabase, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { MAIN } from './run.ts';
import { spawn } from 'node:child_process';

const tmp = tempDir('receipts-fsck-');
const cluster: PostgresCluster | null = await startPostgres();
afterAll(async () => {
  await cluster?.stop();
  tmp.cleanup();
});

/** The CLI as a child process, without blocking this one. */
export function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Events written and sealed in epochs of 100, then `unsealed` more left after the last epoch. */
export async function fill(ledger: Ledger, events: number, unsealed: number, perEpoch = 100): Promise<void> {
  const { id: keyId } = await ledger.keys.create('acme-inc', ['acme/*']);
  const now = Date.now();
  const write = async (n: number) => {
    for (let done = 0; done < n; done += 1000) {
      const batch = Array.from({ length: Math.min(1000, n - done) }, (_, i) => {
        const v = validateEvent(event({ units: i, ts: now - 1000 + (i % 500), ...(i % 7 === 0 && { artifact_digest: 'cd'.repeat(32) }) }), {
          now,
          maxAgeMs: DEFAULT_MAX_AGE_MS,
          maxFutureMs: DEFAULT_MAX_FUTURE_MS,
        });
        if (!v.ok) throw new Error(JSON.stringify(v.errors));
        return { event: v.event, owner: 'acme-inc', keyId };
      });
      await ledger.events.write(batch);
    }
  };
  await write(events - unsealed);
  await ledger.leadership.start(() => {});
  await until(() => ledger.leadership.role() === 'leader');
  await sealAll(ledger, { maxEvents: perEpoch });
  await write(unsealed);
}

/** One SQL statement on either engine, `?` placeholders. */
type Sql = (text: string, values?: unknown[]) => Promise<Record<string, unknown>[]>;

interface Engine {
  name: 'sqlite' | 'postgres';
  /** --db */
  location: () => string;
  sql: Sql;
}

const sqliteEngine = (): Engine => {
  const file = join(tmp.dir, 'receipts.db');
  return {
    name: 'sqlite',
    location: () => file,
    sql: async (text, values = []) => {
      const db = new Database(file);
      try {
        const stmt = db.prepare(text);
        return stmt.reader ? (stmt.all(...values) as Record<string, unknown>[]) : (stmt.run(...values), []);
      } finally {
        db.close();
      }
    },
  };
};

const postgresEngine = (url: () => string): Engine => ({
  name: 'postgres',
  location: url,
  sql: async (text, values = []) => {
    const c = new pg.Client({ connectionString: url() });
    await c.connect();
    try {
      let n = 0;
      return (
        await c.query(
          text.replace(/\?/g, () => `$${++n}`),
          values,
        )
      ).rows;
    } finally {
      await c.end();
    }
  },
});

/** Runs fn with a change made to the stored ledger, and puts it back whatever happens. */
async function tampered<T>(
  e: Engine,
  change: string,
  undo: string,
  values: unknown[],
  undoValues: unknown[],
  fn: () => Promise<T>,
): Promise<T> {
  await e.sql(change, values);
  try {
    return await fn();
  } finally {
    await e.sql(undo, undoValues);
  }
}

function suite(e: Engine) {
  const fsck = (...extra: string[]) => run(['fsck', '--db', e.location(), ...extra]);

  it('a clean ledger checks out: exit 0, every epoch, node and event counted, progress on stderr', async () => {
    const r = await fsck();
    expect(r.stderr).toMatch(/^checking epochs: 3 \/ 3$/m);
    expect(r.stderr).toMatch(/^checking unsealed events: 5 \/ 5$/m);
    expect(r.stdout).toMatch(
      /checks out: 3 epochs \(300 events, 606 tree nodes\) rebuilt from their leaves, 5 events after the last epoch/,
    );
    expect(r.code).toBe(0);
    const json = await fsck('--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: true,
      engine: e.name,
      epochs_checked: 3,
      events_checked: 300,
      unsealed_checked: 5,
      nodes_checked: 606,
    });
  }, 60_000);

  it('one stored tree node changed: exit 1 naming the epoch, level, node and chunk', async () => {
    const [row] = await e.sql('SELECT hashes FROM epoch_nodes WHERE epoch = 1 AND level = 1 AND chunk = 0');
    const original = row!.hashes as Buffer;
    const changed = Buffer.from(original);
    changed.fill(0x11, 5 * 32, 6 * 32); // node 5 of level 1
    const q = 'UPDATE epoch_nodes SET hashes = ? WHERE epoch = 1 AND level = 1 AND chunk = 0';
    await tampered(e, q, q, [changed], [original], async () => {
      const r = await fsck();
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(
        /does not check out: epoch 1: the stored tree level 1 is not the one rebuilt from its leaf hashes: node 5 \(chunk 0\) is 1{64}, rebuilt [0-9a-f]{64} \[node\]/,
      );
      const json = await fsck('--json');
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, problem: { code: 'node', epoch: 1, level: 1, index: 5, chunk: 0 } });
    });
    expect((await fsck()).code).toBe(0); // put back: clean again
  }, 60_000);

  it('a stored leaf-level node in its second chunk: named with the event whose leaf it is', async () => {
    const [row] = await e.sql('SELECT hashes FROM epoch_nodes WHERE epoch = 2 AND level = 0 AND chunk = 1');
    const [ev] = await e.sql('SELECT id FROM events WHERE seq = ?', [200 + 64 + 3 + 1]); // epoch 2 starts at 201: node 67 is seq 268
    const original = row!.hashes as Buffer;
    const changed = Buffer.from(original);
    changed[3 * 32] = changed[3 * 32]! ^ 1;
    const q = 'UPDATE epoch_nodes SET hashes = ? WHERE epoch = 2 AND level = 0 AND chunk = 1';
    await tampered(e, q, q, [changed], [original], async () => {
      const r = await fsck('--json');
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).problem).toMatchObject({
        code: 'node',
        epoch: 2,
        level: 0,
        index: 67,
        chunk: 1,
        seq: 268,
        event: Number(ev!.id),
      });
    });
  }, 60_000);

  it("one event's stored leaf hash changed: exit 1 naming the event and its epoch", async () => {
    const [row] = await e.sql('SELECT id, leaf_hash FROM events WHERE seq = 150');
    const id = Number(row!.id);
    const original = row!.leaf_hash as Buffer;
    const q = 'UPDATE events SET leaf_hash = ? WHERE seq = 150';
    await tampered(e, q, q, [Buffer.alloc(32, 0x22)], [original], async () => {
      const r = await fsck();
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(
        new RegExp(
          `does not check out: event ${id} \\(epoch 1\\): its stored leaf hash 2{64} is not the hash of its fields \\(${original.toString('hex')}\\) \\[leaf_hash\\]`,
        ),
      );
      const json = await fsck('--json');
      expect(JSON.parse(json.stdout).problem).toMatchObject({ code: 'leaf_hash', epoch: 1, event: id, seq: 150, level: 0, index: 49 });
    });
  }, 60_000);

  it('an event after the last epoch with a changed leaf hash: named too', async () => {
    const [row] = await e.sql('SELECT id, leaf_hash FROM events WHERE id = (SELECT max(id) FROM events)');
    const id = Number(row!.id);
    const q = 'UPDATE events SET leaf_hash = ? WHERE id = ?';
    await tampered(e, q, q, [Buffer.alloc(32, 0x33), id], [row!.leaf_hash, id], async () => {
      const r = await fsck('--json');
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).problem).toMatchObject({
        code: 'leaf_hash',
        event: id,
        message: expect.stringMatching(new RegExp(`^event ${id} \\(after the last epoch\\)`)),
      });
    });
  }, 60_000);

  it('a broken epoch boundary: exit 1 naming the epoch and the positions in no epoch', async () => {
    await tampered(
      e,
      'UPDATE epochs SET first_seq = first_seq + 1, size = size - 1 WHERE epoch = 2',
      'UPDATE epochs SET first_seq = first_seq - 1, size = size + 1 WHERE epoch = 2',
      [],
      [],
      async () => {
        const r = await fsck();
        expect(r.code).toBe(1);
        expect(r.stdout).toMatch(
          /does not check out: epoch 2 starts at ledger position 202, but epoch 1 ends at 200: positions 201 … 201 are in no epoch \[boundary\]/,
        );
      },
    );
    // Overlapping: epoch 1 claims the first position of epoch 2.
    await tampered(
      e,
      'UPDATE epochs SET last_seq = last_seq + 1, size = size + 1 WHERE epoch = 1',
      'UPDATE epochs SET last_seq = last_seq - 1, size = size - 1 WHERE epoch = 1',
      [],
      [],
      async () => {
        const r = await fsck('--json');
        expect(r.code).toBe(1);
        expect(JSON.parse(r.stdout).problem).toMatchObject({
          code: 'boundary',
          epoch: 2,
          message: 'epoch 2 starts at ledger position 201, inside epoch 1 (which ends at 201)',
        });
      },
    );
  }, 60_000);

  it('a stored epoch root changed: named with the root rebuilt', async () => {
    const [row] = await e.sql('SELECT root FROM epochs WHERE epoch = 0');
    const q = 'UPDATE epochs SET root = ? WHERE epoch = 0';
    await tampered(e, q, q, [Buffer.alloc(32)], [row!.root], async () => {
      const r = await fsck();
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/epoch 0: the stored root 0{64} is not the root of its 100 leaf hashes \([0-9a-f]{64}\) \[root\]/);
    });
  }, 60_000);
}

describe('receipts fsck: sqlite', () => {
  const e = sqliteEngine();
  beforeAll(async () => {
    const ledger = new SqliteLedger(e.location(), { synchronous: 'normal' });
    try {
      await fill(ledger, 305, 5);
    } finally {
      await ledger.close();
    }
  }, 60_000);
  suite(e);

  it('bad usage and a ledger that cannot be read exit 2, saying why; nothing is created', async () => {
    const missing = join(tmp.dir, 'nope', 'receipts.db');
    const r = await run(['fsck', '--db', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: no SQLite ledger at .*nope\/receipts\.db .*check --db/m);
    const notLedger = join(tmp.dir, 'other.db');
    new Database(notLedger).exec('CREATE TABLE t (x)');
    const other = await run(['fsck', '--db', notLedger]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/is not a sui-receipts ledger/);
    expect((await run(['fsck', '--db', e.location(), '--no-such-flag'])).code).toBe(2);
    const help = await run(['fsck', '--help']);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {2}the ledger checks out\n {2}1 {2}a disagreement/);
  }, 60_000);
});

describe.skipIf(!cluster)('receipts fsck: postgres', () => {
  let url = '';
  const e = postgresEngine(() => url);
  beforeAll(async () => {
    url = await freshDatabase(cluster!.url);
    const ledger = await openPostgresLedger(url, { leaseMs: 600 });
    try {
      await fill(ledger, 305, 5);
    } finally {
      await ledger.close();
    }
  }, 60_000);
  suite(e);

  it('a database without a ledger exits 2; the password never shows', async () => {
    const empty = new URL(await freshDatabase(cluster!.url));
    empty.password = 'pw-not-to-show-5521';
    const r = await run(['fsck', '--db', empty.toString()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: postgres:\/\/postgres:\*\*\*@.* holds no sui-receipts ledger/m);
    expect(r.stdout + r.stderr).not.toContain('pw-not-to-show-5521');
  }, 60_000);
});
