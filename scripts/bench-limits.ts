// bench:limits (issue 25, "Limits") — POST /v1/limits/check latency at a target rate, beside GET
// /healthz on the same server. N events (default 1,000,000; the target is 10,000,000) are
// written into one namespace (20 actions, spread over the 30 days before now) with SQL in bulk
// but real leaf hashes, sealed through the real sealer (rollups written in the seal), and TAIL
// more are left unsealed (the check reads them too). Three limits are defined: a month of one
// action's units in Europe/Berlin and a UTC day of two actions' events (both measured by the
// timed check of that action), and the all-time units of another action (timed apart, at
// TOTAL_RATE: it reads every rollup bucket the action ever had). Before timing, each check's
// `used` is compared with the raw events. Then, open loop (requests sent on a fixed schedule,
// whether or not earlier ones came back, so a slow answer shows in the latency rather than
// lowering the rate): /healthz alone at RATE, checks alone at RATE, both at once (RATE each),
// and the all-time check, each for SECONDS. The client runs in this process over keep-alive
// connections; its own cost is in both figures, so the ratio is what to read.
//
// node scripts/bench-limits.ts [--events N] [--tail N] [--rate R] [--total-rate R] [--seconds S] [--connections C]
// Progress on stderr; the table on stdout, then one line of JSON.
import { hash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { leafPreimage, type LeafFields } from '../src/event/leaf.ts';
import { SqliteLedger } from '../src/ledger/index.ts';
import { periodAt } from '../src/limits/period.ts';
import { sealAll } from '../src/seal/sealer.ts';
import { startServer, stopServer } from './lib/servers.ts';

const { values: cli } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    tail: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '5000' },
    'total-rate': { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
  },
});
const positive = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not "${v}"`);
  return n;
};
const N = positive('events', cli.events);
const TAIL = positive('tail', cli.tail);
const RATE = positive('rate', cli.rate);
const TOTAL_RATE = positive('total-rate', cli['total-rate']);
const SECONDS = positive('seconds', cli.seconds);
const CONNECTIONS = positive('connections', cli.connections);

const NS = 'acme/bench';
const ACTIONS = Array.from({ length: 20 }, (_, i) => `action-${String(i).padStart(2, '0')}`);
const DAY = 86_400_000;
const NOW = Date.now();
const T0 = NOW - 30 * DAY;

const log = (s: string) => process.stderr.write(`${s}\n`);
const fmt = (n: number) => n.toLocaleString('en');
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function eventOf(i: number): LeafFields {
  const h = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  const h2 = Math.imul(h ^ (h >>> 15), 0x85ebca6b) >>> 0;
  return {
    namespace: NS,
    request_id: `r${i}`,
    caller: `caller-${h % 10_000}`,
    action: ACTIONS[(h2 >>> 7) % ACTIONS.length]!,
    units: 1 + (h2 % 97),
    artifact_digest: '',
    ts_ms: T0 + (h2 % (30 * DAY - 60_000)),
  };
}

interface Latency {
  p50: number;
  p99: number;
  sent: number;
  /** Answers per second actually received. */
  rate: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** Sends `make()` at `rate` a second for SECONDS on its own schedule; the latency of each answer. */
async function openLoop(
  url: string,
  agent: Agent,
  rate: number,
  make: () => { method: string; path: string; headers: Record<string, string>; body?: string },
): Promise<Latency> {
  const ms: number[] = [];
  let errors = 0;
  let sent = 0;
  const total = rate * SECONDS;
  const start = performance.now();
  const u = new URL(url);
  const pending: Promise<void>[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const r = make();
      const t = performance.now();
      const req = request({ host: u.hostname, port: u.port, method: r.method, path: r.path, headers: r.headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ms.push(performance.now() - t);
          else errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(r.body);
    });
  // Ticks of 1 ms: every request whose time has come is sent (a late tick sends its backlog).
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due) {
      pending.push(one());
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  ms.sort((a, b) => a - b);
  return { p50: round(percentile(ms, 0.5)), p99: round(percentile(ms, 0.99)), sent, rate: Math.round(ms.length / elapsed), errors };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-limits-'));
  const file = join(dir, 'limits.db');
  try {
    const ledger = new SqliteLedger(file, { synchronous: 'normal' });
    const insert =
      ledger.db.prepare(`INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
      VALUES (?, ?, 'bench', 'k', ?, ?, ?, ?, 1, ?, ?)`);
    const chunk = ledger.db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const f = eventOf(i);
        insert.run(f.namespace, f.request_id, f.caller, f.action, f.units, f.ts_ms, NOW, hash('sha256', leafPreimage(f), 'buffer'));
      }
    });
    const t0 = performance.now();
    for (let i = 0; i < N; i += 100_000) {
      chunk(i, Math.min(N, i + 100_000));
      if ((i / 100_000) % 10 === 9 || i + 100_000 >= N) log(`load: ${fmt(Math.min(N, i + 100_000))} events written`);
    }
    const loadS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const epochs = await sealAll(ledger, { maxEvents: 1_000_000 });
    const sealS = (performance.now() - t1) / 1000;
    chunk(N, N + TAIL); // unsealed: the check reads them through the tail
    log(`load ${round(loadS, 1)} s, seal ${round(sealS, 1)} s (${epochs.length} epochs), ${fmt(TAIL)} more left unsealed`);

    const key = await ledger.keys.create('bench', ['acme/*'], undefined, ['read', 'admin']);
    const a0 = ACTIONS[0]!;
    const aT = ACTIONS[19]!;
    const limits = [
      { id: 'month-a0', body: { namespace: NS, actions: [a0], measure: 'units', period: 'month', tz: 'Europe/Berlin', hard: 1e12 } },
      { id: 'day-events', body: { namespace: NS, actions: [a0, ACTIONS[1]!], measure: 'events', period: 'day', hard: 1e12 } },
      { id: 'total-units', body: { namespace: NS, actions: [aT], measure: 'units', period: 'total', hard: 1e15 } },
    ];
    const raw = (sql: string, ...p: unknown[]) =>
      Number(
        ledger.db
          .prepare(sql)
          .pluck()
          .get(...p),
      );
    const rawTotal = raw('SELECT sum(units) FROM events WHERE namespace = ? AND action = ?', NS, aT);
    const dayStart = Math.floor(NOW / DAY) * DAY;
    const rawDay = raw('SELECT count(*) FROM events WHERE namespace = ? AND action IN (?, ?) AND ts >= ?', NS, a0, ACTIONS[1], dayStart);
    const rawMonth = raw(
      'SELECT sum(units) FROM events WHERE namespace = ? AND action = ? AND ts >= ?',
      NS,
      a0,
      periodAt('month', 'Europe/Berlin', NOW).from,
    );
    await ledger.close();

    const { proc, url } = await startServer([
      'src/cli/main.ts',
      'serve',
      '--db',
      file,
      '--log-level',
      'warn',
      '--epoch-ms',
      '3600000',
      '--port',
    ]);
    let rssMb = Number.NaN;
    // Interrupted: the server goes too.
    for (const sig of ['SIGINT', 'SIGTERM'] as const)
      process.once(sig, () => {
        proc.kill('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
        process.exit(130);
      });
    try {
      const auth = { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' };
      for (const l of limits) {
        const res = await fetch(`${url}/v1/limits/${l.id}`, { method: 'PUT', headers: auth, body: JSON.stringify(l.body) });
        if (res.status !== 201) throw new Error(`PUT ${l.id}: ${res.status} ${await res.text()}`);
      }
      const body = JSON.stringify({ namespace: NS, action: a0, units: 1 });
      const totalBody = JSON.stringify({ namespace: NS, action: aT, units: 1 });
      // The floor of a check: route, auth, body, the ledger position and the (empty) limits of a
      // namespace without limits; no usage is read.
      const floorBody = JSON.stringify({ namespace: 'acme/no-limits', action: a0, units: 1 });
      const ask = async (b: string) =>
        (await (await fetch(`${url}/v1/limits/check`, { method: 'POST', headers: auth, body: b })).json()) as {
          used: number;
          limit_id: string;
          as_of: number;
        };
      // Exact: each limit's used is what the raw events give (the month starts where Berlin's does).
      const day = (await ask(JSON.stringify({ checks: [{ namespace: NS, action: ACTIONS[1], units: 1 }] }))) as unknown as {
        results: Array<{ used: number }>;
      };
      const month = await ask(body);
      const total = await ask(totalBody);
      const berlin = rawMonth;
      if (day.results[0]!.used !== rawDay || month.used !== berlin || total.used !== rawTotal)
        throw new Error(
          `a check differs from the raw events: day ${day.results[0]!.used} vs ${rawDay}, month ${month.used} vs ${berlin}, total ${total.used} vs ${rawTotal}`,
        );
      log(
        `checks answer as of ${fmt(month.as_of)}, each used equal to the raw events' (day ${fmt(rawDay)}, month ${fmt(month.used)}, total ${fmt(rawTotal)})`,
      );

      const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
      const health = () => ({ method: 'GET', path: '/healthz', headers: {} });
      const totalCheck = () => ({
        method: 'POST',
        path: '/v1/limits/check',
        headers: { ...auth, 'content-length': String(Buffer.byteLength(totalBody)) },
        body: totalBody,
      });
      const floorCheck = () => ({
        method: 'POST',
        path: '/v1/limits/check',
        headers: { ...auth, 'content-length': String(Buffer.byteLength(floorBody)) },
        body: floorBody,
      });
      const check = () => ({
        method: 'POST',
        path: '/v1/limits/check',
        headers: { ...auth, 'content-length': String(Buffer.byteLength(body)) },
        body,
      });
      // Warm up (JIT, statement caches, connections).
      await openLoop(url, agent, Math.min(RATE, 500), check);
      log(`healthz alone at ${fmt(RATE)}/s for ${SECONDS} s …`);
      const healthAlone = await openLoop(url, agent, RATE, health);
      log(`checks of a namespace without limits (the floor) at ${fmt(RATE)}/s …`);
      const floorAlone = await openLoop(url, agent, RATE, floorCheck);
      log(`checks alone at ${fmt(RATE)}/s …`);
      const checkAlone = await openLoop(url, agent, RATE, check);
      log('both at once …');
      const [checkBeside, healthBeside] = await Promise.all([openLoop(url, agent, RATE, check), openLoop(url, agent, RATE, health)]);
      log(`all-time checks at ${fmt(TOTAL_RATE)}/s …`);
      const totalAlone = await openLoop(url, agent, TOTAL_RATE, totalCheck);
      agent.destroy();
      rssMb = await stopServer(proc);
      const rows: Array<[string, Latency]> = [
        ['GET /healthz alone', healthAlone],
        ['POST /v1/limits/check of a namespace without limits (reads no usage)', floorAlone],
        ['POST /v1/limits/check alone', checkAlone],
        ['POST /v1/limits/check beside healthz', checkBeside],
        ['GET /healthz beside checks', healthBeside],
        [`POST /v1/limits/check of an all-time limit, at ${fmt(TOTAL_RATE)}/s`, totalAlone],
      ];
      process.stdout.write(
        `\nbench:limits — ${fmt(N)} sealed + ${fmt(TAIL)} unsealed events, 2 limits per check (a month, a day), target ${fmt(RATE)}/s for ${SECONDS} s, load average ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}\n\n| what | p50 ms | p99 ms | answered/s | errors |\n| --- | --- | --- | --- | --- |\n`,
      );
      for (const [name, l] of rows) process.stdout.write(`| ${name} | ${l.p50} | ${l.p99} | ${fmt(l.rate)} | ${l.errors} |\n`);
      process.stdout.write(
        `\ncheck / healthz (alone): p50 ${round(checkAlone.p50 / healthAlone.p50)}×, p99 ${round(checkAlone.p99 / healthAlone.p99)}×; check / floor: p50 ${round(checkAlone.p50 / floorAlone.p50)}×, p99 ${round(checkAlone.p99 / floorAlone.p99)}×; server peak RSS ${Math.round(rssMb)} MB\n`,
      );
      process.stdout.write(
        `${JSON.stringify({ events: N, tail: TAIL, rate: RATE, seconds: SECONDS, load_s: round(loadS, 1), seal_s: round(sealS, 1), healthAlone, floorAlone, checkAlone, checkBeside, healthBeside, totalAlone, rss_mb: Math.round(rssMb) })}\n`,
      );
    } finally {
      if (proc.exitCode === null) await stopServer(proc);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
