// One service instance for the webhook failover test, in its own process (so the test can SIGKILL
// it mid-delivery): buildService on a PostgreSQL URL, receivers on loopback allowed, fast polling.
// Prints `listening <url>` on stdout.
import { checkingSerializer } from '../../src/api/validation.ts';
import { openLedger } from '../../src/ledger/index.ts';
import { buildService, type ServiceOptions } from '../../src/service.ts';

const [db, name] = process.argv.slice(2);
const ledger = await openLedger(db!, { instanceId: name! });
const app = buildService({
  ledger,
  serializerCompiler: checkingSerializer as ServiceOptions['serializerCompiler'],
  webhooks: { allowPrivate: true, crossings: false, delivery: { pollMs: 20, timeoutMs: 20_000, backoff: { baseMs: 50, maxMs: 200 } } },
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening http://127.0.0.1:${(app.server.address() as { port: number }).port}\n`);
