// Key rights (docs/design.md "Key rights"): each route needs a right, a key without it gets
// 403 right_missing naming it, keys made before rights keep record and read, and the CLI sets and
// shows rights. On both engines, through HTTP (fastify inject) and the CLI as a real process.
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import { existsSync, rmSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { protectedRoutes } from '../../src/api/auth.ts';
import { installErrorHandlers } from '../../src/api/errors.ts';
import { newKey } from '../../src/ledger/api-keys.ts';
import { isPostgresUrl, type KeyStore, openLedger, type Right, RIGHTS } from '../../src/ledger/index.ts';
import { loadMigrations as loadPgMigrations, migrate as migratePg } from '../../src/ledger/postgres/db.ts';
import { loadMigrations as loadSqliteMigrations, migrate as migrateSqlite, openDb } from '../../src/ledger/sqlite/db.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { event, serverEachTest, tempDir } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';
import { receipts } from '../cli/run.ts';

/** A service with protected routes only, as a later route (meters, corrections) adds one. */
function appWith(keys: KeyStore, register: (app: FastifyInstance) => void) {
  const app = Fastify();
  installErrorHandlers(app);
  void app.register(protectedRoutes(keys, register));
  return app;
}

/** Runs one statement (`?` placeholders) on the ledger at location, with a connection of its own. */
async function sqlOn(location: string, text: string, params: unknown[] = []): Promise<void> {
  if (!isPostgresUrl(location)) {
    const db = new Database(location);
    db.prepare(text).run(...params);
    db.close();
    return;
  }
  const client = new pg.Client({ connectionString: location });
  await client.connect();
  let n = 0;
  await client.query(
    text.replace(/\?/g, () => `$${++n}`),
    params,
  );
  await client.end();
}

forEachEngine((fresh, engine) => {
  /** An empty ledger with the schema as it was before key rights (migrations up to 006); its location. */
  const schemaBeforeRights = async (): Promise<string> => {
    const { ledger } = await fresh();
    const location = ledger.location;
    await ledger.close();
    if (isPostgresUrl(location)) {
      await sqlOn(location, 'DROP SCHEMA public CASCADE');
      await sqlOn(location, 'CREATE SCHEMA public');
      const pool = new pg.Pool({ connectionString: location });
      await migratePg(
        pool,
        location,
        loadPgMigrations().filter((m) => m.version < 7),
      );
      await pool.end();
    } else {
      for (const f of [location, `${location}-wal`, `${location}-shm`]) rmSync(f, { force: true });
      const db = openDb(location, { migrate: false });
      migrateSqlite(
        db,
        location,
        loadSqliteMigrations().filter((m) => m.version < 7),
      );
      db.close();
    }
    return location;
  };

  const s = serverEachTest(fresh);

  /** A key of acme/* with exactly these rights, as an Authorization header. */
  const keyWith = async (rights: Right[]) => {
    const k = await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, rights);
    return { authorization: `Bearer ${k.key}` };
  };
  const post = (headers: Record<string, string>, body: unknown = event()) =>
    s.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...headers, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });

  describe('rights over HTTP', () => {
    it('a key without record cannot post events: 403 right_missing naming record, and nothing is stored', async () => {
      const reader = await keyWith(['read']);
      const res = await post(reader, { events: [event(), event()] });
      expect(res.statusCode).toBe(403);
      const { error } = res.json();
      expect(error.code).toBe('right_missing');
      expect(error.message).toMatch(/lacks the right record, which POST \/v1\/events needs; it has read/);
      expect(error.details).toEqual([{ path: 'authorization', rule: 'right:record', message: expect.stringMatching(/record/) }]);
      expect(await s.count()).toBe(0);
      // The same key may read.
      expect((await s.get('/v1/usage?namespace=acme/prod', reader)).statusCode).toBe(200);
    });

    it('refuses before the body is read: a 1 MiB body from a key without record is not parsed', async () => {
      const reader = await keyWith(['read', 'admin']);
      const res = await s.app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...reader, 'content-type': 'application/json' },
        payload: `{"events": [${'x'.repeat(1 << 20)}`, // not JSON: parsing it would be a 400 or 413
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('right_missing');
      expect(res.headers.connection).toBe('close');
    });

    it('a key without read can record but reads nothing: every read route answers 403 naming read', async () => {
      const recorder = await keyWith(['record']);
      const posted = await post(recorder);
      expect(posted.statusCode).toBe(200);
      const id = posted.json().results[0].id;
      await sealAll(s.ledger, { maxEvents: 1000 });
      for (const url of [
        '/v1/usage?namespace=acme/prod',
        `/v1/events/${id}/receipt`,
        `/v1/events/${id}/proof`,
        '/v1/epochs',
        '/v1/epochs/0',
        '/v1/epochs/0/chain',
        '/v1/classification',
      ]) {
        const res = await s.get(url, recorder);
        expect(res.statusCode, url).toBe(403);
        expect(res.json().error, url).toMatchObject({ code: 'right_missing', details: [{ rule: 'right:read' }] });
        expect(res.json().error.message, url).toMatch(/lacks the right read/);
      }
      // The default key (record, read) reads the same event.
      expect((await s.get(`/v1/events/${id}/receipt`)).statusCode).toBe(200);
    });

    it('correct and admin alone grant neither recording nor reading', async () => {
      const admin = await keyWith(['correct', 'admin']);
      expect((await post(admin)).json().error).toMatchObject({ code: 'right_missing', details: [{ rule: 'right:record' }] });
      expect((await s.get('/v1/usage?namespace=acme/prod', admin)).json().error).toMatchObject({
        code: 'right_missing',
        details: [{ rule: 'right:read' }],
      });
      expect(await s.count()).toBe(0);
    });

    it('a right does not widen the namespaces: a read key still reads only its own', async () => {
      const all = await keyWith([...RIGHTS]);
      const res = await s.get('/v1/usage?namespace=globex/prod', all);
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('namespace_forbidden');
    });

    it('keys made before rights existed keep exactly record and read (migration 007 backfills them)', async () => {
      const location = await schemaBeforeRights();
      const old = newKey('old-inc', ['acme/*']);
      await sqlOn(location, 'INSERT INTO api_keys (id, owner, namespaces, key_hash, created_at) VALUES (?, ?, ?, ?, ?)', [
        old.id,
        'old-inc',
        '["acme/*"]',
        old.hash,
        1000,
      ]);
      const ledger = await openLedger(location); // applies 007 and later
      try {
        expect((await ledger.keys.list()).map((k) => [k.id, k.rights])).toEqual([[old.id, ['record', 'read']]]);
        const app = appWith(ledger.keys, (v1) => {
          for (const right of RIGHTS) v1.get(`/v1/${right}`, { config: { right } }, async () => ({ ok: true }));
        });
        const codes = [];
        for (const right of RIGHTS)
          codes.push((await app.inject({ url: `/v1/${right}`, headers: { authorization: `Bearer ${old.key}` } })).statusCode);
        expect(codes).toEqual([200, 200, 403, 403]);
        await app.close();
      } finally {
        await ledger.close();
      }
    });

    it('create refuses an unknown right by name, with the allowed values, and stores nothing', async () => {
      await expect(s.ledger.keys.create('x', ['acme/*'], undefined, ['record', 'write' as Right])).rejects.toThrow(
        /unknown right "write"; a right is one of record, read, correct, admin/,
      );
      expect((await s.ledger.keys.list()).map((k) => k.owner)).toEqual(['acme-inc']);
    });
  });

  describe('routes declare their right', () => {
    it('a protected route without config.right fails at registration, naming the route', async () => {
      const app = appWith(s.ledger.keys, (v1) => {
        v1.get('/v1/meters', async () => ({}));
      });
      await expect(app.ready()).rejects.toThrow(/route GET \/v1\/meters is behind the API key but declares no key right/);
      const bogus = appWith(s.ledger.keys, (v1) => {
        v1.put('/v1/meters/:name', { config: { right: 'write' as Right } }, async () => ({}));
      });
      await expect(bogus.ready()).rejects.toThrow(/declares no key right.*\(it has "write"\)/);
    });

    it('an admin route answers 403 right_missing to a record,read key and runs for an admin key', async () => {
      const app = appWith(s.ledger.keys, (v1) => {
        v1.put('/v1/meters/:name', { config: { right: 'admin' } }, async () => ({ ok: true }));
        v1.post('/v1/events/:id/void', { config: { right: 'correct' } }, async () => ({ ok: true }));
      });
      const put = (headers: Record<string, string>) =>
        app.inject({ method: 'PUT', url: '/v1/meters/tokens', headers: { ...headers, 'content-type': 'application/json' }, payload: '{}' });
      const refused = await put(s.auth);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error).toMatchObject({ code: 'right_missing', details: [{ rule: 'right:admin' }] });
      expect(refused.json().error.message).toMatch(/lacks the right admin, which PUT \/v1\/meters\/:name needs; it has record, read/);
      expect((await put(await keyWith(['admin']))).json()).toEqual({ ok: true });
      const voided = await app.inject({ method: 'POST', url: '/v1/events/1/void', headers: await keyWith(['admin']) });
      expect(voided.json().error).toMatchObject({ code: 'right_missing', details: [{ rule: 'right:correct' }] });
      await app.close();
    });
  });

  describe('receipts keys create --rights (the CLI as a real process)', () => {
    const db = () => s.ledger.location;

    it('sets the rights; keys list and --json show them; without --rights a key gets record,read', async () => {
      const made = receipts([
        'keys',
        'create',
        '--db',
        db(),
        '--owner',
        'ops',
        '--namespace',
        'acme/*',
        '--rights',
        'admin,read',
        '--json',
      ]);
      expect(made.code, made.stderr).toBe(0);
      const created = JSON.parse(made.stdout);
      expect(created.rights).toEqual(['read', 'admin']); // in the order record, read, correct, admin
      const plain = receipts(['keys', 'create', '--db', db(), '--owner', 'svc', '--namespace', 'acme/*']);
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toMatch(/^rights: {5}record, read$/m);

      const json = receipts(['keys', 'list', '--db', db(), '--json']);
      const byOwner = Object.fromEntries(JSON.parse(json.stdout).map((k: { owner: string; rights: string[] }) => [k.owner, k.rights]));
      expect(byOwner).toEqual({ 'acme-inc': ['record', 'read'], ops: ['read', 'admin'], svc: ['record', 'read'] });
      const text = receipts(['keys', 'list', '--db', db()]).stdout;
      expect(text).toMatch(new RegExp(`^${created.id}  ops  acme/\\*  read,admin  created `, 'm'));

      // The key works as created: it reads, and recording is refused naming the right.
      const auth = { authorization: `Bearer ${created.key}` };
      expect((await s.get('/v1/usage?namespace=acme/prod', auth)).statusCode).toBe(200);
      expect((await post(auth)).json().error.code).toBe('right_missing');
    });

    it('refuses an unknown right with exit 2, naming the flag and the allowed values, and creates no key', async () => {
      const r = receipts(['keys', 'create', '--db', db(), '--owner', 'ops', '--namespace', 'acme/*', '--rights', 'record,write']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--rights: unknown right "write"; a right is one of record, read, correct, admin/);
      const empty = receipts(['keys', 'create', '--db', db(), '--owner', 'ops', '--namespace', 'acme/*', '--rights', ',']);
      expect(empty.code).toBe(2);
      expect(empty.stderr).toMatch(/--rights must name at least one right of record, read, correct, admin/);
      expect((await s.ledger.keys.list()).map((k) => k.owner)).toEqual(['acme-inc']);
    });

    it.runIf(engine === 'sqlite')('an unknown right creates no ledger file either', () => {
      const { dir, cleanup } = tempDir();
      try {
        const file = `${dir}/new.db`;
        const r = receipts(['keys', 'create', '--db', file, '--owner', 'ops', '--namespace', 'a/*', '--rights', 'root']);
        expect(r.code).toBe(2);
        expect(existsSync(file)).toBe(false);
      } finally {
        cleanup();
      }
    });
  });
});
