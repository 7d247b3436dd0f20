// bench:ingest — the service (`receipts serve`, default settings) against a naive baseline,
// both driven by autocannon from this process: single events and batches of 100, 30 connections.
// Prints each figure, the ratios, and a last line of JSON.
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteLedger } from '../src/ledger/index.ts';
import { startServer as start, stopServer as stop } from './lib/servers.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 30;
const dir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));

let seq = 0;
function body(batch: number): string {
  const now = Date.now();
  const one = () => {
    const n = ++seq;
    return `{"request_id":"bench-${n}","namespace":"acme/bench","action":"recall","caller":"user-${n % 1000}","units":${1 + (n % 5)},"ts":${now}}`;
  };
  return batch === 1 ? one() : `{"events":[${Array.from({ length: batch }, one).join(',')}]}`;
}

interface Run { reqPerSec: number; eventsPerSec: number; p50: number; p99: number; errors: number; non2xx: number }

async function load(url: string, key: string, batch: number, label: string): Promise<Run> {
  process.stderr.write(`  ${label}: ${SECONDS} s, ${CONNECTIONS} connections, ${batch} event(s) per request …\n`);
  const result = await autocannon({
    url: `${url}/v1/events`,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [{
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: body(batch) }),
    }],
  });
  const reqPerSec = result.requests.average;
  return { reqPerSec, eventsPerSec: reqPerSec * batch, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

async function measure(label: string, args: string[], key: string) {
  const { proc, url } = await start(args);
  const single = await load(url, key, 1, `${label} single`);
  const batch100 = await load(url, key, 100, `${label} batch100`);
  const rssMb = await stop(proc);
  return { single, batch100, rssMb };
}

try {
  const dbFile = join(dir, 'service.db');
  const ledger = new SqliteLedger(dbFile);
  const key = (await ledger.keys.create('bench', ['acme/*'])).key;
  await ledger.close();

  process.stderr.write('bench:ingest\n');
  const service = await measure('service', ['src/cli/main.ts', 'serve', '--db', dbFile, '--port'], key);
  const baseline = await measure('baseline', ['scripts/baseline-server.ts', join(dir, 'baseline.db')], key);

  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const r = (n: number) => Math.round(n);
  console.log(`single events   service ${r(service.single.reqPerSec)} req/s (p50 ${service.single.p50} ms, p99 ${service.single.p99} ms) | baseline ${r(baseline.single.reqPerSec)} req/s (p99 ${baseline.single.p99} ms) | ratio ${ratio(service.single.reqPerSec, baseline.single.reqPerSec)}`);
  console.log(`batches of 100  service ${r(service.batch100.eventsPerSec)} events/s (p50 ${service.batch100.p50} ms, p99 ${service.batch100.p99} ms) | baseline ${r(baseline.batch100.eventsPerSec)} events/s (p99 ${baseline.batch100.p99} ms) | ratio ${ratio(service.batch100.eventsPerSec, baseline.batch100.eventsPerSec)}`);
  console.log(`peak RSS        service ${r(service.rssMb)} MB | baseline ${r(baseline.rssMb)} MB`);
  const errors = service.single.errors + service.batch100.errors + service.single.non2xx + service.batch100.non2xx;
  if (errors > 0) console.log(`WARNING: ${errors} errors or non-2xx answers from the service`);
  console.log(JSON.stringify({
    bench: 'ingest', seconds: SECONDS, connections: CONNECTIONS,
    single_req_per_s: r(service.single.reqPerSec), single_p99_ms: service.single.p99,
    batch100_events_per_s: r(service.batch100.eventsPerSec), batch100_p99_ms: service.batch100.p99,
    baseline_single_req_per_s: r(baseline.single.reqPerSec), baseline_batch100_events_per_s: r(baseline.batch100.eventsPerSec),
    single_ratio: ratio(service.single.reqPerSec, baseline.single.reqPerSec),
    batch100_ratio: ratio(service.batch100.eventsPerSec, baseline.batch100.eventsPerSec),
    service_peak_rss_mb: r(service.rssMb), errors,
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
