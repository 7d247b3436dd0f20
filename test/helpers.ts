import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildServer, type ServerOptions } from '../src/api/server.ts';
import { Ledger } from '../src/ledger/index.ts';
import { LOG_REDACT } from '../src/cli/serve.ts';

export function tempDir(prefix = 'receipts-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A server on a fresh ledger file, a key for acme/*, and every log line it wrote. */
export function testServer(options: Partial<ServerOptions> = {}) {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'receipts.db');
  const ledger = new Ledger(file, { synchronous: 'normal' });
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const logger = pino({ level: 'debug', redact: { paths: LOG_REDACT, censor: '[redacted]' } }, stream);
  const app = buildServer({ ledger, logger, ...options });
  const created = ledger.keys.create('acme-inc', ['acme/*']);
  const auth = { authorization: `Bearer ${created.key}` };
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/events', headers: { ...auth, 'content-type': 'application/json', ...headers }, payload: typeof body === 'string' ? body : JSON.stringify(body) });
  const get = (url: string, headers: Record<string, string> = auth) => app.inject({ method: 'GET', url, headers });
  return {
    app, ledger, file, dir, logs, key: created.key, keyId: created.id, auth, post, get,
    async close() {
      await app.close();
      ledger.close();
      cleanup();
    },
  };
}

export type TestServer = ReturnType<typeof testServer>;

let counter = 0;
/** A valid event with a unique request id. */
export function event(overrides: Record<string, unknown> = {}) {
  return { request_id: `req-${process.pid}-${++counter}`, namespace: 'acme/prod', action: 'recall', caller: 'user-1', units: 1, ...overrides };
}

/** Polls until check() holds (or throws after ms). */
export async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
