// bench:middleware — a trivial fastify route with and without the metering plugin, in the same
// run: two apps in one server process (the same app, one with `meterRequests`), driven in turn
// by autocannon from this process for several alternating rounds. The metered app records through
// a real usage client into a sink that only counts, so the figure is the middleware and the
// client on the app's event loop, not the network. Prints each round, the ratio
// (with/without; the headline is the median round) and a last line of JSON.
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { createUsageClient, type Sink } from '../src/index.ts';
import { meterRequests } from '../src/middleware/fastify.ts';
import { startServer, stopServer } from './lib/servers.ts';

const SCRIPT = new URL(import.meta.url).pathname;

if (process.argv[2] === '--serve') {
  // Child: both apps in one process (same CPU, same JIT, same heap settings), on two ports:
  // node bench-middleware.ts --serve <port>; the metered one listens on port + 1.
  const port = Number(process.argv[3]);
  let recorded = 0;
  const counting: Sink = { name: 'count', send: async (events) => ((recorded += events.length), { kind: 'done' }) };
  const client = createUsageClient({ sink: counting });
  for (const metered of [false, true]) {
    const app = Fastify({ logger: false });
    if (metered) {
      meterRequests(app, {
        client,
        namespace: 'acme/bench',
        caller: (r) => (r.headers['x-user'] as string | undefined) ?? 'anonymous',
        action: 'hello',
        skip: (r) => r.url === '/healthz' || r.url === '/recorded',
      });
    }
    app.get('/recorded', async () => {
      await client.flush();
      return { recorded };
    });
    app.get('/healthz', async () => 'ok');
    app.get('/hello', async () => ({ hello: 'world' }));
    await app.listen({ port: port + (metered ? 1 : 0), host: '127.0.0.1' });
  }
  process.once('SIGTERM', () => process.exit(0)); // an orderly exit, so --cpu-prof can write its profile
} else {
  const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
  // Many short alternating rounds: drift in the machine's speed falls on both apps, and the
  // median of nine leaves out rounds whose speed halved.
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
  const CONNECTIONS = 10;
  const log = (s: string) => process.stderr.write(`${s}\n`);
  /** CPU seconds (user + system) a process has used: per request, a figure the load of other processes on the machine does not move much. */
  const cpuSeconds = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100 Hz)
  };
  const load = async (url: string, seconds: number, pid: number) => {
    const cpu0 = cpuSeconds(pid);
    const r = await autocannon({ url: `${url}/hello`, connections: CONNECTIONS, duration: seconds, headers: { 'x-user': 'user-1' } });
    return { reqPerSec: r.requests.average, total: r.requests.total, cpu: cpuSeconds(pid) - cpu0, p99: r.latency.p99, bad: r.errors + r.non2xx + r.timeouts };
  };

  log(`bench:middleware — ${ROUNDS} rounds of ${SECONDS} s per app, alternating, ${CONNECTIONS} connections, GET /hello`);
  const plain = await startServer([SCRIPT, '--serve']);
  const metered = { proc: plain.proc, url: plain.url.replace(/:(\d+)$/, (_, p: string) => `:${Number(p) + 1}`) };
  try {
    await load(plain.url, 2, plain.proc.pid!); // warm-up of both (JIT)
    await load(metered.url, 2, metered.proc.pid!);
    const warmupRequests = (await (await fetch(`${metered.url}/recorded`)).json()) as { recorded: number };
    const rows: Array<{ without: number; with: number }> = [];
    let withTotal = 0;
    let withoutTotal = 0;
    const cpu = { with: 0, without: 0 };
    let bad = 0;
    let p99With = 0;
    let p99Without = 0;
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate which goes first, so drift in the machine's speed falls on both.
      const order = i % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
      const row = { without: 0, with: 0 };
      for (const which of order) {
        const r = await load(which === 'with' ? metered.url : plain.url, SECONDS, (which === 'with' ? metered : plain).proc.pid!);
        row[which] = r.reqPerSec;
        bad += r.bad;
        cpu[which] += r.cpu;
        if (which === 'with') {
          withTotal += r.total;
          p99With = Math.max(p99With, r.p99);
        } else {
          withoutTotal += r.total;
          p99Without = Math.max(p99Without, r.p99);
        }
      }
      rows.push(row);
      log(`  round ${i + 1}: without ${Math.round(row.without)} req/s | with ${Math.round(row.with)} req/s | ratio ${(row.with / row.without).toFixed(3)}`);
    }
    const { recorded } = (await (await fetch(`${metered.url}/recorded`)).json()) as { recorded: number };
    const sum = (k: 'with' | 'without') => rows.reduce((s, r) => s + r[k], 0) / rows.length;
    const ratio = sum('with') / sum('without');
    const ratios = rows.map((r) => r.with / r.without).sort((a, b) => a - b);
    const median = ratios[Math.floor(ratios.length / 2)]!;
    const events = recorded - warmupRequests.recorded;
    const cpuUsWith = (cpu.with / withTotal) * 1e6;
    const cpuUsWithout = (cpu.without / withoutTotal) * 1e6;
    // The headline is the median round: this machine's speed can halve for a whole round (other
    // tenants), which moves a ratio of averages far more than the middleware does.
    console.log(`without ${Math.round(sum('without'))} req/s (p99 ≤ ${p99Without} ms) | with ${Math.round(sum('with'))} req/s (p99 ≤ ${p99With} ms) | with/without: median round ${median.toFixed(3)} (of averages ${ratio.toFixed(3)}) | overhead ${((1 - median) * 100).toFixed(1)} % (target < 5 %: ${median > 0.95 ? 'met' : 'missed'})`);
    console.log(`server CPU per request: without ${cpuUsWithout.toFixed(1)} µs | with ${cpuUsWith.toFixed(1)} µs | with/without ${(cpuUsWithout / cpuUsWith).toFixed(3)} as a throughput ratio (10 ms ticks)`);
    console.log(`events recorded while measured: ${events} for ${withTotal} metered requests${bad ? ` | WARNING: ${bad} errors or non-2xx answers` : ''}`);
    console.log(JSON.stringify({
      bench: 'middleware', seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS,
      without_req_per_s: Math.round(sum('without')), with_req_per_s: Math.round(sum('with')),
      ratio: Math.round(ratio * 1000) / 1000, median_round_ratio: Math.round(median * 1000) / 1000,
      round_ratios: rows.map((r) => Math.round((r.with / r.without) * 1000) / 1000),
      overhead_pct: Math.round((1 - median) * 1000) / 10, target_met: median > 0.95,
      cpu_us_per_req_without: Math.round(cpuUsWithout * 10) / 10, cpu_us_per_req_with: Math.round(cpuUsWith * 10) / 10,
      cpu_ratio: Math.round((cpuUsWithout / cpuUsWith) * 1000) / 1000,
      events_recorded: events, metered_requests: withTotal, errors: bad,
    }));
  } finally {
    await stopServer(plain.proc);
  }
}
