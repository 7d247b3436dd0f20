// `receipts migrate`: a SQLite ledger built through the real service (events, epochs, anchors, an
// unsealed tail, a revoked key) moved by the CLI, as a child process, into a fresh PostgreSQL
// database, and the PostgreSQL ledger then used: receipts, keys, sealing the tail, new events.
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Anchorer } from '../../src/anchor/anchorer.ts';
import { type Ledger, SqliteLedger } from '../../src/ledger/index.ts';
import { checkCopy, MigrateError } from '../../src/ledger/migrate.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { openPostgresLedger, type PostgresLedger } from '../../src/ledger/postgres/index.ts';
import type { AnyReceipt as Receipt } from '../../src/receipt/format.ts';
import { ReceiptReader } from '../../src/receipt/reader.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { acquireServeLock } from '../../src/cli/lock.ts';
import { FakeChain } from '../anchor/fake-chain.ts';
import { event, tempDir, testServer, until } from '../helpers.ts';
import { freshDatabase, startPostgres } from '../support/postgres.ts';
import { receipts } from './run.ts';

const cluster = await startPostgres();
const tmp = tempDir('receipts-migrate-');
afterAll(async () => {
  await cluster?.stop();
  tmp.cleanup();
});

const PASSWORD = 'pw-not-to-be-printed-7731';
/** A fresh database's URL with a password in it (trust auth ignores it; no output may show it). */
async function target(): Promise<{ url: string; withPassword: string }> {
  const url = await freshDatabase(cluster!.url);
  const u = new URL(url);
  u.password = PASSWORD;
  return { url, withPassword: u.toString() };
}

async function rows<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}
/** Events in the target; 0 when migrate stopped before creating the tables. */
const eventCount = async (url: string) =>
  rows<{ n: string }>(url, 'SELECT count(*) AS n FROM events').then(
    (r) => Number(r[0]!.n),
    (err: { code?: string }) => {
      if (err.code === '42P01') return 0;
      throw err;
    },
  );

async function leader(ledger: PostgresLedger): Promise<void> {
  await ledger.leadership.start(() => {});
  await until(() => ledger.leadership.role() === 'leader');
}

describe.skipIf(!cluster)('receipts migrate (SQLite → PostgreSQL)', () => {
  const file = join(tmp.dir, 'receipts.db');
  const ids: number[] = [];
  let unsealedIds: number[] = [];
  let lastSealedSeq = 0;
  let epochCount = 0;
  const sqliteReceipts = new Map<number, Receipt>();
  let liveKey = '';
  let revokedKey = '';
  let sqliteHistory: unknown;
  let sqliteUsage: unknown;
  const USAGE = { namespace: 'acme/prod', from: 0, to: Number.MAX_SAFE_INTEGER, groupBy: 'action' as const };
  // Two meters of the key's owner, one in two versions: every version must reach the target.
  const DAY = 86_400_000;
  const meterQuery = (name: string) => ({
    owner: 'acme-inc',
    name,
    namespace: 'acme/prod',
    from: Math.floor(Date.now() / DAY - 2) * DAY,
    to: Math.floor(Date.now() / DAY + 2) * DAY,
    window: 'day' as const,
    tz: 'UTC',
  });
  const METER_QUERIES = [meterQuery('recalls'), meterQuery('peak')];
  let sqliteMeters: { list: unknown; versions: unknown[]; usage: unknown[] };
  const meterState = async (ledger: Pick<Ledger, 'meters'>) => ({
    list: await ledger.meters.list('acme-inc'),
    versions: await Promise.all(METER_QUERIES.map((q) => ledger.meters.versions(q.owner, q.name))),
    usage: await Promise.all(METER_QUERIES.map((q) => ledger.meters.usage(q))),
  });

  beforeAll(async () => {
    // The source ledger, through the real service: events, 4-event epochs, 3 of them anchored
    // through the anchorer, 2 more sealed after, a tail left unsealed, a revoked key.
    const s = await testServer({}, async () => ({ ledger: new SqliteLedger(file, { synchronous: 'normal' }), cleanup: async () => {} }));
    liveKey = s.key;
    await s.ledger.classification.append({ billable: ['recall'], non_billable: ['write'], other: 'info' }, { now: Date.now() });
    const now = Date.now();
    await s.ledger.meters.define('acme-inc', 'recalls', { aggregation: 'sum', actions: ['recall'], fromMs: 0, retroactive: true }, now);
    await s.ledger.meters.define(
      'acme-inc',
      'recalls',
      { aggregation: 'sum', actions: ['recall', 'write'], fromMs: now - 30_000, retroactive: true },
      now + 1,
    );
    await s.ledger.meters.define('acme-inc', 'peak', { aggregation: 'max', actions: null, fromMs: 0, retroactive: true }, now);
    const post = async (n: number, extra: (i: number) => Record<string, unknown> = () => ({})) => {
      const res = await s.post({ events: Array.from({ length: n }, (_, i) => event(extra(i))) });
      expect(res.statusCode).toBe(200);
      return (res.json().results as Array<{ id: number }>).map((r) => r.id);
    };
    ids.push(
      ...(await post(12, (i) => ({
        units: i === 0 ? Number.MAX_SAFE_INTEGER : i,
        caller: i % 2 ? 'user-2' : 'usér-ü 🚀',
        ts: Date.now() - 60_000 + i,
        ...(i % 3 === 0 && { artifact_digest: 'ab'.repeat(32), source: 'api-gw', metadata: { region: 'eu', n: i } }),
      }))),
    );
    await sealAll(s.ledger, { maxEvents: 4 });
    const chain = new FakeChain();
    expect(await new Anchorer({ ledger: s.ledger, chain }).step()).toBe(3);
    ids.push(...(await post(7)));
    await sealAll(s.ledger, { maxEvents: 4 });
    unsealedIds = await post(5, (i) => ({ action: i % 2 ? 'write' : 'recall' }));
    ids.push(...unsealedIds);
    const extra = await s.ledger.keys.create('other-inc', ['other/*'], undefined, ['read', 'admin']);
    revokedKey = extra.key;
    expect(await s.ledger.keys.revoke(extra.id)).toBe(true);
    const latest = (await s.ledger.epochs.latest())!;
    lastSealedSeq = latest.last_seq;
    epochCount = latest.epoch + 1;
    expect(epochCount).toBe(5);
    for (const id of ids) sqliteReceipts.set(id, await s.receipt(id));
    sqliteHistory = await s.ledger.classification.history();
    sqliteUsage = await s.ledger.usage.query(USAGE);
    sqliteMeters = await meterState(s.ledger);
    expect(sqliteMeters.versions.map((v) => (v as unknown[]).length)).toEqual([2, 1]);
    expect([...sqliteReceipts.values()].map((r) => r.status).filter((st, i, a) => a.indexOf(st) === i)).toEqual([
      'anchored',
      'sealed',
      'pending',
    ]);
    await s.close();
  });

  it('copies keys, events, epochs, nodes and anchors, checks every epoch root, and the PostgreSQL ledger goes on from there', async () => {
    const { url, withPassword } = await target();
    const r = receipts(['migrate', '--from', file, '--to', withPassword]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^copied 2 keys, 24 events \(5 events after the last epoch, sealed next on PostgreSQL in the same order\), 5 epochs, \d+ tree-node chunks, 1 anchor attempt, 3 anchors, 1 classification period and 3 meter versions from .*receipts\.db to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/t_\w+ in [\d.]+ s; every epoch root checked \(5 epochs rebuilt/,
    );
    expect(r.stderr).toMatch(/^copying events: 24 \/ 24$/m); // progress, on stderr
    expect(r.stderr).toMatch(/^checking source epochs: 5 \/ 5$/m);
    expect(r.stderr).toMatch(/^checking copied epochs: 5 \/ 5$/m);
    expect(r.stderr).toMatch(/^comparing copied events: 24 \/ 24$/m);
    expect(r.stderr).toMatch(/^comparing copied meter versions: 3 \/ 3$/m);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);

    const ledger = await openPostgresLedger(url, { leaseMs: 600 });
    try {
      // Every receipt is the one SQLite gave, and the sealed ones verify (anchored ones too).
      const reader = new ReceiptReader(ledger);
      for (const id of ids) {
        const receipt = await reader.receipt((await ledger.events.get(id))!);
        expect(receipt).toEqual(sqliteReceipts.get(id));
        if (receipt.status !== 'pending') expect(verifyReceipt(receipt).ok, `receipt ${id}`).toBe(true);
      }
      expect(await ledger.anchors.anchoredThrough()).toBe(2);
      // Keys: the live one authenticates, the revoked one does not.
      expect((await ledger.keys.authenticate(liveKey))?.owner).toBe('acme-inc');
      expect(await ledger.keys.authenticate(revokedKey)).toBeNull();
      // Each key keeps its rights.
      expect((await ledger.keys.list()).map((k) => [k.owner, k.rights])).toEqual([
        ['acme-inc', ['record', 'read']],
        ['other-inc', ['read', 'admin']],
      ]);
      // The billable classification history, and so the usage totals, are the same.
      expect(await ledger.classification.history()).toEqual(sqliteHistory);
      expect(await ledger.usage.query(USAGE)).toEqual(sqliteUsage);
      // The meters, every version, and what they answer.
      expect(await meterState(ledger)).toEqual(sqliteMeters);
      // Rollups are not copied: the target starts at -1 and its leader rolls every epoch up again.
      expect(await rows(url, 'SELECT epoch FROM rollup_state')).toEqual([{ epoch: '-1' }]);
      // Nor are checkpoints and cosignatures: the target's first seal signs its log again.
      expect(await rows(url, 'SELECT (SELECT count(*) FROM checkpoints) AS c, (SELECT count(*) FROM witness_cosignatures) AS w')).toEqual([
        { c: '0', w: '0' },
      ]);

      // The unsealed tail is sealed next, in the order SQLite had it.
      await leader(ledger);
      const sealed = await sealAll(ledger, { maxEvents: 1000 });
      expect(sealed).toMatchObject([{ epoch: epochCount, first_seq: lastSealedSeq + 1, size: unsealedIds.length }]);
      for (const [i, id] of unsealedIds.entries()) {
        const receipt = await reader.receipt((await ledger.events.get(id))!);
        expect(receipt).toMatchObject({ status: 'sealed', epoch: epochCount, leaf_index: i, event: sqliteReceipts.get(id)!.event });
        expect(verifyReceipt(receipt).ok).toBe(true);
      }
      // Rolled up again through the new epoch, usage and meters answer exactly as SQLite did.
      expect(await rows(url, 'SELECT epoch FROM rollup_state')).toEqual([{ epoch: String(epochCount) }]);
      expect(await ledger.usage.query(USAGE)).toEqual(sqliteUsage);
      expect(await meterState(ledger)).toEqual(sqliteMeters);
      // New events get ids after the copied ones; a request id already copied is a duplicate.
      const write = (request_id: string) => {
        const v = validateEvent(event({ request_id }), {
          now: Date.now(),
          maxAgeMs: DEFAULT_MAX_AGE_MS,
          maxFutureMs: DEFAULT_MAX_FUTURE_MS,
        });
        if (!v.ok) throw new Error(JSON.stringify(v.errors));
        return ledger.events.write([{ event: v.event, owner: 'acme-inc', keyId: 'k' }]);
      };
      const [fresh] = await write('after-migrate');
      expect(fresh).toMatchObject({ status: 'created' });
      expect((fresh as { id: number }).id).toBeGreaterThan(Math.max(...ids));
      const copied = sqliteReceipts.get(ids[0]!)!.event.request_id;
      expect(await write(copied)).toMatchObject([{ status: expect.stringMatching(/^(duplicate|conflict)$/), id: ids[0] }]);
    } finally {
      await ledger.close();
    }
  });

  it('--json with the URL from RECEIPTS_DATABASE_URL; a second migrate into the same database is refused', async () => {
    const { url, withPassword } = await target();
    const r = receipts(['migrate', '--from', file, '--json'], { RECEIPTS_DATABASE_URL: withPassword });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({
      copied: { keys: 2, events: 24, epochs: 5, attempts: 1, anchors: 3, classifications: 1, meters: 3 },
      unsealed: 5,
      epochs_checked: 5,
      from: file,
      to: expect.stringMatching(/^postgres:\/\/postgres:\*\*\*@/),
    });
    expect(summary.rows_compared).toBe(2 + 24 + 5 + summary.copied.nodes + 1 + 3 + 1 + 3);

    const again = receipts(['migrate', '--from', file, '--to', withPassword]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /^error: the target postgres:\/\/postgres:\*\*\*@.* already holds a ledger .*copies into an empty database only/m,
    ); // after the warning on --to with a password
    expect(again.stdout + again.stderr).not.toContain(PASSWORD);
    expect(await eventCount(url)).toBe(24);
  });

  it('a tampered epoch root in the source fails the check naming the epoch; nothing is copied', async () => {
    const tampered = join(tmp.dir, 'tampered-root.db');
    copyFileSync(file, tampered);
    const db = new Database(tampered);
    db.prepare('UPDATE epochs SET root = randomblob(32) WHERE epoch = 3').run();
    db.close();
    const { url } = await target();
    const r = receipts(['migrate', '--from', tampered, '--to', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: the source ledger .*tampered-root\.db does not check out: epoch 3: the stored root [0-9a-f]{64} is not the root of its 4 leaf hashes .*Nothing was copied/,
    );
    expect(await eventCount(url)).toBe(0);
  });

  it('an altered event field in the source fails before anything is written, naming the event and its epoch', async () => {
    const tampered = join(tmp.dir, 'tampered-event.db');
    copyFileSync(file, tampered);
    const db = new Database(tampered);
    db.prepare('UPDATE events SET units = units + 1 WHERE seq = 6').run();
    db.close();
    const { url } = await target();
    const r = receipts(['migrate', '--from', tampered, '--to', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not check out: event 6 \(epoch 1\): its stored leaf hash [0-9a-f]{64} is not the hash of its fields/);
    expect(await eventCount(url)).toBe(0);
  });

  it('the copy check catches a copy that differs from the source, naming the epoch', async () => {
    const { url } = await target();
    expect(receipts(['migrate', '--from', file, '--to', url]).code).toBe(0);
    await expect(checkCopy({ from: file, to: url })).resolves.toMatchObject({ epochs_checked: 5 });
    await rows(url, "UPDATE epochs SET root = decode(repeat('00', 32), 'hex') WHERE epoch = 2");
    const failed = await checkCopy({ from: file, to: url }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(MigrateError);
    expect(failed).toMatchObject({
      epoch: 2,
      message: expect.stringMatching(
        /^the copy in postgres:.* does not match the source: epoch 2: the stored root 0{64} is not the root of its 4 leaf hashes/,
      ),
    });
    // A stored node the proofs read, changed: caught too.
    const { url: url2 } = await target();
    expect(receipts(['migrate', '--from', file, '--to', url2]).code).toBe(0);
    await rows(
      url2,
      "UPDATE epoch_nodes SET hashes = overlay(hashes placing decode(repeat('11', 32), 'hex') from 1) WHERE epoch = 4 AND level = 1",
    );
    await expect(checkCopy({ from: file, to: url2 })).rejects.toMatchObject({
      epoch: 4,
      message: expect.stringMatching(/epoch 4: the stored tree level 1 is not the one rebuilt/),
    });
    // A meter version changed, or one missing: caught by the row-by-row comparison and the counts.
    const { url: url3 } = await target();
    expect(receipts(['migrate', '--from', file, '--to', url3]).code).toBe(0);
    await rows(url3, `UPDATE meters SET actions = '["write"]' WHERE name = 'recalls' AND version = 2`);
    await expect(checkCopy({ from: file, to: url3 })).rejects.toMatchObject({
      message: expect.stringMatching(
        /does not match the source: meter recalls of acme-inc \(version 2\): actions is "\[\\"write\\"\]" in the copy but "\[\\"recall\\",\\"write\\"\]" in the source/,
      ),
    });
    await rows(url3, `DELETE FROM meters WHERE name = 'peak'`);
    await expect(checkCopy({ from: file, to: url3 })).rejects.toMatchObject({
      message: expect.stringMatching(/does not match the source: it holds 2 meter versions, the source 3/),
    });
  });

  it('a source from before meters (schema 7) migrates without them, and the target can define meters', async () => {
    const old = join(tmp.dir, 'schema-7.db');
    copyFileSync(file, old);
    const db = new Database(old);
    db.exec(`DROP TABLE meters; DROP TABLE usage_buckets; DROP TABLE usage_caller_days; DROP TABLE rollup_state;
      DROP TABLE witness_cosignatures; DELETE FROM schema_migrations WHERE version >= 8;`);
    db.close();
    const { url } = await target();
    const r = receipts(['migrate', '--from', old, '--to', url, '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).copied).toMatchObject({ events: 24, classifications: 1, meters: 0 });
    const ledger = await openPostgresLedger(url);
    try {
      expect(await ledger.meters.list('acme-inc')).toEqual([]);
      await ledger.meters.define('acme-inc', 'recalls', { aggregation: 'sum', actions: ['recall'] }, Date.now());
      expect((await ledger.meters.list('acme-inc')).map((m) => [m.name, m.version])).toEqual([['recalls', 1]]);
    } finally {
      await ledger.close();
    }
  });

  it('refuses while receipts serve holds the source, and copies nothing', async () => {
    const lock = acquireServeLock(file, '127.0.0.1');
    try {
      lock.listening('127.0.0.1', 8080);
      const { url } = await target();
      const r = receipts(['migrate', '--from', file, '--to', url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^error: receipts serve \\(pid ${process.pid}, listening on 127\\.0\\.0\\.1:8080\\) runs on it: .*nothing was copied\\. Stop it`,
        ),
      );
      expect(await eventCount(url)).toBe(0);
    } finally {
      lock.release();
    }
  });

  it('while migrate holds the source, a receipts serve on it does not start and says why', async () => {
    const lock = acquireServeLock(file, 'migrate', 'migrate');
    try {
      const r = receipts(['serve', '--db', file, '--port', '0']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `receipts migrate \\(pid ${process.pid}, since [^)]+\\) is copying the ledger .*receipts\\.db to PostgreSQL, so this does not start`,
        ),
      );
    } finally {
      lock.release();
    }
  });

  it('refuses a missing source, a source URL and a target that is not a PostgreSQL URL, in a sentence', async () => {
    const { url } = await target();
    const missing = join(tmp.dir, 'nope', 'receipts.db');
    const r = receipts(['migrate', '--from', missing, '--to', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no SQLite ledger at .*nope\/receipts\.db .*check --from/);
    expect(existsSync(join(tmp.dir, 'nope'))).toBe(false); // nothing created on the way

    const fromUrl = receipts(['migrate', '--from', url, '--to', url]);
    expect(fromUrl.code).toBe(1);
    expect(fromUrl.stderr).toMatch(/--from takes a SQLite ledger file, not a database URL/);

    const notPg = receipts(['migrate', '--from', file, '--to', `mysql://root:${PASSWORD}@db/x`]);
    expect(notPg.code).toBe(1);
    expect(notPg.stderr).toMatch(/--to takes a postgres:\/\/ .*this one is a mysql: URL/);
    expect(notPg.stderr).not.toContain(PASSWORD);

    const noTarget = receipts(['migrate', '--from', file]);
    expect(noTarget.code).toBe(2);
  });
});
