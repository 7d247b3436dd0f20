// bench:middleware — what recording each request costs, against what a team would otherwise use
// to record each request: one trivial fastify route (GET /hello) served by several apps in one
// server process, measured in the same run, in turn, by autocannon from this process, for many
// short rounds:
//   plain    the route alone
//   hook     plus an onRequest hook that does nothing: the floor of any per-request plugin
//   metered  plus `meterRequests` registered first (`registeredFirst: true`, as examples/fastify.ts),
//            recording through a real usage client into a sink that counts
//   metered-default  the same without `registeredFirst`: it also adds an onResponse hook, for
//            answers given by onRequest hooks registered before it
//   logged   the plain app with fastify's own request logging (pino, to a file)
// The headline is the server's CPU time per request on its event-loop thread (ns, from Linux's
// schedstat): a single-threaded server's throughput is one over that time. Each app's cost is
// its CPU per request minus the plain app's in the same round; the median round is the figure
// (this kind of machine's speed drifts between minutes). Targets: `meterRequests` costs less
// than fastify's request logging, and at most 1.5 µs per request.
//
//   npm run bench:middleware        BENCH_ROUNDS=31 BENCH_SECONDS=1 BENCH_APPS=plain,hook,metered,metered-default,logged
import autocannon from 'autocannon';
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUsageClient, type Sink } from '../src/index.ts';
import { meterRequests } from '../src/middleware/fastify.ts';
import { startServer, stopServer } from './lib/servers.ts';

const SCRIPT = new URL(import.meta.url).pathname;
const KINDS = ['plain', 'hook', 'metered', 'metered-default', 'logged'] as const;
type Kind = (typeof KINDS)[number];
const TARGET_US = 1.5;

function appsOf(): Kind[] {
  const apps = (process.env.BENCH_APPS ?? KINDS.join(',')).split(',') as Kind[];
  for (const a of apps) if (!KINDS.includes(a)) throw new Error(`BENCH_APPS: unknown app ${JSON.stringify(a)} (${KINDS.join(', ')})`);
  if (apps[0] !== 'plain') throw new Error('BENCH_APPS must start with plain');
  return apps;
}

if (process.argv[2] === '--serve') {
  // Child: every app in one process (same CPU, same JIT, same heap settings), on consecutive
  // ports: node bench-middleware.ts --serve <port> (app i on <port> + i).
  const port = Number(process.argv[3]);
  const apps = appsOf();
  let recorded = 0;
  const counting: Sink = { name: 'count', send: async (events) => ((recorded += events.length), { kind: 'done' }) };
  const client = createUsageClient({ sink: counting });
  const logDir = mkdtempSync(join(tmpdir(), 'bench-middleware-'));
  const logFile = join(logDir, 'requests.log');
  const built = apps.map((kind): FastifyInstance => {
    // fastify's request logging: an "incoming request" and a "request completed" line per request.
    const app = kind === 'logged' ? Fastify({ logger: { level: 'info', file: logFile } }) : Fastify({ logger: false });
    if (kind === 'metered' || kind === 'metered-default') {
      meterRequests(app, {
        client,
        namespace: 'acme/bench',
        caller: (r) => (r.headers['x-user'] as string | undefined) ?? 'anonymous',
        action: 'hello',
        skip: (r) => r.url === '/healthz' || r.url === '/recorded',
        registeredFirst: kind === 'metered',
      });
    } else if (kind === 'hook') app.addHook('onRequest', (_request, _reply, next) => next());
    app.get('/recorded', { logLevel: 'silent' }, async () => {
      await client.flush();
      let logBytes = 0;
      try {
        logBytes = statSync(logFile).size;
      } catch {}
      return { recorded, logBytes };
    });
    app.get('/healthz', { logLevel: 'silent' }, async () => 'ok');
    app.get('/hello', async () => ({ hello: 'world' }));
    return app;
  });
  // On consecutive ports where free (scripts/cost-middleware.sh counts on them), else any; the
  // first app last: the parent waits for it, and then every app answers. GET /ports on the first
  // app says where each is.
  const ports: number[] = new Array(built.length).fill(0);
  built[0]!.get('/ports', { logLevel: 'silent' }, async () => ports);
  for (let i = built.length - 1; i >= 0; i--) {
    const host = '127.0.0.1';
    try {
      await built[i]!.listen({ port: port + i, host });
    } catch (err) {
      if (i === 0 || (err as { code?: string }).code !== 'EADDRINUSE') throw err;
      await built[i]!.listen({ port: 0, host });
    }
    ports[i] = (built[i]!.server.address() as { port: number }).port;
  }
  process.once('SIGTERM', () => {
    rmSync(logDir, { recursive: true, force: true });
    process.exit(0); // an orderly exit, so --cpu-prof can write its profile
  });
} else {
  const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31);
  const CONNECTIONS = 10;
  const apps = appsOf();
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
    return { reqPerSec: r.requests.average, total: r.requests.total, cpuNs: cpuNs(pid) - cpu0, bad: r.errors + r.non2xx + r.timeouts };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;

  log(
    `bench:middleware — apps ${apps.join(', ')}: ${ROUNDS} rounds of ${SECONDS} s each, order rotating, ${CONNECTIONS} connections, GET /hello; server CPU time per request (event-loop thread)`,
  );
  const server = await startServer([SCRIPT, '--serve']);
  const pid = server.proc.pid!;
  const ports = (await (await fetch(`${server.url}/ports`)).json()) as number[];
  const urlOf = (i: number) => `http://127.0.0.1:${ports[i]}`;
  const metered = apps.indexOf('metered');
  try {
    for (let i = 0; i < apps.length; i++) await load(urlOf(i), 2, pid); // warm-up of each (JIT)
    // One client and counter for both metered apps; asked through either.
    const counter = metered >= 0 ? metered : apps.indexOf('metered-default');
    const before = counter >= 0 ? ((await (await fetch(`${urlOf(counter)}/recorded`)).json()) as { recorded: number }).recorded : 0;
    const rows: Array<Record<string, { us: number; rps: number }>> = [];
    let meteredRequests = 0;
    let bad = 0;
    const meteredDefault = apps.indexOf('metered-default');
    for (let round = 0; round < ROUNDS; round++) {
      const row: Record<string, { us: number; rps: number }> = {};
      // Rotate which app goes first, so drift in the machine's speed falls on all.
      for (let k = 0; k < apps.length; k++) {
        const i = (round + k) % apps.length;
        const r = await load(urlOf(i), SECONDS, pid);
        row[apps[i]!] = { us: r.cpuNs / 1000 / r.total, rps: r.reqPerSec };
        bad += r.bad;
        if (i === metered || i === meteredDefault) meteredRequests += r.total;
      }
      rows.push(row);
      log(`  round ${String(round + 1).padStart(2)}: ${apps.map((a) => `${a} ${row[a]!.us.toFixed(2)} µs`).join(' | ')}`);
    }
    const us = Object.fromEntries(apps.map((a) => [a, median(rows.map((r) => r[a]!.us))]));
    // Each app's added cost, paired with the plain app of the same round.
    const added = Object.fromEntries(apps.filter((a) => a !== 'plain').map((a) => [a, median(rows.map((r) => r[a]!.us - r.plain!.us))]));
    const rps = Object.fromEntries(apps.map((a) => [a, median(rows.map((r) => r[a]!.rps))]));
    console.log(`server CPU per request (median round): ${apps.map((a) => `${a} ${us[a]!.toFixed(2)} µs`).join(' | ')}`);
    console.log(
      `added to the plain app (median of paired rounds): ${Object.entries(added)
        .map(([a, v]) => `${a} ${v.toFixed(2)} µs`)
        .join(' | ')}`,
    );
    let verdict: Record<string, unknown> = {};
    if (added.metered !== undefined && added.logged !== undefined) {
      const vsLogging = added.metered / added.logged;
      const capacity = us.plain! / us.metered!;
      const cheaper = added.metered < added.logged;
      const withinUs = added.metered <= TARGET_US;
      console.log(
        `meterRequests / fastify request logging (added CPU): ${vsLogging.toFixed(3)} (target < 1: ${cheaper ? 'met' : 'missed'}) | meterRequests adds ${added.metered.toFixed(2)} µs (target ≤ ${TARGET_US} µs: ${withinUs ? 'met' : 'missed'}${added.hook !== undefined ? `; the no-op hook alone adds ${added.hook.toFixed(2)} µs` : ''}) | capacity metered/plain ${capacity.toFixed(3)}, logged/plain ${(us.plain! / us.logged!).toFixed(3)}`,
      );
      verdict = {
        metered_vs_logging: r3(vsLogging),
        cheaper_than_logging: cheaper,
        target_us: TARGET_US,
        within_target_us: withinUs,
        capacity_metered: r3(capacity),
        capacity_logged: r3(us.plain! / us.logged!),
      };
      if (added['metered-default'] !== undefined) {
        const d = added['metered-default'];
        console.log(
          `meterRequests without registeredFirst (+ onResponse hook) adds ${d.toFixed(2)} µs | / fastify request logging ${(d / added.logged).toFixed(3)}`,
        );
        verdict.metered_default_vs_logging = r3(d / added.logged);
      }
    }
    console.log(
      `requests per second (paced partly by autocannon on the same machine): ${apps.map((a) => `${a} ${Math.round(rps[a]!)}`).join(' | ')}`,
    );
    let events = 0;
    if (counter >= 0) {
      events = ((await (await fetch(`${urlOf(counter)}/recorded`)).json()) as { recorded: number }).recorded - before;
      console.log(
        `events recorded while measured: ${events} for ${meteredRequests} metered requests${bad ? ` | WARNING: ${bad} errors or non-2xx answers` : ''}`,
      );
    }
    console.log(
      JSON.stringify({
        bench: 'middleware',
        date: new Date().toISOString(),
        seconds: SECONDS,
        rounds: ROUNDS,
        connections: CONNECTIONS,
        apps,
        cpu_us_per_req: Object.fromEntries(Object.entries(us).map(([a, v]) => [a, r3(v)])),
        added_us_per_req: Object.fromEntries(Object.entries(added).map(([a, v]) => [a, r3(v)])),
        ...verdict,
        events_recorded: events,
        metered_requests: meteredRequests,
        errors: bad,
      }),
    );
  } finally {
    await stopServer(server.proc);
  }
}
