// Checks the claim src/ledger/rollups.ts rests on: since 1973 every zone the runtime knows has
// all its hour, day and month edges on 15-minute bucket edges (so rollups answer every zone).
// Usage: node scripts/check-zone-alignment.ts [to-year]   (exit 1 naming any zone that is not)
import { ALIGNED_SINCE } from '../src/ledger/rollups.ts';
import { zoneEdgesAligned } from '../src/usage/time-zone.ts';

const toYear = Number(process.argv[2] ?? 2100);
const zones = Intl.supportedValuesOf('timeZone');
const bad: string[] = [];
let i = 0;
for (const tz of zones) {
  if (!zoneEdgesAligned(tz, ALIGNED_SINCE, Date.UTC(toYear, 0, 1))) bad.push(tz);
  if (process.stderr.isTTY && ++i % 25 === 0) process.stderr.write(`\r${i}/${zones.length} zones`);
}
if (process.stderr.isTTY) process.stderr.write('\n');
console.log(
  `${zones.length} zones, 1973–${toYear}: ${bad.length === 0 ? 'every edge on a 15-minute bucket edge' : `NOT aligned: ${bad.join(', ')}`}`,
);
process.exit(bad.length === 0 ? 0 : 1);
