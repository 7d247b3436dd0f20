// A ledger reached over PostgreSQL's Unix socket (host=/var/run/postgresql, the usual local
// setup): while the server is stopped its socket file is gone and a connect fails with ENOENT,
// not ECONNREFUSED. That is the database being away, like any other refused connection: every
// route answers 503 with Retry-After (never 500), and the instance serves again once it is back.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/index.ts';
import { findPostgresBin, freshDatabase, postgresRequired, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { ChainServer } from './http-chain.ts';
import { leaderOf, start, type Instance } from './harness.ts';

describe.skipIf(!findPostgresBin() && !postgresRequired())('PostgreSQL over its Unix socket, stopped', () => {
  let cluster: PostgresCluster | null = null;
  const chain = new ChainServer();
  let instance: Instance | undefined;
  beforeAll(async () => {
    cluster = await startPostgres();
    await chain.start();
  }, 60_000);
  afterAll(async () => {
    instance?.proc.kill('SIGKILL');
    await chain.stop();
    await cluster?.stop();
  });

  it('answers 503 with Retry-After on every route that needs the database, then serves again', { timeout: 120_000 }, async () => {
    const db = await freshDatabase(cluster!.url);
    const admin = new pg.Client({ connectionString: db });
    await admin.connect();
    const socketDir = (await admin.query<{ d: string }>('SELECT current_setting($1) AS d', ['unix_socket_directories'])).rows[0]!.d;
    await admin.end();
    const tcp = new URL(db);
    const viaSocket = `postgres://postgres@/${tcp.pathname.slice(1)}?host=${encodeURIComponent(socketDir)}&port=${tcp.port}`;
    const setup = await openLedger(viaSocket);
    const key = (await setup.keys.create('acme', ['acme/*'])).key;
    await setup.close();
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    instance = await start(viaSocket, chain.url, 'sock');
    await leaderOf([instance]);
    const post = (request_id: string) =>
      fetch(`${instance!.url}/v1/events`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ request_id, namespace: 'acme/sock', action: 'recall', caller: 'u0', units: 1 }),
      });
    expect((await post('before')).status).toBe(200);

    await cluster!.ctl('stop');
    try {
      const asked: Array<[string, RequestInit?]> = [
        [
          '/v1/events',
          { method: 'POST', headers, body: JSON.stringify({ request_id: 'down', namespace: 'acme/sock', action: 'recall', caller: 'u0' }) },
        ],
        ['/v1/events/1/receipt', { headers }],
        ['/v1/epochs', { headers }],
        ['/v1/epochs/0', { headers }],
        ['/v1/usage?namespace=acme/sock', { headers }],
        ['/v1/usage?namespace=acme/sock&receipts=true&limit=5', { headers }],
        ['/v1/classification', { headers }],
        // A key no cache holds: its lookup needs the database.
        ['/v1/usage?namespace=acme/sock', { headers: { authorization: `Bearer sr_abcdefghijkl_${'x'.repeat(43)}` } }],
      ];
      for (const [path, init] of asked) {
        const res = await fetch(`${instance.url}${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
        const body = await res.text();
        expect(res.status, `${init?.method ?? 'GET'} ${path}: ${body}`).toBe(503);
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      }
      expect((await fetch(`${instance.url}/healthz`)).status).toBe(503);
    } finally {
      await cluster!.ctl('start');
    }
    const end = Date.now() + 20_000;
    while ((await post('after')).status !== 200) {
      if (Date.now() > end) throw new Error(`ingest did not resume:\n${instance.out()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(instance.proc.exitCode).toBeNull();
  });
});
