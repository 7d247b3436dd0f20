// The naive baseline for bench:ingest: a bare fastify route, no validation, no auth, no leaf
// hash, no group commit. Same schema and indexes as the ledger, so the ratio measures our own work.
// SQLite (a file): a prepared INSERT per event in one transaction per request, same pragmas.
// PostgreSQL (a postgres:// URL, already migrated by the engine): ONE multi-row INSERT per
// request on a pg.Pool of the engine's default size.
import Fastify from 'fastify';
import pg from 'pg';
import { openDb } from '../src/ledger/sqlite/db.ts';

const [location, port] = process.argv.slice(2);
type E = { namespace: string; request_id: string; caller: string; action: string; units?: number; ts?: number };
type Insert = (events: E[], now: number) => unknown;

function sqliteInsert(file: string): Insert {
  const db = openDb(file, { synchronous: 'full' });
  const insert =
    db.prepare(`INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
    VALUES (?, ?, 'o', 'k', ?, ?, ?, ?, 1, ?, zeroblob(32))`);
  return db.transaction((events: E[], now: number) => {
    for (const e of events) insert.run(e.namespace, e.request_id, e.caller, e.action, e.units ?? 1, e.ts ?? now, now);
  });
}

function postgresInsert(url: string): Insert {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  const zeros = `'\\x${'00'.repeat(32)}'::bytea`;
  return (events: E[], now: number) => {
    const values: unknown[] = [];
    const rows = events.map((e) => {
      const p = values.push(e.namespace, e.request_id, e.caller, e.action, e.units ?? 1, e.ts ?? now, now) - 7;
      return `($${p + 1}, $${p + 2}, 'o', 'k', $${p + 3}, $${p + 4}, $${p + 5}, $${p + 6}, true, $${p + 7}, ${zeros})`;
    });
    return pool.query(
      `INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
      VALUES ${rows.join(', ')}`,
      values,
    );
  };
}

const insertAll = /^postgres(?:ql)?:\/\//i.test(location!) ? postgresInsert(location!) : sqliteInsert(location!);
const app = Fastify({ bodyLimit: 1024 * 1024 });
app.post('/v1/events', async (request) => {
  const body = request.body as E | { events: E[] };
  const events = 'events' in body ? body.events : [body];
  await insertAll(events, Date.now());
  return { results: events.map(() => ({ status: 'created' })) };
});
app.get('/healthz', async () => ({ status: 'ok' }));
await app.listen({ host: '127.0.0.1', port: Number(port) });
