// Helpers for the benchmarks: a free port, a server child process, its peak RSS.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The V8 flags `npm start` and the `receipts` bin run with; both servers of a bench get them. */
export const SERVE_NODE_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=256'];

/**
 * BENCH_SEMI_SPACE_MB: every server of a bench (service and baseline alike) runs with this young
 * generation instead, to measure the trade between peak RSS and garbage collection (see
 * docs/performance.md, "Ingest at the machine's limit").
 */
const semiSpace = process.env.BENCH_SEMI_SPACE_MB;
if (semiSpace !== undefined && !/^[1-9][0-9]{0,3}$/.test(semiSpace))
  throw new Error(`BENCH_SEMI_SPACE_MB must be a number of MB, not "${semiSpace}"`);
const NODE_FLAGS = semiSpace ? [...SERVE_NODE_FLAGS, `--max-semi-space-size=${semiSpace}`] : SERVE_NODE_FLAGS;

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `node <args…> <port>` and waits for GET /healthz. */
export async function startServer(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [...NODE_FLAGS, ...args, String(port)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  let exited = false;
  proc.once('exit', () => (exited = true));
  for (let i = 0; i < 400 && !exited; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { proc, url };
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill();
  throw new Error(`server did not start${exited ? ' (it exited: see its error above)' : ' within 20 s'}: ${args.join(' ')}`);
}

/** Stops a server child; returns its peak resident set size in MB (VmHWM). */
export async function stopServer(proc: ChildProcess): Promise<number> {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  return hwm ? Number(hwm[1]) / 1024 : NaN;
}
