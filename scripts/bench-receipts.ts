// bench:receipts — GET /v1/events/:id/receipt for random events of one sealed 1,000,000-event
// epoch, beside GET /healthz on the same server with the same load (the HTTP floor), in
// alternating rounds; prints each round's rates and ratio and the median ratio. Last line: JSON.
//
// --engine sqlite (default): a temporary SQLite file. --engine postgres: a throw-away PostgreSQL
// cluster (as the tests start one), one instance. BENCH_EVENTS (1,000,000), BENCH_SECONDS per
// figure (5), BENCH_ROUNDS (3), BENCH_CONNECTIONS (10, as bench:seal); BENCH_CPU_PROF=DIR profiles
// the server. --keep DIR (SQLite): the ledger is written to DIR and kept; a later run with the same
// DIR serves it again without writing and sealing 1,000,000 events anew.
import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { NormalizedEvent } from '../src/event/validate.ts';
import { type Ledger, SqliteLedger } from '../src/ledger/index.ts';
import { openPostgresLedger } from '../src/ledger/postgres/index.ts';
import { sealNext } from '../src/seal/sealer.ts';
import { verifyReceipt } from '../src/verify/index.ts';
import { freshDatabase, startPostgres, type PostgresCluster } from '../test/support/postgres.ts';
import { ROOT, startServer, stopServer } from './lib/servers.ts';

const { values: cli } = parseArgs({ options: { engine: { type: 'string', default: 'sqlite' }, keep: { type: 'string' } } });
if (cli.engine !== 'sqlite' && cli.engine !== 'postgres') throw new Error(`--engine must be sqlite or postgres, not "${cli.engine}"`);
if (cli.keep && cli.engine !== 'sqlite')
  throw new Error('--keep is for --engine sqlite (a kept PostgreSQL cluster would outlive the bench)');
const engine = cli.engine;
const N = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const WRITE_BATCH = 1000;
const WARM_UP_SECONDS = 3;
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

/** N events through the ledger's own write path (whatever the engine's schema holds), then one epoch of all of them. */
async function fill(ledger: Ledger): Promise<{ key: string; root: string; size: number }> {
  const key = (await ledger.keys.create('bench', ['acme/*'])).key;
  log(`bench:receipts (${engine}) — writing ${N.toLocaleString('en')} events …`);
  const now = Date.now();
  for (let from = 0; from < N; from += WRITE_BATCH * 10) {
    const writes: Promise<unknown>[] = [];
    for (let b = from; b < Math.min(N, from + WRITE_BATCH * 10); b += WRITE_BATCH) {
      const items = [];
      for (let i = b; i < Math.min(N, b + WRITE_BATCH); i++) {
        const event: NormalizedEvent = {
          namespace: 'acme/bench',
          request_id: `r${i}`,
          caller: `c${i % 1000}`,
          action: 'recall',
          units: 1 + (i % 7),
          artifact_digest: '',
          ts_ms: now - (N - i),
          ts_explicit: true,
          received_at: now,
          source: null,
          metadata: null,
          redacted: [],
        };
        items.push({ event, owner: 'bench', keyId: 'k' });
      }
      writes.push(ledger.events.write(items));
    }
    await Promise.all(writes);
    if ((from + WRITE_BATCH * 10) % 200_000 === 0) log(`  ${Math.min(N, from + WRITE_BATCH * 10).toLocaleString('en')} written`);
  }
  if (engine === 'postgres') {
    await ledger.leadership.start(() => {});
    for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 50));
  }
  log('sealing one epoch …');
  const epoch = await sealNext(ledger, { maxEvents: N });
  if (!epoch || epoch.size !== N) throw new Error(`sealed ${epoch?.size ?? 0} events, not ${N}`);
  if (engine === 'postgres') await ledger.leadership.stop();
  return { key, root: epoch.root, size: epoch.size };
}

async function measure(serveArgs: string[], seal: { key: string; root: string; size: number }) {
  // BENCH_CPU_PROF=DIR: the server writes a V8 CPU profile there (node --cpu-prof) when it stops.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const { proc, url } = await startServer([...prof, 'src/cli/main.ts', 'serve', ...serveArgs, '--log-level', 'warn', '--port']);
  try {
    const headers = { authorization: `Bearer ${seal.key}` };
    // Served receipts must verify against the epoch root before anything is timed.
    for (let i = 0; i < 20; i++) {
      const id = 1 + Math.floor(Math.random() * N);
      const r = await (await fetch(`${url}/v1/events/${id}/receipt`, { headers })).json();
      const v = verifyReceipt(r, { root: seal.root, size: seal.size });
      if (!v.ok) throw new Error(`receipt ${id} does not verify: ${v.reason}`);
    }
    const drive = (path: () => string, seconds = SECONDS) =>
      autocannon({
        url,
        connections: CONNECTIONS,
        duration: seconds,
        requests: [{ method: 'GET', headers, setupRequest: (req) => ({ ...req, path: path() }) }],
      });
    // Warm-up, not counted: the first touches of a fresh 1M-event database (OS page cache, the
    // upper levels read into memory) otherwise land in round 1 only.
    await drive(() => `/v1/events/${1 + Math.floor(Math.random() * N)}/receipt`, WARM_UP_SECONDS);
    await drive(() => '/healthz', 1);
    const rounds = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which goes first, so a drift of the machine's speed falls on both.
      const order = round % 2 ? (['receipts', 'healthz'] as const) : (['healthz', 'receipts'] as const);
      const got: Record<string, autocannon.Result> = {};
      const cpuUs: Record<string, number> = {};
      for (const what of order) {
        const before = cpuMs(proc.pid!);
        got[what] = await drive(what === 'receipts' ? () => `/v1/events/${1 + Math.floor(Math.random() * N)}/receipt` : () => '/healthz');
        cpuUs[what] = ((cpuMs(proc.pid!) - before) * 1000) / Math.max(1, got[what]!.requests.total);
      }
      const receipts = got.receipts!;
      const health = got.healthz!;
      const errors = receipts.errors + receipts.non2xx + health.errors + health.non2xx;
      const row = {
        receipts_per_s: Math.round(receipts.requests.average),
        receipts_p99_ms: receipts.latency.p99,
        healthz_per_s: Math.round(health.requests.average),
        ratio: ratio(receipts.requests.average, health.requests.average),
        // The server's CPU per request (all its threads): what the rates would be on a machine
        // where nothing else runs; this one is shared, and the load generator shares it too.
        receipt_cpu_us: Math.round(cpuUs.receipts!),
        healthz_cpu_us: Math.round(cpuUs.healthz!),
        cpu_ratio: ratio(cpuUs.healthz!, cpuUs.receipts!),
        errors,
      };
      console.log(
        `round ${round}: receipts ${row.receipts_per_s} req/s (p99 ${row.receipts_p99_ms} ms) | GET /healthz ${row.healthz_per_s} req/s | ratio ${row.ratio} | server CPU per request ${row.receipt_cpu_us} µs / ${row.healthz_cpu_us} µs (ratio ${row.cpu_ratio})${errors ? ` | WARNING: ${errors} errors or non-2xx` : ''}`,
      );
      rounds.push(row);
    }
    return { rounds, rssMb: await stopServer(proc) };
  } catch (err) {
    proc.kill('SIGTERM');
    throw err;
  }
}

/** CPU time a process has used so far (user + system, all threads), ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
}
const TICKS_PER_S = 100; // Linux's USER_HZ

const dir = cli.keep ?? mkdtempSync(join(tmpdir(), 'bench-receipts-'));
if (cli.keep) mkdirSync(dir, { recursive: true });
const kept = join(dir, 'seal.json');
let cluster: PostgresCluster | null = null;
try {
  let location: string;
  const serveArgs: string[] = [];
  if (engine === 'postgres') {
    cluster = await startPostgres();
    if (!cluster) throw new Error('--engine postgres needs PostgreSQL installed (initdb and pg_ctl): apt-get install postgresql');
    location = await freshDatabase(cluster.url);
    const keyFile = join(dir, 'log.key');
    const made = spawnSync(
      process.execPath,
      ['src/cli/main.ts', 'signing-key', 'create', '--name', 'bench.example/log', '--out', keyFile],
      { cwd: ROOT, encoding: 'utf8' },
    );
    if (made.status !== 0) throw new Error(`signing-key create failed: ${made.stderr}`);
    serveArgs.push('--log-key', keyFile);
  } else {
    location = join(dir, 'receipts.db');
  }
  // A long lease: the one 1M-event tree build must not cost the bench's own process its term.
  const ledger: Ledger =
    engine === 'postgres' ? await openPostgresLedger(location, { leaseMs: 60_000 }) : new SqliteLedger(location, { synchronous: 'normal' });
  let seal: Awaited<ReturnType<typeof fill>>;
  try {
    if (cli.keep && existsSync(kept)) {
      seal = JSON.parse(readFileSync(kept, 'utf8'));
      if (seal.size !== N)
        throw new Error(`${dir} holds an epoch of ${seal.size} events, not BENCH_EVENTS=${N}: give another --keep folder`);
      log(`bench:receipts (${engine}) — serving the ${N.toLocaleString('en')}-event ledger kept in ${dir}`);
    } else {
      seal = await fill(ledger);
      if (cli.keep) writeFileSync(kept, JSON.stringify(seal));
    }
  } finally {
    await ledger.close();
  }
  log(`serving: ${ROUNDS} rounds of ${SECONDS} s per figure, ${CONNECTIONS} connections …`);
  const { rounds, rssMb } = await measure(['--db', location, ...serveArgs], seal);
  const summary = {
    bench: 'receipts',
    engine,
    events: N,
    seconds: SECONDS,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    receipts_per_s: median(rounds.map((r) => r.receipts_per_s)),
    receipts_p99_ms: median(rounds.map((r) => r.receipts_p99_ms)),
    healthz_per_s: median(rounds.map((r) => r.healthz_per_s)),
    receipts_over_healthz: median(rounds.map((r) => r.ratio)),
    receipt_cpu_us: median(rounds.map((r) => r.receipt_cpu_us)),
    healthz_cpu_us: median(rounds.map((r) => r.healthz_cpu_us)),
    healthz_cpu_over_receipt_cpu: median(rounds.map((r) => r.cpu_ratio)),
    server_peak_rss_mb: Math.round(rssMb),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
  console.log(
    `median of ${ROUNDS} rounds: receipts ${summary.receipts_per_s} req/s | GET /healthz ${summary.healthz_per_s} req/s | ratio ${summary.receipts_over_healthz} (target ≥ 0.5) | server CPU per request ${summary.receipt_cpu_us} µs / ${summary.healthz_cpu_us} µs (ratio ${summary.healthz_cpu_over_receipt_cpu}) | server peak RSS ${summary.server_peak_rss_mb} MB`,
  );
  console.log(JSON.stringify(summary));
} finally {
  await cluster?.stop();
  if (cli.keep) log(`the ledger is kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
// Done: a hashing worker of the seal may still hold the event loop.
process.exit(0);
