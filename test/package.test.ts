// What a consumer of the package gets: the compiled entries (built by `npm ci` through prepare)
// load in plain Node and expose the client, the verifier and the spool.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

it('the built package imports as sui-receipts and sui-receipts/spool', () => {
  expect(existsSync(`${ROOT}dist/index.js`), 'dist/ is missing: run npm run build (npm ci runs it)').toBe(true);
  const script = `
    const m = await import('sui-receipts');
    const s = await import('sui-receipts/spool');
    console.log(JSON.stringify([typeof m.createUsageClient, typeof m.verifyReceipt, typeof m.leafHash, typeof s.createSqliteSpool, m.verifyReceipt({}).ok]));
  `;
  // Resolved through the package's own exports (self-reference), as a dependent would.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual(['function', 'function', 'function', 'function', false]);
});

it('the metering entries import from the built package: fastify, express, edge, upstream, sinks', () => {
  expect(existsSync(`${ROOT}dist/middleware/fastify.js`), 'dist/ is stale: run npm run build').toBe(true);
  const script = `
    const m = await import('sui-receipts');
    const f = await import('sui-receipts/fastify');
    const e = await import('sui-receipts/express');
    const g = await import('sui-receipts/edge');
    const u = await import('sui-receipts/upstream');
    const s = await import('sui-receipts/sinks');
    const sink = m.createMemorySink();
    const client = m.createUsageClient({ sink, flushIntervalMs: 60000 });
    const handler = g.meterHandler(() => new Response('ok'), { client, namespace: 'acme/pkg', caller: () => 'u', action: 'a' });
    const waited = [];
    await (await handler(new Request('https://x.example/', { headers: { 'x-request-id': 'pkg-1' } }), { waitUntil: (p) => waited.push(p) })).text();
    await Promise.all(waited);
    console.log(JSON.stringify([typeof f.meterRequests, typeof e.meterRequests, typeof u.meteredFetch, typeof s.createJsonlSink, typeof s.readJsonl, m.registeredSinks(), sink.events.map((x) => x.request_id)]));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual([
    'function',
    'function',
    'function',
    'function',
    'function',
    ['http', 'jsonl', 'memory'],
    ['pkg-1'],
  ]);
});
