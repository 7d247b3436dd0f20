import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterEach, beforeEach } from 'vitest';
import { buildService, type ServiceOptions } from '../src/service.ts';
import { SqliteLedger, type Engine, type Ledger } from '../src/ledger/index.ts';
import { LOG_REDACT } from '../src/cli/serve.ts';
import { ReceiptReader } from '../src/receipt/reader.ts';
import { pgTypes } from '../src/ledger/postgres/db.ts';
import { checkingSerializer } from '../src/api/validation.ts';
import type { RegisteredRoute } from '../src/api/server.ts';

export function tempDir(prefix = 'receipts-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Opens a fresh, empty ledger of the engine; PostgreSQL needs the suite's cluster (test/support/postgres.ts). */
export type LedgerFactory = () => Promise<{ ledger: Ledger; cleanup: () => Promise<void> }>;

export const sqliteLedger: LedgerFactory = async () => {
  const { dir, cleanup } = tempDir();
  const ledger = new SqliteLedger(join(dir, 'receipts.db'), { synchronous: 'normal' });
  return { ledger, cleanup: async () => cleanup() };
};

/** A service on a fresh ledger (SQLite unless a factory is given), a key for acme/*, and every log line it wrote. */
export async function testServer(options: Partial<ServiceOptions> = {}, fresh: LedgerFactory = sqliteLedger) {
  const { ledger, cleanup } = await fresh();
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const logger = pino({ level: 'debug', redact: { paths: LOG_REDACT, censor: '[redacted]' } }, stream);
  // Every response is checked against the schema its route declares; every route is noted.
  const routes: RegisteredRoute[] = [];
  const app = buildService({
    ledger,
    logger,
    serializerCompiler: checkingSerializer as ServiceOptions['serializerCompiler'],
    onRoute: (r) => routes.push(r),
    ...options,
  });
  const created = await ledger.keys.create('acme-inc', ['acme/*']);
  // Tests seal by hand: on PostgreSQL wait until this instance has won the election (SQLite's one
  // process always leads, and its tests may still add hooks before the app is ready).
  if (ledger.engine === 'postgres') {
    await app.ready();
    await until(() => ledger.leadership.role() === 'leader');
  }
  let pgClient: pg.Client | undefined;
  /** Rows of a query in SQL both engines speak (`?` placeholders; events have id and seq in both). */
  const sql = async <T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T[]> => {
    if (ledger instanceof SqliteLedger) {
      const stmt = ledger.db.prepare(text);
      if (stmt.reader) return stmt.all(...params) as T[];
      stmt.run(...params);
      return [];
    }
    if (!pgClient) {
      pgClient = new pg.Client({ connectionString: ledger.location, types: pgTypes });
      await pgClient.connect();
    }
    let n = 0;
    return (
      await pgClient.query(
        text.replace(/\?/g, () => `$${++n}`),
        params,
      )
    ).rows as T[];
  };
  /** Events stored, optionally under a WHERE clause. */
  const count = async (where = 'TRUE', ...params: unknown[]) =>
    Number((await sql<{ n: number | string }>(`SELECT count(*) AS n FROM events WHERE ${where}`, ...params))[0]!.n);
  const auth = { authorization: `Bearer ${created.key}` };
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth, 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const get = (url: string, headers: Record<string, string> = auth) => app.inject({ method: 'GET', url, headers });
  /** The SQLite connection, for tests that look at this engine's own tables. */
  const db = () => {
    if (!(ledger instanceof SqliteLedger)) throw new Error('this check reads SQLite tables');
    return ledger.db;
  };
  const reader = new ReceiptReader(ledger);
  /** The receipt of a stored event, as the service builds it. */
  const receipt = async (id: number) => reader.receipt((await ledger.events.get(id))!);
  return {
    app,
    routes,
    ledger,
    engine: ledger.engine as Engine,
    db,
    sql,
    count,
    logs,
    key: created.key,
    keyId: created.id,
    auth,
    post,
    get,
    receipt,
    async close() {
      await pgClient?.end();
      await app.close();
      await ledger.close();
      await cleanup();
    },
  };
}

export type TestServer = Awaited<ReturnType<typeof testServer>>;

/** testServer on the engine a suite runs on (see test/support/engines.ts). */
export const testServerOn = (fresh: LedgerFactory, options: Partial<ServiceOptions> = {}) => testServer(options, fresh);

/**
 * A fresh test server for every test of the enclosing describe block (beforeEach/afterEach), as
 * one object: its properties are always the current test's server's.
 */
export function serverEachTest(fresh: LedgerFactory, options: Partial<ServiceOptions> = {}): TestServer {
  let current: TestServer | undefined;
  beforeEach(async () => {
    current = await testServerOn(fresh, options);
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return new Proxy({} as TestServer, {
    get(_target, key) {
      if (!current) throw new Error('the test server exists only inside a test (serverEachTest)');
      return current[key as keyof TestServer];
    },
  });
}

let counter = 0;
/** A valid event with a unique request id. */
export function event(overrides: Record<string, unknown> = {}) {
  return {
    request_id: `req-${process.pid}-${++counter}`,
    namespace: 'acme/prod',
    action: 'recall',
    caller: 'user-1',
    units: 1,
    ...overrides,
  };
}

/** Polls until check() holds (or throws after ms). */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
