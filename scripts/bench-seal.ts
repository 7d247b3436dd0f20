// bench:seal — seal one epoch of 1,000,000 events (time and peak RSS), beside the floors: the
// same number of node hashes alone (1) through the fastest path here (the seal's bulk kernel on
// both cores, no I/O), and (2) one node:crypto call per node (the old per-node floor). Then on
// SQLite: receipts for random events of it under load, beside GET /healthz on the same server.
// --engine postgres: the same seal on a throw-away PostgreSQL cluster, then the leader's longest
// event-loop stall while a 100,000-event epoch seals under ingest (beside ingest alone).
// Last line: JSON.
import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { leafHash } from '../src/event/leaf.ts';
import { openLedger, SqliteLedger } from '../src/ledger/index.ts';
import { verifyReceipt } from '../src/verify/index.ts';
import { freshDatabase, startPostgres } from '../test/support/postgres.ts';
import { ROOT, startServer, stopServer } from './lib/servers.ts';

const { values: cli } = parseArgs({ options: { engine: { type: 'string', default: 'sqlite' } } });
if (cli.engine !== 'sqlite' && cli.engine !== 'postgres') throw new Error(`--engine must be sqlite or postgres, not "${cli.engine}"`);
const N = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const STALL_EVENTS = Number(process.env.BENCH_STALL_EVENTS ?? 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 10;
const dir = mkdtempSync(join(tmpdir(), 'bench-seal-'));
const log = (s: string) => process.stderr.write(`${s}\n`);
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

interface SealFigures {
  engine: string;
  size: number;
  root: string;
  seal_ms: number;
  floor_ms: number;
  crypto_floor_ms: number;
  max_rss_mb: number;
  threads_start_ms: number;
  longest_stall_ms?: number;
  baseline_stall_ms?: number;
  ingested?: number;
}

/** scripts/seal-once.ts in its own process (its peak RSS is the seal's). */
function sealOnce(location: string, events: number, stall = false): SealFigures {
  const run = spawnSync(process.execPath, ['scripts/seal-once.ts', location, String(events), ...(stall ? ['--stall'] : [])], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (run.status !== 0) throw new Error(`seal failed: ${run.stdout}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as SealFigures;
}

function printSeal(seal: SealFigures): void {
  console.log(
    `seal ${seal.size.toLocaleString('en')} events (${seal.engine}): ${(seal.seal_ms / 1000).toFixed(2)} s, peak RSS ${seal.max_rss_mb} MB (hashing threads started beforehand in ${seal.threads_start_ms} ms, once per process) | floor (${(seal.size - 1).toLocaleString('en')} node hashes alone, bulk kernel on both cores): ${(seal.floor_ms / 1000).toFixed(2)} s, ratio ${ratio(seal.seal_ms, seal.floor_ms)} | one node:crypto call per node: ${(seal.crypto_floor_ms / 1000).toFixed(2)} s, ratio ${ratio(seal.seal_ms, seal.crypto_floor_ms)}`,
  );
}

const sealJson = (seal: SealFigures) => ({
  events: seal.size,
  seal_s: seal.seal_ms / 1000,
  seal_peak_rss_mb: seal.max_rss_mb,
  threads_start_ms: seal.threads_start_ms,
  floor_s: seal.floor_ms / 1000,
  seal_over_floor: ratio(seal.seal_ms, seal.floor_ms),
  crypto_floor_s: seal.crypto_floor_ms / 1000,
  seal_over_crypto_floor: ratio(seal.seal_ms, seal.crypto_floor_ms),
});

/** N events straight into a PostgreSQL ledger's events table, unsealed (the seal reads only id, ts and leaf_hash). */
async function fillPostgres(url: string, events: number, from: number): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const now = Date.now();
    for (let i = from; i < from + events; i += 100_000) {
      await client.query(
        `INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
         SELECT 'acme/bench', 'r' || g, 'bench', 'k', 'c' || (g % 1000), 'recall', 1 + g % 7, $1::int8 + g, true, $1::int8 + g,
                sha256(('leaf ' || g)::bytea)
         FROM generate_series($2::int8, $3::int8) AS g`,
        [now - 2 * N, i, Math.min(from + events, i + 100_000) - 1],
      );
    }
  } finally {
    await client.end();
  }
}

async function benchPostgres(): Promise<void> {
  const cluster = await startPostgres();
  if (!cluster) throw new Error('--engine postgres needs PostgreSQL installed (initdb and pg_ctl): apt-get install postgresql');
  try {
    const url = await freshDatabase(cluster.url);
    await (await openLedger(url)).close(); // applies the engine's migrations
    log(`bench:seal --engine postgres — writing ${N.toLocaleString('en')} events …`);
    await fillPostgres(url, N, 0);
    log('sealing one epoch in a separate process …');
    const seal = sealOnce(url, N);
    log(`a ${STALL_EVENTS.toLocaleString('en')}-event epoch sealed under ingest, the leader's event loop watched …`);
    await fillPostgres(url, STALL_EVENTS, N);
    const stall = sealOnce(url, STALL_EVENTS, true);
    printSeal(seal);
    console.log(
      `longest event-loop stall of the leader while a ${stall.size.toLocaleString('en')}-event epoch sealed (${(stall.seal_ms / 1000).toFixed(2)} s) under ingest (${stall.ingested!.toLocaleString('en')} events written meanwhile): ${stall.longest_stall_ms} ms | ingest alone, as long again: ${stall.baseline_stall_ms} ms | target ≤ 50 ms`,
    );
    console.log(
      JSON.stringify({
        bench: 'seal',
        engine: 'postgres',
        ...sealJson(seal),
        stall_epoch_events: stall.size,
        stall_seal_s: stall.seal_ms / 1000,
        longest_stall_ms: stall.longest_stall_ms,
        baseline_stall_ms: stall.baseline_stall_ms,
      }),
    );
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchSqlite(): Promise<void> {
  try {
    const file = join(dir, 'seal.db');
    const ledger = new SqliteLedger(file, { synchronous: 'normal' });
    const key = (await ledger.keys.create('bench', ['acme/*'])).key;

    log(`bench:seal — writing ${N.toLocaleString('en')} events …`);
    const insert =
      ledger.db.prepare(`INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
    VALUES ('acme/bench', ?, 'bench', 'k', ?, 'recall', ?, ?, 1, ?, ?)`);
    const now = Date.now();
    const chunk = ledger.db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const f = {
          namespace: 'acme/bench',
          request_id: `r${i}`,
          caller: `c${i % 1000}`,
          action: 'recall',
          units: 1 + (i % 7),
          artifact_digest: '',
          ts_ms: now - (N - i),
        };
        insert.run(f.request_id, f.caller, f.units, f.ts_ms, now, leafHash(f));
      }
    });
    for (let i = 0; i < N; i += 100_000) {
      chunk(i, Math.min(N, i + 100_000));
      log(`  ${Math.min(N, i + 100_000).toLocaleString('en')} written`);
    }
    await ledger.close();

    log('sealing one epoch in a separate process …');
    const seal = sealOnce(file, N);

    log(`serving receipts: ${SECONDS} s, ${CONNECTIONS} connections …`);
    const { proc, url } = await startServer(['src/cli/main.ts', 'serve', '--db', file, '--log-level', 'warn', '--port']);
    const headers = { authorization: `Bearer ${key}` };
    // A sample of served receipts must verify against the epoch root before we time anything.
    for (let i = 0; i < 20; i++) {
      const id = 1 + Math.floor(Math.random() * N);
      const r = await (await fetch(`${url}/v1/events/${id}/receipt`, { headers })).json();
      const v = verifyReceipt(r, { root: seal.root, size: seal.size });
      if (!v.ok) throw new Error(`receipt ${id} does not verify: ${v.reason}`);
    }
    const drive = (path: () => string) =>
      autocannon({
        url,
        connections: CONNECTIONS,
        duration: SECONDS,
        requests: [{ method: 'GET', headers, setupRequest: (req) => ({ ...req, path: path() }) }],
      });
    const receipts = await drive(() => `/v1/events/${1 + Math.floor(Math.random() * N)}/receipt`);
    const health = await drive(() => '/healthz');
    const serverRss = await stopServer(proc);

    printSeal(seal);
    console.log(
      `receipts: ${Math.round(receipts.requests.average)} req/s, p50 ${receipts.latency.p50} ms, p99 ${receipts.latency.p99} ms | GET /healthz on the same server: ${Math.round(health.requests.average)} req/s, p99 ${health.latency.p99} ms | ratio ${ratio(receipts.requests.average, health.requests.average)}`,
    );
    const errors = receipts.errors + receipts.non2xx;
    if (errors > 0) console.log(`WARNING: ${errors} errors or non-2xx answers`);
    console.log(
      JSON.stringify({
        bench: 'seal',
        engine: 'sqlite',
        ...sealJson(seal),
        receipts_per_s: Math.round(receipts.requests.average),
        receipts_p99_ms: receipts.latency.p99,
        healthz_per_s: Math.round(health.requests.average),
        receipts_over_healthz: ratio(receipts.requests.average, health.requests.average),
        server_peak_rss_mb: Math.round(serverRss),
        errors,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (cli.engine === 'postgres') await benchPostgres();
else await benchSqlite();
