// bench:middleware — a trivial fastify route with and without the metering plugin, in the same
// run: two apps in one server process (the same app, one with `meterRequests`), driven in turn
// by autocannon from this process for many short alternating rounds. The metered app records
// through a real usage client into a sink that only counts, so the figure is the middleware and
// the client on the app's event loop, not the network.
//
// The headline is the server's CPU time per request (its event-loop thread, in ns from Linux's
// schedstat): a single-threaded server's throughput is 1 / that time. Requests per second are
// printed too, but on a small machine autocannon shares the cores and often sets the pace itself,
// which hides the server's cost. Each round pairs the two apps within seconds; the median round
// is the figure (the machine's speed drifts between minutes).
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { createUsageClient, type Sink } from '../src/index.ts';
import { meterRequests } from '../src/middleware/fastify.ts';
import { Exchange, watchResponse } from '../src/middleware/node-http.ts';
import { startServer, stopServer } from './lib/servers.ts';

const SCRIPT = new URL(import.meta.url).pathname;

if (process.argv[2] === '--serve') {
  // Child: the apps in one process (same CPU, same JIT, same heap settings), on consecutive ports:
  // node bench-middleware.ts --serve <port>. By default the plain app on <port> and the metered
  // one on <port> + 1. BENCH_APPS=plain,hook,watch,metered (scripts/cost-middleware.sh) adds the
  // floor of any plugin like this one: `hook`, an onRequest hook that does nothing; `watch`, the
  // plugin's own per-request mechanism (its object, watched until the response is over) with no
  // event built.
  const port = Number(process.argv[3]);
  const apps = (process.env.BENCH_APPS ?? 'plain,metered').split(',');
  let recorded = 0;
  const counting: Sink = { name: 'count', send: async (events) => ((recorded += events.length), { kind: 'done' }) };
  const client = createUsageClient({ sink: counting });
  const built = apps.map((kind) => {
    const app = Fastify({ logger: false });
    if (kind === 'metered') {
      meterRequests(app, {
        client,
        namespace: 'acme/bench',
        caller: (r) => (r.headers['x-user'] as string | undefined) ?? 'anonymous',
        action: 'hello',
        skip: (r) => r.url === '/healthz' || r.url === '/recorded',
      });
    } else if (kind === 'hook') {
      app.addHook('onRequest', (_request, _reply, next) => next());
    } else if (kind === 'watch') {
      const nothing = () => {};
      app.addHook('onRequest', (request, reply, next) => {
        watchResponse(new Exchange(request, reply, reply.raw, nothing), request.raw.socket);
        next();
      });
    } else if (kind !== 'plain') throw new Error(`BENCH_APPS: unknown app ${JSON.stringify(kind)} (plain, hook, watch, metered)`);
    app.get('/recorded', async () => {
      await client.flush();
      return { recorded };
    });
    app.get('/healthz', async () => 'ok');
    app.get('/hello', async () => ({ hello: 'world' }));
    return app;
  });
  // The first port last: the parent waits for it, and then every app answers.
  for (let i = built.length - 1; i >= 0; i--) await built[i]!.listen({ port: port + i, host: '127.0.0.1' });
  process.once('SIGTERM', () => process.exit(0)); // an orderly exit, so --cpu-prof can write its profile
} else {
  const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31);
  const CONNECTIONS = 10;
  const log = (s: string) => process.stderr.write(`${s}\n`);
  /**
   * ns the server's event-loop thread has run: Linux's schedstat (ns); else user + system time
   * of the whole process from /proc/<pid>/stat (10 ms ticks, and V8's helper threads included).
   */
  const cpuNs = (pid: number): number => {
    try {
      return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) * 1e7; // utime, stime in clock ticks (100 Hz)
    }
  };
  const load = async (url: string, seconds: number, pid: number) => {
    const cpu0 = cpuNs(pid);
    const r = await autocannon({ url: `${url}/hello`, connections: CONNECTIONS, duration: seconds, headers: { 'x-user': 'user-1' } });
    return { reqPerSec: r.requests.average, total: r.requests.total, cpuNs: cpuNs(pid) - cpu0, p99: r.latency.p99, bad: r.errors + r.non2xx + r.timeouts };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  log(`bench:middleware — ${ROUNDS} rounds of ${SECONDS} s per app, alternating, ${CONNECTIONS} connections, GET /hello; server CPU time per request (event-loop thread)`);
  const plain = await startServer([SCRIPT, '--serve']);
  const metered = { url: plain.url.replace(/:(\d+)$/, (_, p: string) => `:${Number(p) + 1}`) }; // the same process
  try {
    await load(plain.url, 2, plain.proc.pid!); // warm-up of both (JIT)
    await load(metered.url, 2, plain.proc.pid!);
    const warmupRequests = (await (await fetch(`${metered.url}/recorded`)).json()) as { recorded: number };
    type Side = { reqPerSec: number; usPerReq: number };
    const rows: Array<{ without: Side; with: Side }> = [];
    let withTotal = 0;
    let bad = 0;
    let p99With = 0;
    let p99Without = 0;
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate which goes first, so drift in the machine's speed falls on both.
      const order = i % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
      const row = { without: { reqPerSec: 0, usPerReq: 0 }, with: { reqPerSec: 0, usPerReq: 0 } };
      for (const which of order) {
        const r = await load(which === 'with' ? metered.url : plain.url, SECONDS, plain.proc.pid!);
        row[which] = { reqPerSec: r.reqPerSec, usPerReq: r.cpuNs / 1000 / r.total };
        bad += r.bad;
        if (which === 'with') {
          withTotal += r.total;
          p99With = Math.max(p99With, r.p99);
        } else p99Without = Math.max(p99Without, r.p99);
      }
      rows.push(row);
      log(`  round ${String(i + 1).padStart(2)}: CPU per request without ${row.without.usPerReq.toFixed(2)} µs | with ${row.with.usPerReq.toFixed(2)} µs | ratio ${(row.without.usPerReq / row.with.usPerReq).toFixed(3)}   (req/s ${Math.round(row.without.reqPerSec)} | ${Math.round(row.with.reqPerSec)})`);
    }
    const { recorded } = (await (await fetch(`${metered.url}/recorded`)).json()) as { recorded: number };
    const events = recorded - warmupRequests.recorded;
    // Capacity with/without: the plain app's CPU time per request over the metered app's.
    const cpuRatios = rows.map((r) => r.without.usPerReq / r.with.usPerReq);
    const rpsRatios = rows.map((r) => r.with.reqPerSec / r.without.reqPerSec);
    const cpuRatio = median(cpuRatios);
    const rpsRatio = median(rpsRatios);
    const usWithout = median(rows.map((r) => r.without.usPerReq));
    const usWith = median(rows.map((r) => r.with.usPerReq));
    const met = cpuRatio > 0.95;
    console.log(`server CPU per request (event-loop thread, median round): without ${usWithout.toFixed(2)} µs | with ${usWith.toFixed(2)} µs | capacity with/without ${cpuRatio.toFixed(3)} | overhead ${((1 - cpuRatio) * 100).toFixed(1)} % (target < 5 %: ${met ? 'met' : 'missed'})`);
    console.log(`requests per second (paced partly by autocannon on the same machine): without ${Math.round(median(rows.map((r) => r.without.reqPerSec)))} (p99 ≤ ${p99Without} ms) | with ${Math.round(median(rows.map((r) => r.with.reqPerSec)))} (p99 ≤ ${p99With} ms) | with/without median round ${rpsRatio.toFixed(3)}`);
    console.log(`events recorded while measured: ${events} for ${withTotal} metered requests${bad ? ` | WARNING: ${bad} errors or non-2xx answers` : ''}`);
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    console.log(JSON.stringify({
      bench: 'middleware', seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS,
      cpu_us_per_req_without: r3(usWithout), cpu_us_per_req_with: r3(usWith),
      capacity_ratio: r3(cpuRatio), round_capacity_ratios: cpuRatios.map(r3),
      overhead_pct: Math.round((1 - cpuRatio) * 1000) / 10, target_met: met,
      req_per_s_ratio: r3(rpsRatio), round_req_per_s_ratios: rpsRatios.map(r3),
      events_recorded: events, metered_requests: withTotal, errors: bad,
    }));
  } finally {
    await stopServer(plain.proc);
  }
}
