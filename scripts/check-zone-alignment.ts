// Lists the zones whose hour, day or month edges since 1973 are not all on 15-minute bucket edges
// (changes at 00:01 in Newfoundland until 2011, Gaza, Casey …): usage reads the buckets those edges
// cut from their events (src/ledger/rollups.ts splitParts). Informational; always exits 0.
// Usage: node scripts/check-zone-alignment.ts [to-year]
import { zoneEdgesAligned } from '../src/usage/time-zone.ts';

const ALIGNED_SINCE = Date.UTC(1973, 0, 1);

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
