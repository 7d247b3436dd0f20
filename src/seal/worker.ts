// The sealing worker (SQLite): its own connection to the ledger file, so reading and hashing an
// epoch never blocks the server's event loop. Messages: { id, maxEvents, now } → { id, epoch } | { id, error }.
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteLedger } from '../ledger/index.ts';
import { sealNext } from './sealer.ts';

const ledger = new SqliteLedger((workerData as { file: string }).file);
parentPort!.on('message', (m: { id: number; maxEvents: number; now: number }) => {
  sealNext(ledger, { maxEvents: m.maxEvents, now: m.now }).then(
    (epoch) => parentPort!.postMessage({ id: m.id, epoch }),
    (err: Error) => parentPort!.postMessage({ id: m.id, error: err.message }),
  );
});
