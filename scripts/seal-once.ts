// One seal of everything waiting (up to N events), timed, in its own process so its peak RSS
// is the seal's; then the floor: the same number of node hashes alone, same primitive.
import { SqliteLedger } from '../src/ledger/index.ts';
import { nodeCryptoHasher, sealNext } from '../src/seal/sealer.ts';

const [file, max] = process.argv.slice(2);
const ledger = new SqliteLedger(file!);
const started = performance.now();
const epoch = await sealNext(ledger, {
  maxEvents: Number(max),
  progress: (phase, d) => process.stderr.write(`  seal: ${phase} ${d.size} events (${Math.round(performance.now() - started)} ms)\n`),
});
const sealMs = performance.now() - started;
await ledger.close();
const maxRssMb = process.resourceUsage().maxRSS / 1024;

const preimage = new Uint8Array(65);
preimage[0] = 1;
const floorStart = performance.now();
for (let i = 0; i < epoch!.size - 1; i++) {
  preimage[1] = i & 0xff;
  nodeCryptoHasher(preimage);
}
const floorMs = performance.now() - floorStart;
console.log(
  JSON.stringify({
    epoch: epoch!.epoch,
    size: epoch!.size,
    root: epoch!.root,
    seal_ms: Math.round(sealMs),
    floor_ms: Math.round(floorMs),
    max_rss_mb: Math.round(maxRssMb),
  }),
);
