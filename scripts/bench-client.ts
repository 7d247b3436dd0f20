// bench:client — the cost of record() on the caller's path, beside an empty function call timed
// the same way in the same run; then end-to-end events/s through the client to a local
// `receipts serve`, beside hand-written batched fetch calls to the same server. Last line: JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUsageClient } from '../src/index.ts';
import { SqliteLedger } from '../src/ledger/index.ts';
import { startServer, stopServer } from './lib/servers.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);
const E2E_EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'bench-client-'));
const log = (s: string) => process.stderr.write(`${s}\n`);

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Times each call of fn separately, in chunks that yield to the event loop (so sends can run). */
async function timeCalls(fn: (i: number) => unknown, calls: number): Promise<{ median: number; p99: number }> {
  const ns = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    ns[i] = Number(process.hrtime.bigint() - t0);
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  ns.sort();
  return { median: percentile(ns, 0.5), p99: percentile(ns, 0.99) };
}

try {
  const file = join(dir, 'client.db');
  const ledger = new SqliteLedger(file);
  const key = (await ledger.keys.create('bench', ['acme/*'])).key;
  await ledger.close();
  const { proc, url } = await startServer(['src/cli/main.ts', 'serve', '--db', file, '--log-level', 'warn', '--port']);

  const event = (i: number) => ({ namespace: 'acme/bench', action: 'recall', caller: `user-${i % 1000}`, units: 1 + (i % 5) });
  let sink = 0;
  const noop = (e: unknown) => {
    if (e === null) sink++;
  };

  log(`bench:client — timing ${CALLS.toLocaleString('en')} record() calls and as many empty calls …`);
  const client = createUsageClient({ url, apiKey: key, maxQueue: CALLS + 1, batchSize: 1000 });
  await timeCalls((i) => noop(event(i)), 20_000); // warm-up of both paths
  await timeCalls((i) => client.record(event(i)), 20_000);
  const empty = await timeCalls((i) => noop(event(i)), CALLS);
  const record = await timeCalls((i) => client.record(event(i)), CALLS);
  await client.close();

  log(`end to end: ${E2E_EVENTS.toLocaleString('en')} events through the client, then by hand …`);
  const e2eClient = createUsageClient({ url, apiKey: key, maxQueue: E2E_EVENTS + 1, batchSize: 1000 });
  let t = performance.now();
  for (let i = 0; i < E2E_EVENTS; i++) e2eClient.record(event(i));
  await e2eClient.close();
  const clientSeconds = (performance.now() - t) / 1000;
  const stats = e2eClient.stats();

  // The same events posted by hand: batches of 1,000, one request at a time, no validation or retry.
  t = performance.now();
  for (let i = 0; i < E2E_EVENTS; i += 1000) {
    const events = Array.from({ length: Math.min(1000, E2E_EVENTS - i) }, (_, k) => ({ ...event(i + k), request_id: `hand-${i + k}` }));
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    await res.arrayBuffer();
  }
  const handSeconds = (performance.now() - t) / 1000;
  await stopServer(proc);

  const us = (ns: number) => Math.round(ns / 10) / 100;
  const clientRate = Math.round(E2E_EVENTS / clientSeconds);
  const handRate = Math.round(E2E_EVENTS / handSeconds);
  console.log(
    `record(): median ${us(record.median)} µs, p99 ${us(record.p99)} µs | empty call: median ${us(empty.median)} µs, p99 ${us(empty.p99)} µs | record − empty: median ${us(record.median - empty.median)} µs`,
  );
  console.log(
    `end to end: ${clientRate} events/s through the client (sent ${stats.sent}, rejected ${stats.rejected}, dropped ${stats.dropped}) | by hand: ${handRate} events/s | ratio ${Math.round((clientRate / handRate) * 100) / 100}`,
  );
  console.log(
    JSON.stringify({
      bench: 'client',
      calls: CALLS,
      record_median_us: us(record.median),
      record_p99_us: us(record.p99),
      empty_median_us: us(empty.median),
      empty_p99_us: us(empty.p99),
      e2e_events: E2E_EVENTS,
      client_events_per_s: clientRate,
      by_hand_events_per_s: handRate,
      client_over_by_hand: Math.round((clientRate / handRate) * 100) / 100,
      sent: stats.sent,
      rejected: stats.rejected,
      dropped: stats.dropped,
      sink,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
