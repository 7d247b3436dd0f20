// The PostgreSQL URL without a password on the command line: RECEIPTS_DATABASE_URL in place of
// --db, the password from PGPASSWORD or ~/.pgpass (pg's own), and a warning for one in argv.
// Against a real cluster whose pg_hba asks one role for a SCRAM password over TCP.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.ts';
import { freshDatabase, startPostgres } from '../support/postgres.ts';
import { logKeyFile, MAIN, serve } from './run.ts';

const cluster = await startPostgres();
const t = tempDir('receipts-dburl-');
const ROLE = 'receipts_pw';
const PASSWORD = 'pw-Only-For-This-Test-5521';
afterAll(async () => {
  await cluster?.stop();
  t.cleanup();
});

/** The environment without the runner's own PG* and RECEIPTS_* settings, plus env. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PG|RECEIPTS_)/.test(k)));
  return { ...base, HOME: t.dir, ...env }; // HOME: no ~/.pgpass of the machine's
}

function receipts(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: cleanEnv(env), timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const WARNING = /warning: the --db URL carries a password on the command line: put the password in PGPASSWORD or ~\/\.pgpass/;

describe.skipIf(!cluster)('the database URL and its password', () => {
  let port: string;
  /** The password-protected role's database, the URL without a password. */
  let roleUrl: string;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: cluster!.url });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`); // SCRAM-hashed (PostgreSQL 14+ default)
      await admin.query(`CREATE DATABASE pwdb OWNER ${ROLE}`);
      // The throw-away cluster trusts everyone; this role must give its password over TCP.
      const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
      const lines = [
        'local all all trust',
        `host all ${ROLE} 127.0.0.1/32 scram-sha-256`,
        'host all all 127.0.0.1/32 trust',
        'host all all ::1/128 trust',
      ];
      await admin.query(`COPY (SELECT unnest($$${`{${lines.map((l) => `"${l}"`).join(',')}}`}$$::text[])) TO '${hba}'`);
      await admin.query('SELECT pg_reload_conf()');
      const errors = (await admin.query('SELECT error FROM pg_hba_file_rules WHERE error IS NOT NULL')).rows;
      expect(errors).toEqual([]);
    } finally {
      await admin.end();
    }
    port = new URL(cluster!.url).port;
    roleUrl = `postgres://${ROLE}@127.0.0.1:${port}/pwdb`;
  });

  it('takes the URL from RECEIPTS_DATABASE_URL when --db is absent (keys, seal), ahead of RECEIPTS_DB', async () => {
    const url = await freshDatabase(cluster!.url);
    const sqlite = join(t.dir, 'not-this.db');
    const env = { RECEIPTS_DATABASE_URL: url, RECEIPTS_DB: sqlite };
    const created = receipts(['keys', 'create', '--owner', 'acme', '--namespace', 'acme/*', '--json'], env);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const { id } = JSON.parse(created.stdout);
    const list = receipts(['keys', 'list', '--json'], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((k: { id: string }) => k.id)).toEqual([id]);
    const sealed = receipts(['seal'], env);
    expect(sealed.code).toBe(0);
    expect(sealed.stdout).toMatch(/nothing to seal/);
    expect(existsSync(sqlite)).toBe(false);
    // The key is in PostgreSQL, not in some file.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    expect((await c.query('SELECT count(*)::int AS n FROM api_keys')).rows[0].n).toBe(1);
    await c.end();
  });

  it('a URL without a password: pg takes it from PGPASSWORD; none or a wrong one is refused with what to set', () => {
    const none = receipts(['keys', 'list', '--db', roleUrl]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/the database asks for a password and none was given: put the password in PGPASSWORD or ~\/\.pgpass/);
    const wrong = receipts(['keys', 'list', '--db', roleUrl], { PGPASSWORD: 'not-it' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/password authentication failed for user "receipts_pw"/);
    expect(wrong.stderr).not.toContain('not-it');
    const right = receipts(['keys', 'create', '--db', roleUrl, '--owner', 'acme', '--namespace', 'acme/*', '--json'], {
      PGPASSWORD: PASSWORD,
    });
    expect(right.stderr).toBe(''); // no warning: nothing secret in argv
    expect(right.code).toBe(0);
    expect(right.stdout + right.stderr).not.toContain(PASSWORD);
    // Also with the URL itself in the environment.
    expect(receipts(['keys', 'list', '--json'], { RECEIPTS_DATABASE_URL: roleUrl, PGPASSWORD: PASSWORD }).code).toBe(0);
  });

  // pg 8 reads it itself, with a DeprecationWarning on stderr (pg 9 drops it; see the README).
  it('a URL without a password: pg takes it from ~/.pgpass (0600)', () => {
    writeFileSync(join(t.dir, '.pgpass'), `127.0.0.1:${port}:pwdb:${ROLE}:${PASSWORD}\n`, { mode: 0o600 });
    const r = receipts(['keys', 'list', '--json'], { RECEIPTS_DATABASE_URL: roleUrl });
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });

  it('serve: every connection it opens (pool, leadership, key changes) takes PGPASSWORD', async () => {
    const s = await serve(['--log-key', logKeyFile(t.dir)], {
      ...cleanEnv({ RECEIPTS_DATABASE_URL: roleUrl, PGPASSWORD: PASSWORD }),
    } as Record<string, string>);
    try {
      const health = await (await fetch(`${s.url}/healthz`)).json();
      expect(health).toMatchObject({ role: 'leader' });
    } finally {
      s.proc.kill('SIGTERM');
      await s.exited;
    }
    expect(s.output()).not.toContain(PASSWORD);
    expect(s.output()).toMatch(/"engine":"postgres"/);
    // --synchronous is SQLite's: the PostgreSQL start line does not claim it.
    expect(s.output()).not.toMatch(/"synchronous"/);
  });

  it('warns, without the password, when one is given on the command line; not when it comes from the environment', () => {
    const u = new URL(roleUrl);
    u.password = PASSWORD;
    const inArgv = receipts(['keys', 'list', '--db', u.toString()]);
    expect(inArgv.code).toBe(0); // a warning, not a refusal
    expect(inArgv.stderr).toMatch(WARNING);
    expect(inArgv.stdout + inArgv.stderr).not.toContain(PASSWORD);
    const query = receipts(['keys', 'list', '--db', `${roleUrl}?password=${PASSWORD}`]);
    expect(query.code).toBe(0);
    expect(query.stderr).toMatch(WARNING);
    const fromEnv = receipts(['keys', 'list'], { RECEIPTS_DATABASE_URL: u.toString() });
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.stderr).toBe('');
  });
});
