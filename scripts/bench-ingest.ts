// bench:ingest — the service (`receipts serve`, default settings) against a naive baseline,
// both driven by autocannon from this process: single events and batches of 100, 30 connections.
// Prints each figure, the ratios, and a last line of JSON.
//
// --engine sqlite (default): one server on a temporary SQLite file.
// --engine postgres: a throw-away PostgreSQL cluster (as the tests start one); one instance, then
// two instances on the same database with the 30 connections split across them; the baseline
// does one multi-row INSERT per request into the same (migrated) schema.
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openLedger, SqliteLedger } from '../src/ledger/index.ts';
import { freshDatabase, startPostgres } from '../test/support/postgres.ts';
import { startServer as start, stopServer as stop } from './lib/servers.ts';

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

interface Run {
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
async function load(urls: string[], key: string, batch: number, label: string): Promise<Run> {
  process.stderr.write(`  ${label}: ${SECONDS} s, ${CONNECTIONS} connections, ${batch} event(s) per request …\n`);
  const runs = await Promise.all(
    urls.map((url, i) => cannon(url, key, batch, Math.floor(CONNECTIONS / urls.length) + (i < CONNECTIONS % urls.length ? 1 : 0))),
  );
  const sum = (f: (r: Run) => number) => runs.reduce((s, r) => s + f(r), 0);
  const max = (f: (r: Run) => number) => Math.max(...runs.map(f));
  return {
    reqPerSec: sum((r) => r.reqPerSec),
    eventsPerSec: sum((r) => r.eventsPerSec),
    p50: max((r) => r.p50),
    p99: max((r) => r.p99),
    errors: sum((r) => r.errors),
    non2xx: sum((r) => r.non2xx),
  };
}

/** Starts `instances` servers with the same arguments (each on its own port), loads them, stops them. */
async function measure(label: string, args: string[], key: string, instances = 1) {
  const servers = [];
  try {
    for (let i = 0; i < instances; i++) servers.push(await start(args));
    const urls = servers.map((s) => s.url);
    const single = await load(urls, key, 1, `${label} single`);
    const batch100 = await load(urls, key, 100, `${label} batch100`);
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
    const serve = (db: string) => ['src/cli/main.ts', 'serve', '--db', db, '--port'];
    const one = await measure('one instance', serve(oneDb), keys[0]!);
    const two = await measure('two instances', serve(twoDb), keys[1]!, 2);
    const baseline = await measure('baseline', ['scripts/baseline-server.ts', baselineDb], keys[2]!);

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
        errors,
      }),
    );
  } finally {
    await cluster.stop();
  }
}

if (cli.engine === 'postgres') await benchPostgres();
else await benchSqlite();
