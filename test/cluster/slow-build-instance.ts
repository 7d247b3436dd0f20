// A service instance (as instance.ts) whose epoch tree build costs BUILD_MS_PER_EVENT ms per
// event, synchronously, as a large epoch's hashing does on a slow or loaded machine.
import { buildService, type ServiceOptions } from '../../src/service.ts';
import { checkingSerializer } from '../../src/api/validation.ts';
import { openLedger } from '../../src/ledger/index.ts';
import { HttpChain } from './http-chain.ts';

const [db, chainUrl, name] = process.argv.slice(2);
const ledger = await openLedger(db!, { instanceId: name! });
const perEvent = Number(process.env.BUILD_MS_PER_EVENT ?? 0);
const seal = ledger.epochs.sealNext.bind(ledger.epochs);
ledger.epochs.sealNext = (request) =>
  seal({
    ...request,
    build: (leaves) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, (leaves.length / 32) * perEvent);
      return request.build(leaves);
    },
  });
const app = buildService({
  ledger,
  serializerCompiler: checkingSerializer as ServiceOptions['serializerCompiler'],
  sealing: { epochMs: 50, maxEvents: Number(process.env.MAX_EVENTS ?? 100_000) },
  anchoring: { chain: new HttpChain(chainUrl!), pollMs: 20, backoff: { baseMs: 20, maxMs: 200 } },
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening http://127.0.0.1:${(app.server.address() as { port: number }).port}\n`);
