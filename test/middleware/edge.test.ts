// The edge wrapper as a runtime calls it: (request, ctx) with ctx.waitUntil; and the two
// properties an edge bundle needs: no Node-only import, and upstream metering that degrades to
// the plain fetch where AsyncLocalStorage is missing.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createMemorySink, createUsageClient } from '../../src/index.ts';
import { meterHandler } from '../../src/middleware/edge.ts';
import { meteredFetch } from '../../src/middleware/upstream.ts';

type Ctx = { waitUntil(p: Promise<unknown>): void };
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function runtime() {
  const waited: Promise<unknown>[] = [];
  return { ctx: { waitUntil: (p: Promise<unknown>) => void waited.push(p) }, waited };
}

describe('edge meterHandler', () => {
  it('records once the body was read to the end, and hands the flush to waitUntil', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 60_000 });
    const handler = meterHandler(
      async (req: Request, _ctx: { waitUntil(p: Promise<unknown>): void }) =>
        new Response(`hello ${new URL(req.url).searchParams.get('n')}`),
      {
        client,
        namespace: 'acme/edge',
        caller: (r) => r.headers.get('x-user') ?? '',
        action: 'ai_query',
        route: () => '/hello',
      },
    );
    const { ctx, waited } = runtime();
    const res = await handler(
      new Request('https://x.example/hello?n=1', {
        headers: { 'x-user': 'u1', 'x-request-id': 'edge-1', authorization: 'Bearer nope-secret' },
      }),
      ctx,
    );
    expect(waited).toHaveLength(1);
    expect(sink.events).toHaveLength(0); // the body has not been sent yet
    expect(await res.text()).toBe('hello 1');
    await Promise.all(waited); // what the runtime does after the response
    expect(sink.events).toEqual([
      expect.objectContaining({
        request_id: 'edge-1',
        namespace: 'acme/edge',
        caller: 'u1',
        action: 'ai_query',
        units: 1,
        metadata: expect.objectContaining({ route: '/hello', status: 200, bytes_out: 7, method: 'GET' }),
      }),
    ]);
    expect(JSON.stringify(sink.events)).not.toContain('nope-secret');
  });

  it('a cancelled streamed body, a thrown handler and a refusal: one event each', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 60_000 });
    const handler = meterHandler(
      async (req: Request, _ctx: Ctx) => {
        const kind = req.headers.get('x-kind');
        if (kind === 'throw') throw new Error('handler failed');
        if (kind === 'limit') return new Response('slow down', { status: 429 });
        let i = 0;
        return new Response(new ReadableStream({ pull: (c) => void c.enqueue(new TextEncoder().encode(`chunk ${i++}\n`)) }));
      },
      { client, namespace: 'acme/edge', caller: () => 'u', action: 'stream' },
    );
    const call = async (kind: string) => {
      const { ctx, waited } = runtime();
      const res = await handler(new Request('https://x.example/', { headers: { 'x-kind': kind, 'x-request-id': kind } }), ctx).catch(
        (e: Error) => e,
      );
      return { res, waited };
    };
    const stream = await call('stream');
    const reader = (stream.res as Response).body!.getReader();
    await reader.read();
    await reader.cancel('client went away');
    const thrown = await call('throw');
    expect(thrown.res).toBeInstanceOf(Error);
    const limited = await call('limit');
    await (limited.res as Response).text();
    await Promise.all([...stream.waited, ...thrown.waited, ...limited.waited]);
    const by = Object.fromEntries(sink.events.map((e) => [e.request_id, e]));
    expect(sink.events).toHaveLength(3);
    expect(by.stream).toMatchObject({ units: 0, metadata: { aborted: true, status: 200 } });
    expect((by.stream!.metadata!.bytes_out as number) > 0).toBe(true);
    expect(by.throw).toMatchObject({ units: 0, metadata: { status: 500 } });
    expect(by.limit).toMatchObject({ units: 0, metadata: { status: 429, admission: 'rate_limited' } });
  });

  it('the answer does not wait for a service that never answers', async () => {
    const sink = createMemorySink();
    sink.answer = () => new Promise(() => {});
    const client = createUsageClient({ sink, flushIntervalMs: 0 });
    const handler = meterHandler((_req: Request, _ctx: Ctx) => new Response('ok'), {
      client,
      namespace: 'acme/edge',
      caller: () => 'u',
      action: 'a',
    });
    const t = performance.now();
    for (let i = 0; i < 20; i++) expect(await (await handler(new Request('https://x.example/'), runtime().ctx)).text()).toBe('ok');
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('builds its client from the handler arguments (Workers env), once', async () => {
    const sink = createMemorySink();
    let built = 0;
    const handler = meterHandler((_req: Request, _env: { SINK: typeof sink }, _ctx: unknown) => new Response(null, { status: 204 }), {
      client: (env) => (built++, createUsageClient({ sink: env.SINK })),
      namespace: 'acme/edge',
      caller: () => 'u',
      action: 'a',
    });
    for (let i = 0; i < 3; i++) {
      const { ctx, waited } = runtime();
      await handler(new Request('https://x.example/'), { SINK: sink }, ctx);
      await Promise.all(waited);
    }
    expect(built).toBe(1);
    expect(sink.events).toHaveLength(3);
  });

  it('the edge and upstream entries bundle for a browser-like runtime: no Node-only import', async () => {
    for (const entry of ['src/middleware/edge.ts', 'src/middleware/upstream.ts', 'src/index.ts']) {
      const out = await build({
        entryPoints: [`${ROOT}${entry}`],
        bundle: true,
        write: false,
        platform: 'browser',
        format: 'esm',
        metafile: true,
        logLevel: 'silent',
      });
      const inputs = Object.keys(out.metafile.inputs);
      expect(
        inputs.filter((i) => i.startsWith('node:') || /\bsrc\/client\/(spool|sinks\/jsonl)\.ts$|node-http/.test(i)),
        entry,
      ).toEqual([]);
      expect(out.outputFiles[0]!.text).not.toMatch(/from\s*["']node:|require\(["']node:/);
    }
  });

  it('where AsyncLocalStorage is missing, metered fetch is the plain fetch and the request is still metered', () => {
    // A fresh process without AsyncLocalStorage (no global, no node:async_hooks through getBuiltinModule).
    const script = `
      delete globalThis.AsyncLocalStorage;
      process.getBuiltinModule = (id) => { if (String(id).includes('async_hooks')) throw new Error('no async_hooks here'); return undefined; };
      const { createUsageClient, createMemorySink } = await import('./src/index.ts');
      const { meterHandler } = await import('./src/middleware/edge.ts');
      const { meteredFetch } = await import('./src/middleware/upstream.ts');
      const sink = createMemorySink();
      const client = createUsageClient({ sink, flushIntervalMs: 60000 });
      let calls = 0;
      const up = meteredFetch({ provider: 'openai', fetch: async () => (calls++, new Response('upstream says hi')) });
      const handler = meterHandler(async () => new Response(await (await up('https://api.example/')).text()), { client, namespace: 'acme/edge', caller: () => 'u', action: 'a' });
      const waited = [];
      const res = await handler(new Request('https://x.example/', { headers: { 'x-request-id': 'r1' } }), { waitUntil: (p) => waited.push(p) });
      const text = await res.text();
      await Promise.all(waited);
      console.log(JSON.stringify({ text, calls, ids: sink.events.map((e) => e.request_id) }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ text: 'upstream says hi', calls: 1, ids: ['r1'] });
  });

  it('upstream metering records a failed call with units 0 and rethrows', async () => {
    const sink = createMemorySink();
    const client = createUsageClient({ sink, flushIntervalMs: 60_000 });
    const up = meteredFetch({
      provider: 'search',
      fetch: (async () => {
        throw new TypeError('fetch failed');
      }) as unknown as typeof fetch,
    });
    const handler = meterHandler(
      async (_req: Request, _ctx: Ctx) => {
        await up('https://search.example/q').catch(() => {});
        return new Response('degraded');
      },
      { client, namespace: 'acme/edge', caller: () => 'u', action: 'a' },
    );
    const { ctx, waited } = runtime();
    await (await handler(new Request('https://x.example/', { headers: { 'x-request-id': 'in' } }), ctx)).text();
    await Promise.all(waited);
    expect(sink.events.map((e) => [e.request_id, e.units, e.metadata?.error ?? null])).toEqual([
      ['in.search.1', 0, 'network'],
      ['in', 1, null],
    ]);
    expect(() => meteredFetch({ provider: 'Bad Name' })).toThrow(/provider must be/);
  });
});
