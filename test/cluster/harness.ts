// Service instances in their own processes for the cluster tests (instance.ts), and what the
// tests ask of them: the next stdout line matching a pattern, the role /healthz reports.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { ChainServer } from './http-chain.ts';

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));

export interface Instance {
  name: string;
  proc: ChildProcess;
  url: string;
  out: () => string;
  /** Resolves at the next stdout line matching re. */
  next: (re: RegExp) => Promise<string>;
  exited: Promise<unknown>;
}

export function start(db: string, chainUrl: string, name: string, env: Record<string, string> = {}): Promise<Instance> {
  const proc = spawn(process.execPath, [INSTANCE, db, chainUrl, name], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  let buffered = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.re.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const next = (re: RegExp) => new Promise<string>((resolve) => waiters.push({ re, resolve }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${out}`)), 30_000);
    void next(/^listening /).then((line) => {
      clearTimeout(timer);
      resolve({ name, proc, url: line.slice('listening '.length), out: () => out, next, exited });
    });
    void exited.then(() => reject(new Error(`${name} exited:\n${out}`)));
  });
}

export const role = async (i: Instance): Promise<string | null> => {
  try {
    return ((await (await fetch(`${i.url}/healthz`)).json()) as { role: string }).role;
  } catch {
    return null;
  }
};

export async function leaderOf(instances: Instance[], timeoutMs = 15_000): Promise<Instance> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const i of instances) if ((await role(i)) === 'leader') return i;
    if (Date.now() > end) throw new Error('no leader');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * For a describe block: one throw-away PostgreSQL cluster and one fake chain, started before its
 * tests; every instance pushed onto `instances` is killed after them (woken first if paused).
 */
export function clusterFixture(): { cluster: () => PostgresCluster; chain: ChainServer; instances: Instance[] } {
  let cluster: PostgresCluster | null = null;
  const chain = new ChainServer();
  const instances: Instance[] = [];
  beforeAll(async () => {
    cluster = await startPostgres();
    await chain.start();
  }, 60_000);
  afterAll(async () => {
    for (const i of instances) {
      i.proc.kill('SIGCONT');
      i.proc.kill('SIGKILL');
    }
    await chain.stop();
    await cluster?.stop();
  });
  return { cluster: () => cluster!, chain, instances };
}
