// bench:ingest — the service (`receipts serve`, default settings) against a naive baseline,
// both driven by autocannon from this process: single events and batches of 100, 30 connections.
// Prints each figure, the ratios, and a last line of JSON.
//
// --engine sqlite (default): one server on a temporary SQLite file.
// --engine postgres: a throw-away PostgreSQL cluster (as the tests start one); one instance, then
// two instances on the same database with the 30 connections split across them; the baseline
// does one multi-row INSERT per request into the same (migrated) schema. For the batches it also
// prints the CPU each process kept busy (each server, PostgreSQL's processes, this load
// generator) from /proc: what limits two instances on a machine of this many cores.
import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openLedger, SqliteLedger } from '../src/ledger/index.ts';
import { freshDatabase, startPostgres } from '../test/support/postgres.ts';
import { ROOT, startServer as start, stopServer as stop } from './lib/servers.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 30;

const { values: cli } = parseArgs({ options: { engine: { type: 'string', default: 'sqlite' } } });
if (cli.engine !== 'sqlite' && cli.engine !== 'postgres') {
  throw new Error(`--engine must be sqlite or postgres, not "${cli.engine}"`);
}

let seq = 0;
function body(batch: number): string {
  const now = Date.now();
  const one = () => {
    const n = ++seq;
    return `{"request_id":"bench-${n}","namespace":"acme/bench","action":"recall","caller":"user-${n % 1000}","units":${1 + (n % 5)},"ts":${now}}`;
  };
  return batch === 1 ? one() : `{"events":[${Array.from({ length: batch }, one).join(',')}]}`;
}

/** CPU seconds (user + system, all threads) of a process from /proc; 0 once it is gone. USER_HZ is 100 on Linux. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** The PostgreSQL server listening on `port`, and its children (backends, WAL writer, checkpointer …). */
function postgresPids(port: string): number[] {
  const pids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
  const read = (pid: number, file: string) => {
    try {
      return readFileSync(`/proc/${pid}/${file}`, 'utf8');
    } catch {
      return '';
    }
  };
  const postmaster = pids.find((pid) => {
    const args = read(pid, 'cmdline').split('\0');
    return /(^|\/)postgres$/.test(args[0] ?? '') && args.includes('-p') && args[args.indexOf('-p') + 1] === port;
  });
  if (postmaster === undefined) return [];
  const children = pids.filter((pid) => {
    const stat = read(pid, 'stat');
    return stat !== '' && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
  });
  return [postmaster, ...children];
}

/** Where the CPU of a load went: cores busy on average (CPU seconds over wall seconds) per process group. */
interface CpuSplit {
  /** Each server process, in order. */
  servers: number[];
  postgres: number;
  /** This process: autocannon, the load generator. */
  load: number;
}

/** Starts a CPU count over the servers, PostgreSQL (when `pgPort`) and this process; the returned function ends it. */
function cpuWatch(serverPids: number[], pgPort?: string): () => CpuSplit {
  const started = performance.now();
  const self = process.cpuUsage();
  const servers = serverPids.map(cpuSeconds);
  const pg = new Map((pgPort ? postgresPids(pgPort) : []).map((pid) => [pid, cpuSeconds(pid)]));
  return () => {
    const wall = (performance.now() - started) / 1000;
    const selfNow = process.cpuUsage(self);
    let pgCpu = 0;
    // Per process, so a backend that started during the run counts from zero.
    for (const pid of pgPort ? postgresPids(pgPort) : []) pgCpu += cpuSeconds(pid) - (pg.get(pid) ?? 0);
    return {
      servers: serverPids.map((pid, i) => (cpuSeconds(pid) - servers[i]!) / wall),
      postgres: pgCpu / wall,
      load: (selfNow.user + selfNow.system) / 1e6 / wall,
    };
  };
}

interface Run {
  cpu?: CpuSplit;
  reqPerSec: number;
  eventsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function cannon(url: string, key: string, batch: number, connections: number): Promise<Run> {
  const result = await autocannon({
    url: `${url}/v1/events`,
    connections,
    duration: SECONDS,
    requests: [
      {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: body(batch) }),
      },
    ],
  });
  const reqPerSec = result.requests.average;
  return {
    reqPerSec,
    eventsPerSec: reqPerSec * batch,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

/**
 * CONNECTIONS split evenly across the servers, all driven at once: rates add up, and the
 * latency reported is the worse server's (a percentile of the union is not available).
 */
async function load(urls: string[], key: string, batch: number, label: string, watch: () => () => CpuSplit): Promise<Run> {
  process.stderr.write(`  ${label}: ${SECONDS} s, ${CONNECTIONS} connections, ${batch} event(s) per request …\n`);
  const cpu = watch();
  const runs = await Promise.all(
    urls.map((url, i) => cannon(url, key, batch, Math.floor(CONNECTIONS / urls.length) + (i < CONNECTIONS % urls.length ? 1 : 0))),
  );
  const sum = (f: (r: Run) => number) => runs.reduce((s, r) => s + f(r), 0);
  const max = (f: (r: Run) => number) => Math.max(...runs.map(f));
  return {
    cpu: cpu(),
    reqPerSec: sum((r) => r.reqPerSec),
    eventsPerSec: sum((r) => r.eventsPerSec),
    p50: max((r) => r.p50),
    p99: max((r) => r.p99),
    errors: sum((r) => r.errors),
    non2xx: sum((r) => r.non2xx),
  };
}

/** Starts `instances` servers with the same arguments (each on its own port), loads them, stops them. */
async function measure(label: string, args: string[], key: string, instances = 1, pgPort?: string) {
  const servers: Awaited<ReturnType<typeof start>>[] = [];
  try {
    for (let i = 0; i < instances; i++) servers.push(await start(args));
    const urls = servers.map((s) => s.url);
    const watch = () =>
      cpuWatch(
        servers.map((s) => s.proc.pid!),
        pgPort,
      );
    const single = await load(urls, key, 1, `${label} single`, watch);
    const batch100 = await load(urls, key, 100, `${label} batch100`, watch);
    const rss = [];
    for (const s of servers.splice(0)) rss.push(await stop(s.proc));
    return { single, batch100, rssMb: Math.max(...rss) };
  } finally {
    for (const s of servers) await stop(s.proc);
  }
}

const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
const r = (n: number) => Math.round(n);
type Measured = Awaited<ReturnType<typeof measure>>;
const failures = (m: Measured) => m.single.errors + m.batch100.errors + m.single.non2xx + m.batch100.non2xx;

async function benchSqlite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
  try {
    const dbFile = join(dir, 'service.db');
    const ledger = new SqliteLedger(dbFile);
    const key = (await ledger.keys.create('bench', ['acme/*'])).key;
    await ledger.close();

    process.stderr.write('bench:ingest\n');
    const service = await measure('service', ['src/cli/main.ts', 'serve', '--db', dbFile, '--port'], key);
    const baseline = await measure('baseline', ['scripts/baseline-server.ts', join(dir, 'baseline.db')], key);

    console.log(
      `single events   service ${r(service.single.reqPerSec)} req/s (p50 ${service.single.p50} ms, p99 ${service.single.p99} ms) | baseline ${r(baseline.single.reqPerSec)} req/s (p99 ${baseline.single.p99} ms) | ratio ${ratio(service.single.reqPerSec, baseline.single.reqPerSec)}`,
    );
    console.log(
      `batches of 100  service ${r(service.batch100.eventsPerSec)} events/s (p50 ${service.batch100.p50} ms, p99 ${service.batch100.p99} ms) | baseline ${r(baseline.batch100.eventsPerSec)} events/s (p99 ${baseline.batch100.p99} ms) | ratio ${ratio(service.batch100.eventsPerSec, baseline.batch100.eventsPerSec)}`,
    );
    console.log(`peak RSS        service ${r(service.rssMb)} MB | baseline ${r(baseline.rssMb)} MB`);
    // CPU per event of each server: steadier than events/s on a machine shared with other work.
    const cpuPerEvent = (m: Measured) => r((m.batch100.cpu!.servers[0]! / m.batch100.eventsPerSec) * 1e6);
    console.log(`CPU, batches   service ${cpuPerEvent(service)} µs/event | baseline ${cpuPerEvent(baseline)} µs/event`);
    const errors = failures(service);
    if (errors > 0) console.log(`WARNING: ${errors} errors or non-2xx answers from the service`);
    console.log(
      JSON.stringify({
        bench: 'ingest',
        seconds: SECONDS,
        connections: CONNECTIONS,
        single_req_per_s: r(service.single.reqPerSec),
        single_p99_ms: service.single.p99,
        batch100_events_per_s: r(service.batch100.eventsPerSec),
        batch100_p99_ms: service.batch100.p99,
        baseline_single_req_per_s: r(baseline.single.reqPerSec),
        baseline_batch100_events_per_s: r(baseline.batch100.eventsPerSec),
        single_ratio: ratio(service.single.reqPerSec, baseline.single.reqPerSec),
        batch100_ratio: ratio(service.batch100.eventsPerSec, baseline.batch100.eventsPerSec),
        service_peak_rss_mb: r(service.rssMb),
        batch100_cpu_us_per_event: cpuPerEvent(service),
        baseline_batch100_cpu_us_per_event: cpuPerEvent(baseline),
        errors,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchPostgres(): Promise<void> {
  const cluster = await startPostgres();
  if (!cluster) throw new Error('--engine postgres needs PostgreSQL installed (initdb and pg_ctl): apt-get install postgresql');
  const keyDir = mkdtempSync(join(tmpdir(), 'bench-ingest-key-'));
  try {
    // A fresh database per configuration, each migrated by the engine: the same schema and
    // indexes everywhere, and no configuration inherits another's rows.
    const databases = [];
    for (let i = 0; i < 3; i++) databases.push(await freshDatabase(cluster.url));
    const [oneDb, twoDb, baselineDb] = databases as [string, string, string];
    const keys: string[] = [];
    for (const db of databases) {
      const ledger = await openLedger(db); // applies the engine's migrations
      try {
        keys.push((await ledger.keys.create('bench', ['acme/*'])).key);
      } finally {
        await ledger.close();
      }
    }

    process.stderr.write(`bench:ingest --engine postgres (throw-away cluster at ${new URL(cluster.url).host})\n`);
    // Every instance on PostgreSQL signs the epoch log with one key given by --log-key.
    const logKey = join(keyDir, 'log.key');
    const made = spawnSync(process.execPath, ['src/cli/main.ts', 'signing-key', 'create', '--name', 'bench.example/log', '--out', logKey], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (made.status !== 0) throw new Error(`signing-key create failed: ${made.stderr}`);
    const serve = (db: string) => ['src/cli/main.ts', 'serve', '--db', db, '--log-key', logKey, '--port'];
    const pgPort = new URL(cluster.url).port;
    const one = await measure('one instance', serve(oneDb), keys[0]!, 1, pgPort);
    const two = await measure('two instances', serve(twoDb), keys[1]!, 2, pgPort);
    const baseline = await measure('baseline', ['scripts/baseline-server.ts', baselineDb], keys[2]!, 1, pgPort);

    const line = (label: string, f: (m: Measured) => Run, unit: 'req/s' | 'events/s') => {
      const rate = (m: Measured) => (unit === 'req/s' ? f(m).reqPerSec : f(m).eventsPerSec);
      console.log(
        `${label}  one instance ${r(rate(one))} ${unit} (p50 ${f(one).p50} ms, p99 ${f(one).p99} ms) | ` +
          `two instances ${r(rate(two))} ${unit} (p50 ${f(two).p50} ms, p99 ${f(two).p99} ms) | ` +
          `baseline ${r(rate(baseline))} ${unit} (p99 ${f(baseline).p99} ms) | ratio ${ratio(rate(one), rate(baseline))} / ${ratio(rate(two), rate(baseline))}`,
      );
    };
    line('single events ', (m) => m.single, 'req/s');
    line('batches of 100', (m) => m.batch100, 'events/s');
    console.log(
      `peak RSS        one instance ${r(one.rssMb)} MB | two instances ${r(two.rssMb)} MB (the larger) | baseline ${r(baseline.rssMb)} MB`,
    );
    // What limits two instances here: the cores each process kept busy during the batches.
    const cores = (n: number) => n.toFixed(2);
    const cpuLine = (label: string, m: Measured) => {
      const c = m.batch100.cpu!;
      const total = c.servers.reduce((a, b) => a + b, 0) + c.postgres + c.load;
      const perEvent = (x: number) => r((x / m.batch100.eventsPerSec) * 1e6);
      const serverCpu = c.servers.reduce((a, b) => a + b, 0);
      console.log(
        `CPU, batches   ${label}: ${c.servers.map((x, i) => `server ${i + 1} ${cores(x)}`).join(', ')}, PostgreSQL ${cores(c.postgres)}, load generator ${cores(c.load)} cores` +
          ` = ${cores(total)} of ${availableParallelism()} cores | per event: server ${perEvent(serverCpu)} µs, PostgreSQL ${perEvent(c.postgres)} µs`,
      );
      return {
        servers: c.servers.map(cores).map(Number),
        postgres: Number(cores(c.postgres)),
        load: Number(cores(c.load)),
        total: Number(cores(total)),
      };
    };
    const cpu = { one: cpuLine('one instance ', one), two: cpuLine('two instances', two), baseline: cpuLine('baseline     ', baseline) };
    const errors = failures(one) + failures(two);
    if (errors > 0) console.log(`WARNING: ${errors} errors or non-2xx answers from the service`);
    console.log(
      JSON.stringify({
        bench: 'ingest',
        engine: 'postgres',
        seconds: SECONDS,
        connections: CONNECTIONS,
        single_req_per_s: r(one.single.reqPerSec),
        single_p99_ms: one.single.p99,
        batch100_events_per_s: r(one.batch100.eventsPerSec),
        batch100_p99_ms: one.batch100.p99,
        two_single_req_per_s: r(two.single.reqPerSec),
        two_single_p99_ms: two.single.p99,
        two_batch100_events_per_s: r(two.batch100.eventsPerSec),
        two_batch100_p99_ms: two.batch100.p99,
        baseline_single_req_per_s: r(baseline.single.reqPerSec),
        baseline_single_p99_ms: baseline.single.p99,
        baseline_batch100_events_per_s: r(baseline.batch100.eventsPerSec),
        baseline_batch100_p99_ms: baseline.batch100.p99,
        single_ratio: ratio(one.single.reqPerSec, baseline.single.reqPerSec),
        batch100_ratio: ratio(one.batch100.eventsPerSec, baseline.batch100.eventsPerSec),
        two_single_ratio: ratio(two.single.reqPerSec, baseline.single.reqPerSec),
        two_batch100_ratio: ratio(two.batch100.eventsPerSec, baseline.batch100.eventsPerSec),
        service_peak_rss_mb: r(Math.max(one.rssMb, two.rssMb)),
        batch100_cpu_cores: cpu,
        errors,
      }),
    );
  } finally {
    await cluster.stop();
    rmSync(keyDir, { recursive: true, force: true });
  }
}

if (cli.engine === 'postgres') await benchPostgres();
else await benchSqlite();
