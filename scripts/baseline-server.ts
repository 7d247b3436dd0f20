// The naive baseline for bench:ingest: a bare fastify route doing a prepared INSERT per event
// in one transaction per request. No validation, no auth, no leaf hash, no group commit.
// Same schema, indexes and pragmas as the ledger, so the ratio measures our own work.
import Fastify from 'fastify';
import { openDb } from '../src/ledger/sqlite/db.ts';

const [file, port] = process.argv.slice(2);
const db = openDb(file!, { synchronous: 'full' });
const insert = db.prepare(`INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
  VALUES (?, ?, 'o', 'k', ?, ?, ?, ?, 1, ?, zeroblob(32))`);
type E = { namespace: string; request_id: string; caller: string; action: string; units?: number; ts?: number };
const insertAll = db.transaction((events: E[], now: number) => {
  for (const e of events) insert.run(e.namespace, e.request_id, e.caller, e.action, e.units ?? 1, e.ts ?? now, now);
});
const app = Fastify({ bodyLimit: 1024 * 1024 });
app.post('/v1/events', async (request) => {
  const body = request.body as E | { events: E[] };
  const events = 'events' in body ? body.events : [body];
  insertAll(events, Date.now());
  return { results: events.map(() => ({ status: 'created' })) };
});
app.get('/healthz', async () => ({ status: 'ok' }));
await app.listen({ host: '127.0.0.1', port: Number(port) });
