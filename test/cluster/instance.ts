// One service instance for the cluster tests, in its own process: the same composition as
// `receipts serve` (buildService) on a PostgreSQL URL, anchoring on the test's shared fake chain.
// Prints `listening <url>`, role changes, and seal progress (`seal read` …) on stdout.
// STALL_AT=<phase> with STALL_MS: the first seal to reach that phase blocks the whole process for
// that long right after printing it (as a long pause would), so a test can act on it mid-seal.
import { buildService, type ServiceOptions } from '../../src/service.ts';
import { checkingSerializer } from '../../src/api/validation.ts';
import { openLedger } from '../../src/ledger/index.ts';
import { HttpChain } from './http-chain.ts';

const [db, chainUrl, name] = process.argv.slice(2);
const ledger = await openLedger(db!, { instanceId: name! });
const chain = new HttpChain(chainUrl!);
const progress = ledger.epochs.sealNext.bind(ledger.epochs);
// Report every seal phase, so the test can kill this process in the middle of one.
let stall = process.env.STALL_AT;
ledger.epochs.sealNext = (request) =>
  progress({
    ...request,
    progress: (phase, d) => {
      process.stdout.write(`seal ${phase} ${d.epoch}\n`);
      if (phase === stall) {
        stall = undefined;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.env.STALL_MS ?? 1000));
      }
    },
  });
const app = buildService({
  ledger,
  serializerCompiler: checkingSerializer as ServiceOptions['serializerCompiler'],
  sealing: { epochMs: 50, maxEvents: Number(process.env.MAX_EVENTS ?? 200) },
  anchoring: { chain, pollMs: 20, backoff: { baseMs: 20, maxMs: 200 } },
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening http://127.0.0.1:${(app.server.address() as { port: number }).port}\n`);
