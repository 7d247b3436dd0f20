// The client's one error class through the public API: a caller switches on `code` (a closed
// list exported with it) instead of matching message text, for what it throws at start-up and
// what it reports to onError while running (a failing sink, a failing spool, the close deadline).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteSpool } from '../../src/client/spool.ts';
import {
  createMemorySink,
  createUsageClient,
  type Sink,
  type Spool,
  USAGE_CLIENT_ERROR_CODES,
  UsageClientError,
  type UsageClientErrorCode,
} from '../../src/index.ts';
import { tempDir } from '../helpers.ts';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
const t = tempDir('receipts-client-errors-');
afterAll(() => t.cleanup());

/** What an operator's onError does with each code: the switch a caller writes (exhaustive). */
function handle(e: UsageClientError): 'fix config' | 'retrying' | 'disk' | 'data lost' | 'info' {
  switch (e.code) {
    case 'bad_option':
    case 'unknown_sink':
    case 'unsupported_runtime':
      return 'fix config';
    case 'send_failed':
    case 'receipt_failed':
    case 'check_failed':
    case 'timeout':
    case 'closing':
      return 'retrying';
    case 'spool_write_failed':
    case 'spool_remove_failed':
    case 'spool_unreadable':
    case 'spool_rows_set_aside':
    case 'close_failed':
      return 'disk';
    case 'close_dropped':
    case 'bad_event':
      return 'data lost';
    case 'spool_recovered':
    case 'close_timeout':
    case 'no_receipts':
      return 'info';
    default: {
      // A code added to the union without a case here fails to compile.
      const never: never = e.code;
      return never;
    }
  }
}

function thrown(f: () => unknown): UsageClientError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageClientError);
    return err as UsageClientError;
  }
  throw new Error('did not throw');
}

const event = (id: string) => ({ request_id: id, namespace: 'acme/app', action: 'a.b', caller: 'u1' });

describe('UsageClientError: one class, a closed code union', () => {
  it('is exported with its code list, and the codes are the type', () => {
    const codes: readonly UsageClientErrorCode[] = USAGE_CLIENT_ERROR_CODES;
    expect(codes).toContain('bad_option');
    expect(new Set(codes).size).toBe(codes.length);
    const e = new UsageClientError('send_failed', 'x', { cause: 'y' });
    expect([e.name, e.code, e.message, e.cause, e instanceof Error]).toEqual(['UsageClientError', 'send_failed', 'x', 'y', true]);
  });

  it('createUsageClient throws bad_option and unknown_sink, messages unchanged', () => {
    const bad = thrown(() => createUsageClient({ sink: 'memory', batchSize: 0 }));
    expect([bad.code, handle(bad)]).toEqual(['bad_option', 'fix config']);
    expect(bad.message).toBe('createUsageClient: batchSize must be a number of events, at least 1 (at most 1,000 are used) (got 0)');
    expect(thrown(() => createUsageClient({ sink: 'nope' })).code).toBe('unknown_sink');
    expect(thrown(() => createUsageClient({ url: 'http://127.0.0.1:1' })).code).toBe('bad_option'); // no apiKey
    expect(thrown(() => createUsageClient({ sink: {} as Sink })).code).toBe('bad_option');
  });

  it('a failing sink reaches onError as send_failed, with the sink’s own error as cause', async () => {
    const errors: UsageClientError[] = [];
    const sink = createMemorySink();
    const boom = new Error('broker down');
    let calls = 0;
    // First a throw, then a third-party sink's bare Error in a retry answer, then delivered.
    sink.answer = () => {
      calls++;
      if (calls === 1) throw boom;
      if (calls === 2) return { kind: 'retry', error: new Error('partition moving'), retryAfterMs: 1 };
      return undefined;
    };
    const client = createUsageClient({ sink, flushIntervalMs: 0, retry: { baseMs: 1, maxMs: 2 }, onError: (e) => errors.push(e) });
    client.record(event('s-1'));
    await sink.until(1);
    await client.close();
    expect(errors.map((e) => [e instanceof UsageClientError, e.code, e.message])).toEqual([
      [true, 'send_failed', 'sink memory: broker down'],
      [true, 'send_failed', 'partition moving'],
    ]);
    expect(errors[0]!.cause).toBe(boom);
    expect(errors.map(handle)).toEqual(['retrying', 'retrying']);
  });

  it('a spool that cannot write (a full disk) is spool_write_failed, then spool_recovered', async () => {
    const errors: UsageClientError[] = [];
    const real = createSqliteSpool(join(t.dir, 'full.sqlite'));
    let full = true;
    const full_ = () => {
      if (full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const spool: Spool = {
      ...real,
      add: (e) => (full_(), real.add(e)),
      addMany: (events) => (full_(), real.addMany!(events)),
    };
    const sink = createMemorySink();
    sink.answer = () => ({ kind: 'retry', error: new Error('down'), retryAfterMs: 60_000 }); // keep them queued
    const client = createUsageClient({ sink, spool, flushIntervalMs: 60_000, onError: (e) => errors.push(e) });
    client.record(event('f-1'));
    client.record(event('f-2'));
    full = false;
    await new Promise((r) => setTimeout(r, 1100)); // SPOOL_RETRY_MS
    client.record(event('f-3'));
    expect(errors.map((e) => e.code)).toEqual(['spool_write_failed', 'spool_recovered']);
    expect(errors[0]!.message).toMatch(/^the spool could not write \(database or disk is full\); events are kept in memory/);
    expect((errors[0]!.cause as { code?: string }).code).toBe('SQLITE_FULL');
    expect(errors.map(handle)).toEqual(['disk', 'info']);
    await client.close({ timeoutMs: 0 });
  });

  it('rows of the spool that are not events are spool_rows_set_aside at start', async () => {
    const file = join(t.dir, 'garbage.sqlite');
    createSqliteSpool(file).close();
    const db = new Database(file);
    db.prepare('INSERT INTO spool (request_id, event) VALUES (?, ?)').run('g-1', 'not json');
    db.close();
    const errors: UsageClientError[] = [];
    const client = createUsageClient({ sink: 'memory', spool: createSqliteSpool(file), onError: (e) => errors.push(e) });
    expect(errors.map((e) => e.code)).toEqual(['spool_rows_set_aside']);
    expect(errors[0]!.message).toMatch(/^the spool held 1 unreadable rows; they were set aside, not sent/);
    expect(client.stats().quarantined).toBe(1);
    await client.close();
  });

  it('the close deadline: close_timeout when the spool keeps them, close_dropped without one', async () => {
    const hang = (): Sink => ({
      name: 'hang',
      send: (_e, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    });

    const kept: UsageClientError[] = [];
    const spool = createSqliteSpool(join(t.dir, 'close.sqlite'));
    const a = createUsageClient({ sink: hang(), spool, flushIntervalMs: 0, onError: (e) => kept.push(e) });
    a.record(event('c-1'));
    await a.close({ timeoutMs: 50 });
    expect(kept.map((e) => [e.code, handle(e)])).toEqual([['close_timeout', 'info']]);
    expect(kept[0]!.message).toBe(
      'close: 1 events not delivered within 50 ms; they stay in the spool and the next client on it sends them',
    );

    const lost: UsageClientError[] = [];
    let reason: unknown;
    const sink: Sink = {
      name: 'hang',
      send: (_e, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject((reason = signal.reason)))),
    };
    const b = createUsageClient({ sink, flushIntervalMs: 0, onError: (e) => lost.push(e), onDropped: () => {} });
    b.record(event('c-2'));
    await b.close({ timeoutMs: 50 });
    expect(lost.map((e) => [e.code, handle(e)])).toEqual([['close_dropped', 'data lost']]);
    // The sink's signal says why, with a code too.
    expect([(reason as UsageClientError).code, (reason as UsageClientError).message]).toEqual(['closing', 'the client is closing']);
  });

  it('receipt() from a sink without receipts throws no_receipts', async () => {
    await expect(createUsageClient({ sink: 'memory' }).receipt(1)).rejects.toMatchObject({ name: 'UsageClientError', code: 'no_receipts' });
  });
});
