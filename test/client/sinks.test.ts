// The client through its sinks: the built-in ones, one registered by name, and the SQLite spool
// under a sink that fails.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient, registerSink, type QueuedEvent, type Rejection, type Sink } from '../../src/index.ts';
import { createSqliteSpool } from '../../src/client/spool.ts';
import { createJsonlSink, readJsonl } from '../../src/client/sinks/jsonl.ts';
import { tempDir } from '../helpers.ts';

const dirs: Array<() => void> = [];
afterEach(() => {
  for (const c of dirs.splice(0)) c();
});
const tmp = () => {
  const t = tempDir('receipts-sink-');
  dirs.push(t.cleanup);
  return t.dir;
};
const ev = (i: number) => ({ namespace: 'acme/sdk', action: 'recall', caller: `u${i}`, units: i });
const fast = { flushIntervalMs: 5, retry: { baseMs: 2, maxMs: 10 } };

describe('sinks', () => {
  it('memory: delivered once per request id; a retry answer is retried with the same ids', async () => {
    const sink = createMemorySink();
    let fail = 2;
    const seen: string[][] = [];
    sink.answer = (events) => {
      seen.push(events.map((e) => e.request_id));
      return fail-- > 0 ? { kind: 'retry', error: new Error('down') } : undefined;
    };
    const client = createUsageClient({ sink, ...fast });
    for (let i = 0; i < 5; i++) client.record(ev(i));
    await client.close();
    expect(sink.events.map((e) => e.units)).toEqual([0, 1, 2, 3, 4]);
    expect(seen).toHaveLength(3);
    expect(seen[0]).toEqual(seen[2]); // the same request ids on every attempt
    expect(client.stats()).toMatchObject({ sent: 5, retried: 2 });
  });

  it('a sink that throws is retried; refused and per-event answers reach onRejected', async () => {
    let calls = 0;
    const rejected: Rejection[] = [];
    const sink: Sink = {
      name: 'flaky',
      async send(events) {
        if (++calls === 1) throw new Error('socket hang up');
        if (events[0]!.caller === 'u0')
          return {
            kind: 'done',
            results: [{ status: 'created' }, { status: 'rejected', errors: [{ path: 'caller', rule: 'nope', message: 'no' }] }],
          };
        return { kind: 'refused', errors: [{ path: '', rule: 'forbidden', message: 'no' }] };
      },
    };
    const errors: Error[] = [];
    const client = createUsageClient({ sink, ...fast, batchSize: 2, onRejected: (r) => rejected.push(r), onError: (e) => errors.push(e) });
    for (let i = 0; i < 4; i++) client.record(ev(i));
    await client.close();
    expect(errors[0]!.message).toBe('sink flaky: socket hang up');
    expect(rejected.map((r) => [r.event.caller, r.errors[0]!.rule])).toEqual([
      ['u1', 'nope'],
      ['u2', 'forbidden'],
      ['u3', 'forbidden'],
    ]);
    expect(client.stats()).toMatchObject({ sent: 1, rejected: 3, retried: 1 });
  });

  it('a sink that never answers is aborted after timeoutMs (a TimeoutError on its signal) and the batch is retried', async () => {
    const reasons: unknown[] = [];
    let calls = 0;
    const sink: Sink = {
      name: 'hangs-once',
      send: (_events, signal) => {
        if (++calls > 1) return Promise.resolve({ kind: 'done' });
        return new Promise((_, reject) => signal.addEventListener('abort', () => (reasons.push(signal.reason), reject(signal.reason))));
      },
    };
    const errors: Error[] = [];
    const client = createUsageClient({ sink, ...fast, timeoutMs: 50, onError: (e) => errors.push(e) });
    client.record(ev(1));
    const t0 = performance.now();
    await client.flush();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    expect((reasons[0] as Error).name).toBe('TimeoutError');
    expect(errors[0]!.message).toMatch(/^sink hangs-once: the sink did not answer within 50 ms/);
    expect(client.stats()).toMatchObject({ sent: 1, retried: 1 });
    await client.close();
  });

  it('keeps no delivered event reachable (a long-lived client must not hold what it sent)', async () => {
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const sink: Sink = { name: 'drop', send: async () => ({ kind: 'done' }) };
    const client = createUsageClient({ sink, ...fast, batchSize: 10 });
    const refs: WeakRef<object>[] = [];
    // Built in a function of its own, so no stack slot of this test keeps the last one.
    const recordOne = (i: number) => {
      const e = { ...ev(i), metadata: { payload: 'x'.repeat(100) } };
      refs.push(new WeakRef(e.metadata));
      client.record(e);
    };
    for (let i = 0; i < 25; i++) recordOne(i);
    await client.flush();
    await new Promise((r) => setTimeout(r, 10));
    collect();
    expect(refs.flatMap((r, i) => (r.deref() === undefined ? [] : [i]))).toEqual([]);
    await client.close();
  });

  it('jsonl: one event per line, appended; the reader skips malformed lines and repeats and reports them', async () => {
    const file = join(tmp(), 'usage.jsonl');
    writeFileSync(file, '{"request_id":"old","namespace":"acme/x","action":"a","caller":"c"}\n{"torn":'); // a crash mid-line
    const client = createUsageClient({ sink: createJsonlSink(file), ...fast });
    for (let i = 0; i < 3; i++) client.record({ ...ev(i), request_id: `r${i}` });
    await client.close();
    appendFileSync(
      file,
      'not json\n[1,2]\n{"request_id":"r1","namespace":"acme/sdk","action":"recall","caller":"u1","units":1}\n{"request_id":"","namespace":"n","action":"a","caller":"c"}\n',
    );
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[1]).toBe('{"torn":'); // the torn line stayed alone on its line
    const read = await readJsonl(file);
    expect(read.events.map((e) => e.request_id)).toEqual(['old', 'r0', 'r1', 'r2']);
    expect(read.events[1]).toEqual({ ...ev(0), request_id: 'r0' });
    expect(read.malformed.map((m) => m.line)).toEqual([2, 6, 7, 9]);
    expect(read.malformed[0]!.reason).toMatch(/not JSON/);
    expect(read.malformed[3]!.reason).toMatch(/request_id must be a non-empty string/);
    expect(read.duplicates).toBe(1);
  });

  it('memory: a request id again with other content, ts and metadata included, is a conflict, as the service answers', async () => {
    const sink = createMemorySink();
    const base = { ...ev(1), request_id: 'same', ts: 1_700_000_000_000, metadata: { a: 1, b: 'x' } };
    const answers = await sink.send(
      [
        base,
        { ...base, metadata: { b: 'x', a: 1 } },
        { ...base, ts: undefined },
        { ...base, ts: base.ts + 1 },
        { ...base, metadata: { a: 2, b: 'x' } },
        { ...base, units: 2 },
      ],
      new AbortController().signal,
    );
    expect(answers.kind === 'done' && answers.results!.map((r) => r.status)).toEqual([
      'created',
      'duplicate',
      'duplicate',
      'conflict',
      'conflict',
      'conflict',
    ]);
    expect(sink.events).toHaveLength(1);
    // Normalized as the service does: the same instant in RFC 3339, units left out (1), metadata
    // left out (null, which is not {}), and another namespace (its own ids).
    const plain = { namespace: 'acme/sdk', action: 'recall', caller: 'u', request_id: 'n1', ts: 1_700_000_000_000 };
    const second = await sink.send(
      [
        plain,
        { ...plain, ts: new Date(plain.ts).toISOString() },
        { ...plain, units: 1 },
        { ...plain, metadata: {} },
        { ...plain, namespace: 'acme/other' },
        { ...plain, action: 'Bad Action!' },
      ],
      new AbortController().signal,
    );
    expect(second.kind === 'done' && second.results!.map((r) => r.status)).toEqual([
      'created',
      'duplicate',
      'duplicate',
      'conflict',
      'created',
      'rejected',
    ]);
  });

  it('jsonl: U+2028 and U+2029 in a field stay on one line, for this reader and any other; CRLF and long lines', async () => {
    const file = join(tmp(), 'separators.jsonl');
    const client = createUsageClient({ sink: createJsonlSink(file), ...fast });
    client.record({ ...ev(1), request_id: 'sep', caller: 'a\u2028b\u2029c' });
    client.record({ ...ev(2), request_id: 'plain' });
    await client.close();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toMatch(/[\u2028\u2029]/); // escaped: Node's readline and Python's splitlines split there
    expect(text.split('\n')).toHaveLength(3);
    // A file written by someone else: raw separators inside a string, CRLF, and a line past the limit.
    appendFileSync(
      file,
      `{"request_id":"raw","namespace":"acme/x","action":"a","caller":"x\u2028y"}\r\n{"request_id":"big","namespace":"acme/x","action":"a","caller":"${'z'.repeat(70_000)}"}\n{"request_id":"after","namespace":"acme/x","action":"a","caller":"c"}`,
    );
    const read = await readJsonl(file);
    expect(read.events.map((e) => [e.request_id, e.caller])).toEqual([
      ['sep', 'a\u2028b\u2029c'],
      ['plain', 'u2'],
      ['raw', 'x\u2028y'],
      ['after', 'c'],
    ]);
    expect(read.malformed).toEqual([{ line: 4, reason: 'longer than 65536 characters' }]);
  });

  it('sinks by name: jsonl after importing its module, memory, and any registered one; unknown names say what to do', async () => {
    const file = join(tmp(), 'named.jsonl');
    const a = createUsageClient({ sink: `jsonl:${file}`, ...fast });
    a.record({ ...ev(1), request_id: 'by-name' });
    await a.close();
    expect((await readJsonl(file)).events.map((e) => e.request_id)).toEqual(['by-name']);

    const got: QueuedEvent[] = [];
    registerSink('collect', (target) => ({ name: `collect(${target})`, send: async (events) => (got.push(...events), { kind: 'done' }) }));
    const b = createUsageClient({ sink: 'collect:anything', ...fast });
    b.record(ev(7));
    await b.close();
    expect(got.map((e) => e.units)).toEqual([7]);

    expect(() => createUsageClient({ sink: 'kafka:topic' })).toThrow(
      /unknown sink "kafka" \(registered: collect, http, jsonl, memory\); register it first/,
    );
    expect(() => createUsageClient({ sink: 'http' })).toThrow(/needs url/);
    expect(() => registerSink('Bad Name', () => createMemorySink())).toThrow(/must match/);
    await expect(createUsageClient({ sink: 'memory' }).receipt(1)).rejects.toThrow(/memory sink has no receipts/);
  });

  it('the SQLite spool stays under any sink: undelivered events survive a restart and go out once', async () => {
    const spoolFile = join(tmp(), 'spool.db');
    const down: Sink = { name: 'down', send: async () => ({ kind: 'retry', error: new Error('unreachable') }) };
    const first = createUsageClient({
      sink: down,
      spool: createSqliteSpool(spoolFile),
      flushIntervalMs: 5,
      retry: { baseMs: 60_000, maxMs: 60_000 },
    });
    for (let i = 0; i < 4; i++) first.record({ ...ev(i), request_id: `s${i}` });
    // The process dies here: nothing delivered, nothing closed cleanly.
    const sink = createMemorySink();
    const second = createUsageClient({ sink, spool: createSqliteSpool(spoolFile), ...fast });
    await second.close();
    expect(sink.events.map((e) => e.request_id)).toEqual(['s0', 's1', 's2', 's3']);
    void first;
  });
});
