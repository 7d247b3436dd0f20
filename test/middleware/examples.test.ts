// Every example in examples/ run as written, as a real process against a real service: a request
// answered just before SIGTERM or SIGINT reaches the ledger, and the process exits 0.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { testServer, until, type TestServer } from '../helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe.each([
  ['examples/fastify.ts', 'SIGTERM'],
  ['examples/express.ts', 'SIGINT'],
] as const)('%s', (file, signal) => {
  it(`sends the request answered just before ${signal} to the service and exits 0`, async () => {
    server = await testServer();
    const service = await server.app.listen({ port: 0, host: '127.0.0.1' });
    const port = await freePort();
    const child = spawn(process.execPath, [file], {
      cwd: ROOT,
      env: { ...process.env, RECEIPTS_URL: service, RECEIPTS_API_KEY: server.key, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      await until(async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok === true, 20_000);
      const id = `example-${signal}-${Date.now()}`;
      const res = await fetch(`${url}/recall`, { headers: { 'x-user-id': 'user-7', 'x-request-id': id } });
      expect(res.status).toBe(200);
      await res.text();
      child.kill(signal); // well before the client's 1 s flush interval
      expect(await exited, output).toBe(0);
      const stored = await server.sql<{ caller: string; units: number }>('SELECT caller, units FROM events WHERE request_id = ?', id);
      expect(stored.map((e) => [e.caller, Number(e.units)])).toEqual([['user-7', file.includes('fastify') ? 3 : 1]]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 40_000);
});

it('examples/fastify.ts logs a request its caller function gives nothing for', async () => {
  const port = await freePort();
  // No service needed to see the log line: nothing is sent for it.
  const child = spawn(process.execPath, ['examples/fastify.ts'], {
    cwd: ROOT,
    env: { ...process.env, RECEIPTS_URL: 'http://127.0.0.1:9', RECEIPTS_API_KEY: 'unused', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const url = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok === true, 20_000);
    expect((await fetch(`${url}/recall`)).status).toBe(200); // no x-user-id
    await until(() => /caller\(request\) gave undefined.*not metered/.test(output), 5_000);
    child.kill('SIGTERM');
    expect(await exited, output).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 40_000);
