// What time-zone windows cost the usage rollups (issue 23), as ratios to today's UTC key (one
// toISOString per bucket) measured in the same run. Run: npx node scripts/bench-time-zone.ts
import { BUCKET_MS, keyOf, windowsOf } from '../src/usage/time-zone.ts';

const H = 3_600_000;
const YEAR_FROM = Date.UTC(2026, 0, 1);
const buckets = Array.from({ length: (365 * 24 * H) / BUCKET_MS }, (_, i) => YEAR_FROM + i * BUCKET_MS);

function perOp(label: string, ops: number, run: () => void): number {
  run(); // warm: the zone's rules for the year are scanned once and cached
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    run();
    rounds.push(((performance.now() - t) * 1e6) / ops);
  }
  const median = rounds.sort((a, b) => a - b)[2]!;
  console.log(`${label.padEnd(58)} ${median.toFixed(0).padStart(7)} ns/op`);
  return median;
}

let sink = 0;
const base = perOp('baseline: UTC day key, toISOString per 15-min bucket', buckets.length, () => {
  for (const ms of buckets) sink += new Date(Math.floor(ms / (24 * H)) * 24 * H).toISOString().length;
});
const ratio = (ns: number) => console.log(`${''.padEnd(58)} ${(ns / base).toFixed(2).padStart(7)} × baseline`);
ratio(
  perOp('keyOf UTC day, buckets in time order', buckets.length, () => {
    for (const ms of buckets) sink += keyOf('UTC', 'day', ms).length;
  }),
);
ratio(
  perOp('keyOf Europe/Berlin day, buckets in time order', buckets.length, () => {
    for (const ms of buckets) sink += keyOf('Europe/Berlin', 'day', ms).length;
  }),
);
const shuffled = buckets.map((_, i) => buckets[(i * 7919) % buckets.length]!); // 7919 is prime to the count: a permutation
ratio(
  perOp('keyOf America/Los_Angeles hour, buckets in no order', shuffled.length, () => {
    for (const ms of shuffled) sink += keyOf('America/Los_Angeles', 'hour', ms).length;
  }),
);
ratio(
  perOp('windowsOf Asia/Kathmandu day over 2026, per window', 365, () => {
    sink += windowsOf('Asia/Kathmandu', 'day', YEAR_FROM - 6 * H, YEAR_FROM + 365 * 24 * H).length;
  }),
);

// The first use of a zone and year scans its offset changes: the cost a cold cache pays.
const zones = Intl.supportedValuesOf('timeZone');
let t = performance.now();
for (const tz of zones) sink += keyOf(tz, 'day', Date.UTC(1987, 5, 1)).length;
console.log(
  `${'cold: first key of a zone-year (all zones, 1987)'.padEnd(58)} ${((performance.now() - t) / zones.length).toFixed(2).padStart(7)} ms/zone`,
);
t = performance.now();
sink += windowsOf('Asia/Tehran', 'month', Date.UTC(1200, 0, 1), Date.UTC(2033, 0, 1)).length;
console.log(`${'cold: windowsOf month, 833 years (the 10,000 cap)'.padEnd(58)} ${(performance.now() - t).toFixed(0).padStart(7)} ms`);
if (sink === 0) console.log('');
