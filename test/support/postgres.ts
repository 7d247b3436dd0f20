// A throw-away PostgreSQL cluster for tests: initdb into a temp dir, a server on a free
// loopback port (no TCP beyond 127.0.0.1, its socket in the same dir), trust auth, removed on stop().
// Without PostgreSQL installed the tests skip with one warning, unless CI=true or
// RECEIPTS_REQUIRE_POSTGRES=1, where a missing server is a failure.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:PORT/receipts */
  url: string;
  stop(): Promise<void>;
  /** pg_ctl on the same data directory: stop (fast), start, or restart (fast), waiting until done. */
  ctl(action: 'stop' | 'start' | 'restart'): Promise<void>;
}

/** On CI (CI=true) or when asked (RECEIPTS_REQUIRE_POSTGRES=1), a missing PostgreSQL fails the tests. */
export function postgresRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.RECEIPTS_REQUIRE_POSTGRES === '1';
}

export interface FindOptions {
  /** Where versioned installs live (Debian: /usr/lib/postgresql/N/bin). */
  roots?: string[];
  /** Searched after them; default $PATH. */
  path?: string;
}

/** The directory holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else PATH. */
export function findPostgresBin(options: FindOptions = {}): string | null {
  for (const root of options.roots ?? ['/usr/lib/postgresql']) {
    if (!existsSync(root)) continue;
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const bin = join(root, v, 'bin');
      if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
    }
  }
  for (const dir of (options.path ?? process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a fresh cluster, or returns null (after one loud warning) when PostgreSQL is not
 * installed; throws instead when it is required (CI).
 */
export async function startPostgres(options: FindOptions = {}): Promise<PostgresCluster | null> {
  const bin = findPostgresBin(options);
  if (!bin) {
    const how = 'install PostgreSQL (apt-get install postgresql) to run them';
    if (postgresRequired())
      throw new Error(
        `PostgreSQL tests are required here (CI=true or RECEIPTS_REQUIRE_POSTGRES=1) but initdb/pg_ctl were not found: ${how}`,
      );
    console.warn(`⚠ SKIPPING the PostgreSQL engine tests: initdb/pg_ctl not found; ${how}.`);
    return null;
  }

  const dir = mkdtempSync(join(tmpdir(), 'receipts-pg-'));
  const data = join(dir, 'data');
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const pgRun = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : run(join(bin, tool), args);

  try {
    await pgRun('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    let port = 0;
    const serverOptions = () => `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c max_connections=200`;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await pgRun('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', serverOptions(), 'start']);
        break;
      } catch (err) {
        if (attempt >= 3) throw err; // the port may have been taken meanwhile: try another
      }
    }
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    await admin.query('CREATE DATABASE receipts');
    await admin.end();
    const url = `postgres://postgres@127.0.0.1:${port}/receipts`;
    let stopped = false;
    return {
      url,
      async stop() {
        if (stopped) return;
        stopped = true;
        await pgRun('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      },
      async ctl(action) {
        const mode = action === 'start' ? [] : ['-m', 'fast'];
        await pgRun('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', ...mode, '-o', serverOptions(), action]);
      },
    };
  } catch (err) {
    let log = '';
    try {
      log = readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000);
    } catch {}
    await pgRun('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start a test PostgreSQL cluster with ${bin}: ${(err as Error).message}\n${log}`);
  }
}

/** A new empty database on the same server, for one test suite's isolation; returns its URL. */
export async function freshDatabase(url: string): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
