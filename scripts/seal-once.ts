// One seal of everything waiting (up to N events), timed, in its own process so its peak RSS is
// the seal's; then the floors: the same number of node hashes alone, (1) through the fastest path
// here (the seal's own bulk kernel on the tree-hashing threads, no I/O), and (2) one node:crypto
// call per node on one thread (the old per-node floor).
// node scripts/seal-once.ts <sqlite file | postgres url> <N> [--stall]
// --stall (either engine): while the seal runs, this process also ingests (batches of 100 through
// the ledger, back to back) and a 1 ms timer records the longest gap of its event loop: the
// longest stall a seal causes a leader that is serving ingest. The same is measured for as long
// again with ingest alone (the baseline). Last line: JSON.
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../src/event/validate.ts';
import { openLedger } from '../src/ledger/index.ts';
import { nodeCryptoHasher, sealNext } from '../src/seal/sealer.ts';
import { treeWorkers } from '../src/seal/tree-builder.ts';

const [location, max, mode] = process.argv.slice(2);
const stall = mode === '--stall';
const ledger = await openLedger(location!, { instanceId: 'bench-seal' });
// PostgreSQL: only the leader seals. The first instance takes the lock at once.
if (ledger.engine === 'postgres') await ledger.leadership.start(() => {});
let started = performance.now();
const progress = (phase: string, d: Record<string, number>) =>
  process.stderr.write(
    `  seal: ${phase} ${d.size} events (${Math.round(performance.now() - started)} ms, RSS now ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MB)\n`,
  );

/** The longest gap between 1 ms timer callbacks while it runs, ms. */
function loopWatch() {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last > longest) {
      longest = now - last;
      if (longest > 20) process.stderr.write(`  event loop: ${Math.round(longest)} ms stall ending at ${Math.round(now - started)} ms\n`);
    }
    last = now;
  }, 1);
  return () => {
    clearInterval(timer);
    return Math.max(longest, performance.now() - last);
  };
}

/** Batches of 100 new events written back to back until stopped; resolves with the events written. */
function ingest() {
  let running = true;
  let written = 0;
  const now = Date.now();
  const done = (async () => {
    for (let b = 0; running; b++) {
      const items = Array.from({ length: 100 }, (_, i) => {
        const v = validateEvent(
          { request_id: `stall-${b}-${i}-${now}`, namespace: 'acme/bench', action: 'recall', caller: `c${i}`, units: 1 },
          { now: Date.now(), maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
        );
        if (!v.ok) throw new Error(JSON.stringify(v.errors));
        return { event: v.event, owner: 'bench', keyId: 'k' };
      });
      await ledger.events.write(items);
      written += items.length;
    }
    return written;
  })();
  return async () => {
    running = false;
    return done;
  };
}

// The tree-hashing threads start once per process (serve keeps them between seals): timed apart.
const threadsStart = performance.now();
await treeWorkers().build(new Uint8Array(new SharedArrayBuffer(32 * 65_536)));
const threadsMs = performance.now() - threadsStart;
let stopIngest: (() => Promise<number>) | undefined;
let stopWatch: (() => number) | undefined;
if (stall) {
  stopIngest = ingest();
  await new Promise((r) => setTimeout(r, 300));
  stopWatch = loopWatch();
}
process.stderr.write(`  before the seal: RSS ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MB\n`);
started = performance.now();
const epoch = await sealNext(ledger, { maxEvents: Number(max), progress });
const sealMs = performance.now() - started;
if (!epoch) throw new Error('nothing to seal');
const maxRssMb = process.resourceUsage().maxRSS / 1024;
let stallMs: number | undefined;
let baselineStallMs: number | undefined;
let ingested: number | undefined;
if (stall) {
  stallMs = stopWatch!();
  const watch = loopWatch();
  await new Promise((r) => setTimeout(r, Math.max(1000, sealMs)));
  baselineStallMs = watch();
  ingested = await stopIngest!();
}
await ledger.close();

// The floors, over the same number of leaves (random: the hashes cost the same whatever they are).
const leaves = randomBytes(epoch.size * 32);
const floorStart = performance.now();
await treeWorkers().build(leaves);
const floorMs = performance.now() - floorStart;
const preimage = new Uint8Array(65);
preimage[0] = 1;
const cryptoStart = performance.now();
for (let i = 0; i < epoch.size - 1; i++) {
  preimage[1] = i & 0xff;
  nodeCryptoHasher(preimage);
}
const cryptoMs = performance.now() - cryptoStart;
console.log(
  JSON.stringify({
    engine: ledger.engine,
    epoch: epoch.epoch,
    size: epoch.size,
    root: epoch.root,
    seal_ms: Math.round(sealMs),
    floor_ms: Math.round(floorMs),
    crypto_floor_ms: Math.round(cryptoMs),
    max_rss_mb: Math.round(maxRssMb),
    threads_start_ms: Math.round(threadsMs),
    ...(stall && { longest_stall_ms: Math.round(stallMs!), baseline_stall_ms: Math.round(baselineStallMs!), ingested }),
  }),
);
process.exit(0);
