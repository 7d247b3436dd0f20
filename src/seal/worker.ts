// The sealing worker: its own connection to the ledger, so reading and hashing an epoch never
// blocks the server's event loop. Messages: { id, maxEvents, now } → { id, epoch } | { id, error }.
import { parentPort, workerData } from 'node:worker_threads';
import { openDb } from '../ledger/db.ts';
import { sealNext } from './sealer.ts';

const db = openDb((workerData as { file: string }).file);
parentPort!.on('message', (m: { id: number; maxEvents: number; now: number }) => {
  try {
    parentPort!.postMessage({ id: m.id, epoch: sealNext(db, { maxEvents: m.maxEvents, now: m.now }) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
});
