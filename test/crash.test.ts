// kill -9 while clients post batches: every event answered `created` must be there exactly
// once afterwards, and nothing half-written (each request's events commit together or not at all).
import Database from 'better-sqlite3';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToHex, leafHash } from '../src/event/leaf.ts';
import { SqliteLedger } from '../src/ledger/index.ts';
import { logKeyFile, receipts, serve } from './cli/run.ts';
import { tempDir } from './helpers.ts';
import { pgTypes } from '../src/ledger/postgres/db.ts';
import { findPostgresBin, freshDatabase, postgresRequired, startPostgres, type PostgresCluster } from './support/postgres.ts';

const t = tempDir('receipts-crash-');
afterAll(() => t.cleanup());

type Row = Record<string, unknown>;

/**
 * Posts from four clients, kills the server with SIGKILL, and checks what the ledger kept. The
 * engine-specific parts: where the ledger is, and how to read its rows after the crash.
 */
async function killMidIngest(db: string, readRows: () => Promise<Row[]>, afterCrash: () => void = () => {}) {
  // PostgreSQL requires a log key (every instance the same one); SQLite makes its own.
  const logKey = db.startsWith('postgres') ? ['--log-key', logKeyFile(t.dir)] : [];
  const s = await serve(['--db', db, ...logKey]);
  const key = JSON.parse(receipts(['keys', 'create', '--db', db, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

  const acknowledged = new Set<string>();
  const batches: string[][] = [];
  let stop = false;
  const client = async (c: number) => {
    for (let b = 0; !stop; b++) {
      const ids = Array.from({ length: 50 }, (_, i) => `c${c}-b${b}-e${i}`);
      batches.push(ids);
      const events = ids.map((request_id, i) => ({
        request_id,
        namespace: 'acme/crash',
        action: 'recall',
        caller: `u${i % 7}`,
        units: i + 1,
      }));
      try {
        const res = await fetch(`${s.url}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) });
        const body = (await res.json()) as { results: Array<{ status: string; request_id: string }> };
        for (const r of body.results) if (r.status === 'created') acknowledged.add(r.request_id);
      } catch {
        return; // the server is gone
      }
    }
  };
  const clients = [0, 1, 2, 3].map(client);
  while (acknowledged.size < 2000) await new Promise((r) => setTimeout(r, 10));
  s.proc.kill('SIGKILL');
  stop = true;
  await Promise.all(clients);
  expect((await s.exited).signal).toBe('SIGKILL');

  afterCrash();
  const rows = await readRows();
  const stored = new Map(rows.map((r) => [r.request_id as string, r]));
  expect(stored.size).toBe(rows.length); // no request id twice

  for (const id of acknowledged) expect(stored.has(id), `acknowledged ${id} missing`).toBe(true);
  for (const ids of batches) {
    const present = ids.filter((id) => stored.has(id)).length;
    expect([0, ids.length]).toContain(present); // a request commits whole or not at all
  }
  for (const r of rows) {
    const fields = {
      namespace: r.namespace as string,
      request_id: r.request_id as string,
      caller: r.caller as string,
      action: r.action as string,
      units: Number(r.units),
      artifact_digest: '',
      ts_ms: Number(r.ts),
    };
    expect((r.leaf_hash as Buffer).toString('hex')).toBe(bytesToHex(leafHash(fields)));
  }

  // After restart, resending an acknowledged event is a duplicate, not a second count.
  const again = await serve(['--db', db, ...logKey]);
  const first = [...acknowledged][0]!;
  const [c, b, e] = first.split('-');
  const i = Number(e!.slice(1));
  const res = await fetch(`${again.url}/v1/events`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ request_id: first, namespace: 'acme/crash', action: 'recall', caller: `u${i % 7}`, units: i + 1 }),
  });
  expect(((await res.json()) as { results: Array<{ status: string }> }).results[0]!.status).toBe('duplicate');
  void c;
  void b;
  again.proc.kill('SIGTERM');
  await again.exited;
}

it('loses no acknowledged event and half-writes nothing when the server is killed with SIGKILL (SQLite)', async () => {
  const file = join(t.dir, 'crash.db');
  await killMidIngest(
    file,
    async () => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare("SELECT * FROM events WHERE namespace = 'acme/crash'").all() as Row[];
      } finally {
        db.close();
      }
    },
    () => {
      new SqliteLedger(file).closeSync(); // reopen as the server would (WAL recovery)
      const db = new Database(file, { readonly: true });
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      db.close();
    },
  );
});

describe.skipIf(!findPostgresBin() && !postgresRequired())('PostgreSQL', () => {
  let cluster: PostgresCluster | null = null;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('loses no acknowledged event and half-writes nothing when the server is killed with SIGKILL (PostgreSQL)', async () => {
    const url = await freshDatabase(cluster!.url);
    await killMidIngest(url, async () => {
      const client = new pg.Client({ connectionString: url, types: pgTypes });
      await client.connect();
      try {
        return (await client.query("SELECT * FROM events WHERE namespace = 'acme/crash'")).rows as Row[];
      } finally {
        await client.end();
      }
    });
  });
});
