// bench:seal — seal one epoch of 1,000,000 events (time and peak RSS, beside the floor: the same
// number of SHA-256 node hashes alone), then serve receipts for random events of it under load,
// beside GET /healthz on the same server (the HTTP floor). Last line: JSON.
import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafHash } from '../src/event/leaf.ts';
import { SqliteLedger } from '../src/ledger/index.ts';
import { verifyReceipt } from '../src/verify/index.ts';
import { ROOT, startServer, stopServer } from './lib/servers.ts';

const N = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 10;
const dir = mkdtempSync(join(tmpdir(), 'bench-seal-'));
const log = (s: string) => process.stderr.write(`${s}\n`);

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
  const run = spawnSync(process.execPath, ['scripts/seal-once.ts', file, String(N)], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (run.status !== 0) throw new Error(`seal failed: ${run.stdout}`);
  const seal = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
    size: number;
    seal_ms: number;
    floor_ms: number;
    max_rss_mb: number;
    root: string;
  };

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

  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  console.log(
    `seal ${N.toLocaleString('en')} events: ${(seal.seal_ms / 1000).toFixed(2)} s, peak RSS ${seal.max_rss_mb} MB | floor (${(N - 1).toLocaleString('en')} node hashes alone): ${(seal.floor_ms / 1000).toFixed(2)} s | ratio ${ratio(seal.seal_ms, seal.floor_ms)}`,
  );
  console.log(
    `receipts: ${Math.round(receipts.requests.average)} req/s, p50 ${receipts.latency.p50} ms, p99 ${receipts.latency.p99} ms | GET /healthz on the same server: ${Math.round(health.requests.average)} req/s, p99 ${health.latency.p99} ms | ratio ${ratio(receipts.requests.average, health.requests.average)}`,
  );
  const errors = receipts.errors + receipts.non2xx;
  if (errors > 0) console.log(`WARNING: ${errors} errors or non-2xx answers`);
  console.log(
    JSON.stringify({
      bench: 'seal',
      events: N,
      seal_s: seal.seal_ms / 1000,
      seal_peak_rss_mb: seal.max_rss_mb,
      floor_s: seal.floor_ms / 1000,
      seal_over_floor: ratio(seal.seal_ms, seal.floor_ms),
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
