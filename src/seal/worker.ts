// The sealing worker (SQLite): its own connection to the ledger file, so reading and hashing an
// epoch never blocks the server's event loop. It opens the file with the service's durability
// (--synchronous) and without migrating: the service's own connection already did, and migrating
// would take the write lock (and re-apply a step) behind the service's back.
// Messages: first { opened: { synchronous, journal_mode } } or { failed }; then
// { id, maxEvents, now } → { id, epoch } | { id, error, epochLog } (epochLog: an EpochLogError).
import { parentPort, workerData } from 'node:worker_threads';
import { parseSignerKey } from '../checkpoint/index.ts';
import { EpochLogError, SqliteLedger, logSigner, type LogSigner, type WorkerLedgerSpec } from '../ledger/index.ts';
import { sealNext } from './sealer.ts';

// The log key comes as its signer line (it never leaves this process's memory).
const spec = workerData as WorkerLedgerSpec & { logKey?: string };
let ledger: SqliteLedger;
let log: LogSigner | undefined;
try {
  if (spec.logKey) log = logSigner(parseSignerKey(spec.logKey));
  ledger = new SqliteLedger(spec.file, { synchronous: spec.synchronous, migrate: false });
  // Read back from the connection itself: what the log line reports is what this connection does.
  const synchronous = ({ 0: 'off', 1: 'normal', 2: 'full', 3: 'extra' } as Record<number, string>)[
    ledger.db.pragma('synchronous', { simple: true }) as number
  ];
  parentPort!.postMessage({ opened: { synchronous, journal_mode: ledger.db.pragma('journal_mode', { simple: true }) } });
} catch (err) {
  parentPort!.postMessage({ failed: (err as Error).message });
  process.exit(1);
}
parentPort!.on('message', (m: { id: number; maxEvents: number; now: number; catchUp?: boolean }) => {
  // Only the catch-up's progress is sent: the main thread logs it (a large ledger upgraded).
  const progress = (phase: string, detail: Record<string, number>) => {
    if (phase === 'rollup-catch-up') parentPort!.postMessage({ progress: { phase, detail } });
  };
  if (m.catchUp) {
    ledger.epochs
      .catchUpRollups((p) => progress('rollup-catch-up', p))
      .then(
        () => parentPort!.postMessage({ id: m.id, epoch: null }),
        (err: Error) => parentPort!.postMessage({ id: m.id, error: err.message }),
      );
    return;
  }
  sealNext(ledger, { maxEvents: m.maxEvents, now: m.now, progress, ...(log && { log }) }).then(
    (epoch) => parentPort!.postMessage({ id: m.id, epoch }),
    (err: Error) => parentPort!.postMessage({ id: m.id, error: err.message, epochLog: err instanceof EpochLogError }),
  );
});
