// Hashing an epoch's tree is synchronous: while it runs, the leader's lock connection sends no
// heartbeat, and PostgreSQL ends that session after a lease (idle_session_timeout, so that a
// paused leader is replaced in time). An epoch whose build takes longer than the lease must not
// cost the leader its term every time: else each leader in turn hashes, loses the lease, and
// nothing is ever sealed. The build here costs 4 ms an event (1,500 events: 6 s, lease 3 s), as a
// multi-million-event epoch does on a loaded machine.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/index.ts';
import { findPostgresBin, freshDatabase, postgresRequired, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { ChainServer } from './http-chain.ts';

const INSTANCE = fileURLToPath(new URL('./slow-build-instance.ts', import.meta.url));

function startSlow(db: string, chainUrl: string, name: string) {
  const proc = spawn(process.execPath, [INSTANCE, db, chainUrl, name], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BUILD_MS_PER_EVENT: '4' },
  });
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening (\S+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.on('exit', () => reject(new Error(`${name} exited:\n${out}`)));
  });
  return { proc, url, out: () => out };
}

describe.skipIf(!findPostgresBin() && !postgresRequired())('an epoch whose tree takes longer than the lease to build', () => {
  let cluster: PostgresCluster | null = null;
  const chain = new ChainServer();
  const procs: Array<ReturnType<typeof startSlow>> = [];
  beforeAll(async () => {
    cluster = await startPostgres();
    await chain.start();
  }, 60_000);
  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await chain.stop();
    await cluster?.stop();
  });

  it('is still sealed, by two instances sharing the ledger (no leader loses its term to every build)', { timeout: 120_000 }, async () => {
    const db = await freshDatabase(cluster!.url);
    const ledger = await openLedger(db);
    const key = (await ledger.keys.create('acme', ['acme/*'])).key;
    await ledger.close();
    procs.push(startSlow(db, chain.url, 'a'), startSlow(db, chain.url, 'b'));
    const [a] = await Promise.all(procs.map((p) => p.url));
    for (let b = 0; b < 3; b++) {
      const res = await fetch(`${a}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          events: Array.from({ length: 500 }, (_, e) => ({
            request_id: `s${b}-${e}`,
            namespace: 'acme/slow',
            action: 'recall',
            caller: 'u',
            units: 1,
          })),
        }),
      });
      expect(res.status).toBe(200);
    }
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    try {
      const end = Date.now() + 45_000;
      let unsealed = -1;
      while (Date.now() < end) {
        unsealed = (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE seq IS NULL')).rows[0]!.n;
        if (unsealed === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const terms = (await c.query<{ term: number }>('SELECT term::int FROM leadership')).rows[0]!.term;
      console.log(`slow build: ${unsealed} unsealed after the wait, leadership term ${terms}`);
      expect(unsealed).toBe(0);
      const seqs = (await c.query<{ seq: number }>('SELECT seq::int FROM events ORDER BY seq')).rows.map((r) => r.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    } finally {
      await c.end();
    }
    for (const p of procs) expect(p.proc.exitCode, p.out()).toBeNull();
  });
});
