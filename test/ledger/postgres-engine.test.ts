// The PostgreSQL engine on a throw-away cluster: idempotent group-committed writes, the
// ordering rule under concurrent writers, leader election and fencing, migrations under a
// concurrent start, the usage index and exact sums, and the bulk copy.
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { leafHash } from '../../src/event/leaf.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent, type NormalizedEvent } from '../../src/event/validate.ts';
import { HASH_SIZE } from '../../src/merkle/hash.ts';
import { verifyInclusion } from '../../src/merkle/proof.ts';
import { auditPath, buildTree, rootOf } from '../../src/merkle/tree.ts';
import { copyInto, FencedError, openPostgresLedger, SchemaTooNewError, type PostgresLedger } from '../../src/ledger/postgres/index.ts';
import { Params, partSql } from '../../src/ledger/postgres/usage.ts';
import { partSql as meterPartSql } from '../../src/ledger/postgres/meters.ts';
import type { MeterPart } from '../../src/ledger/meters.ts';
import { PAGE_DESC_SQL, PAGE_SQL } from '../../src/ledger/postgres/events.ts';
import type { EventToWrite, Role, SealRequest } from '../../src/ledger/types.ts';
import { loadMigrations } from '../../src/ledger/schema-migrations.ts';
import { freshDatabase, startPostgres } from '../support/postgres.ts';

const PG_MIGRATIONS = loadMigrations(new URL('../../src/ledger/postgres/migrations/', import.meta.url).pathname);

const cluster = await startPostgres();
afterAll(() => cluster?.stop());

const NOW = Date.now();
let counter = 0;

/** A validated event, as the API hands it to the ledger. */
function ev(fields: Record<string, unknown> = {}, now = NOW): NormalizedEvent {
  const input = { request_id: `r-${++counter}`, namespace: 'acme/prod', action: 'recall', caller: 'user-1', units: 1, ...fields };
  const v = validateEvent(input, { now, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.event;
}
const item = (e: NormalizedEvent): EventToWrite => ({ event: e, owner: 'acme-inc', keyId: 'abcdefabcdef' });

const seal = (maxEvents = 1000): SealRequest => ({
  maxEvents,
  now: Date.now(),
  build: (leaves) => {
    const tree = buildTree(leaves);
    return { root: rootOf(tree), levels: tree.levels };
  },
});

async function open(url: string, options: Parameters<typeof openPostgresLedger>[1] = {}): Promise<PostgresLedger> {
  return openPostgresLedger(url, { leaseMs: 600, ...options });
}

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

/** Every node of the plan PostgreSQL picks for the query (EXPLAIN, not run). */
async function planNodes(c: pg.Client, text: string, values: unknown[]): Promise<PlanNode[]> {
  const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${text}`, values);
  const out: PlanNode[] = [];
  const walk = (n: PlanNode) => {
    out.push(n);
    n.Plans?.forEach(walk);
  };
  walk(rows[0]!['QUERY PLAN'][0]!.Plan);
  return out;
}

describe('test cluster harness', () => {
  it('without PostgreSQL installed: skips with one loud warning, or fails on CI / when required', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const saved = { CI: process.env.CI, REQUIRE: process.env.RECEIPTS_REQUIRE_POSTGRES };
    const nowhere = { roots: ['/nonexistent/postgresql'], path: '' };
    try {
      delete process.env.CI;
      delete process.env.RECEIPTS_REQUIRE_POSTGRES;
      expect(await startPostgres(nowhere)).toBeNull();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/SKIPPING the PostgreSQL engine tests.*apt-get install postgresql/);
      process.env.RECEIPTS_REQUIRE_POSTGRES = '1';
      await expect(startPostgres(nowhere)).rejects.toThrow(/required here.*apt-get install postgresql/);
      delete process.env.RECEIPTS_REQUIRE_POSTGRES;
      process.env.CI = 'true';
      await expect(startPostgres(nowhere)).rejects.toThrow(/required here/);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      for (const [k, v] of [
        ['CI', saved.CI],
        ['RECEIPTS_REQUIRE_POSTGRES', saved.REQUIRE],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      warn.mockRestore();
    }
  });
});

describe.skipIf(!cluster)('PostgreSQL engine', () => {
  describe('writes', () => {
    it('creates, answers a repeat as duplicate or conflict exactly as SQLite does, forever', async () => {
      const url = await freshDatabase(cluster!.url);
      const ledger = await open(url);
      try {
        const e = ev({ ts: NOW - 1000, artifact_digest: 'AB'.repeat(32), source: 'svc', metadata: { a: 1 } });
        const [created] = await ledger.events.write([item(e)]);
        expect(created).toEqual({ status: 'created', id: expect.any(Number), leaf_hash: Buffer.from(leafHash(e)).toString('hex') });
        if (created!.status !== 'created') throw new Error();

        const stored = await ledger.events.get(created!.id);
        expect(stored).toEqual({
          id: created!.id,
          seq: null,
          namespace: 'acme/prod',
          request_id: e.request_id,
          caller: 'user-1',
          action: 'recall',
          units: 1,
          artifact_digest: 'ab'.repeat(32),
          ts_ms: NOW - 1000,
          leaf_hash: created!.leaf_hash,
        });

        // The same request again: the original's id and leaf hash.
        const again = ev(
          { request_id: e.request_id, ts: NOW - 1000, artifact_digest: 'ab'.repeat(32), source: 'svc', metadata: { a: 1 } },
          NOW + 5000,
        );
        expect(await ledger.events.write([item(again)])).toEqual([{ status: 'duplicate', id: created!.id, leaf_hash: created!.leaf_hash }]);
        // Leaving ts out means "when received": it cannot contradict the stored explicit time.
        const noTs = ev({ request_id: e.request_id, artifact_digest: 'ab'.repeat(32), source: 'svc', metadata: { a: 1 } }, NOW + 9000);
        expect((await ledger.events.write([item(noTs)]))[0]!.status).toBe('duplicate');
        // Different content under the same request id: a conflict naming each differing field.
        const changed = ev({ request_id: e.request_id, ts: NOW - 2000, units: 2, caller: 'user-2', source: 'svc', metadata: { a: 2 } });
        expect(
          (
            await ledger.events.write([
              item(ev({ request_id: e.request_id, ts: NOW - 1000, artifact_digest: 'ab'.repeat(32), metadata: { a: 1 } })),
            ])
          )[0],
        ).toEqual({ status: 'conflict', id: created!.id, differs: ['source'] });
        expect(await ledger.events.write([item(changed)])).toEqual([
          { status: 'conflict', id: created!.id, differs: ['caller', 'units', 'artifact_digest', 'ts', 'metadata'] },
        ]);
        // The same request id in another namespace is another event.
        expect((await ledger.events.write([item(ev({ request_id: e.request_id, namespace: 'acme/dev' }))]))[0]!.status).toBe('created');
        expect(await ledger.events.latestId()).toBeGreaterThan(created!.id);
        expect(await ledger.events.unsealed()).toEqual({ events: 2, oldestReceivedAt: NOW });
        // Nothing was stored twice.
        expect(await sql(url, 'SELECT count(*)::int AS n FROM events')).toEqual([{ n: 2 }]);
      } finally {
        await ledger.close();
      }
    });

    it('within one group commit, a repeated request id is a duplicate or conflict of the first', async () => {
      const ledger = await open(await freshDatabase(cluster!.url));
      try {
        const a = ev({ ts: NOW - 10 });
        const same = ev({ request_id: a.request_id, ts: NOW - 10 });
        const other = ev({ request_id: a.request_id, ts: NOW - 10, units: 7 });
        const b = ev();
        // One request with the repeat inside it, and two more queued in the same turn.
        const [r1, r2, r3] = await Promise.all([
          ledger.events.write([item(a), item(same)]),
          ledger.events.write([item(other), item(b)]),
          ledger.events.write([item(b)]),
        ]);
        expect(r1![0]!.status).toBe('created');
        const id = r1![0]!.id;
        expect(r1![1]).toEqual({ status: 'duplicate', id, leaf_hash: (r1![0] as { leaf_hash: string }).leaf_hash });
        expect(r2![0]).toEqual({ status: 'conflict', id, differs: ['units'] });
        expect(r2![1]!.status).toBe('created');
        expect(r3![0]).toEqual({ status: 'duplicate', id: r2![1]!.id, leaf_hash: (r2![1] as { leaf_hash: string }).leaf_hash });
      } finally {
        await ledger.close();
      }
    });

    it('shares one transaction among writes arriving together; ids follow arrival order', async () => {
      const ledger = await open(await freshDatabase(cluster!.url));
      try {
        const commits: number[] = [];
        ledger.events.onCommit = (n) => commits.push(n);
        const events = Array.from({ length: 300 }, () => ev());
        const results = await Promise.all(events.map((e) => ledger.events.write([item(e)])));
        expect(results.every((r) => r[0]!.status === 'created')).toBe(true);
        expect(commits.reduce((a, b) => a + b, 0)).toBe(300);
        expect(commits.length).toBeLessThanOrEqual(3); // 300 requests, a few commits
        const ids = results.map((r) => r[0]!.id);
        expect(ids).toEqual([...ids].sort((x, y) => x - y)); // arrival order, not request-id order
        expect(new Set(ids).size).toBe(300);
      } finally {
        await ledger.close();
      }
    });

    it('fails only the request whose text PostgreSQL cannot store, not its group', async () => {
      const ledger = await open(await freshDatabase(cluster!.url));
      try {
        // Validation refuses NUL in every leaf field and in source; the engine still guards itself.
        const bad = ledger.events.write([item({ ...ev(), source: 'a\u0000b' })]);
        const good = ledger.events.write([item(ev())]);
        await expect(bad).rejects.toThrow(/source contains the character U\+0000/);
        expect((await good)[0]!.status).toBe('created');
      } finally {
        await ledger.close();
      }
    });

    it('two instances writing overlapping request ids at once: one row each, no deadlock', async () => {
      const url = await freshDatabase(cluster!.url);
      const [a, b] = await Promise.all([open(url), open(url)]);
      const blocker = new pg.Client({ connectionString: url });
      await blocker.connect();
      try {
        const events = Array.from({ length: 200 }, () => ev());
        // A third writer holds one request id in the middle, so both batches are in flight together.
        const mid = events[100]!;
        await blocker.query('BEGIN');
        await blocker.query(
          `INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
           VALUES ($1, $2, 'o', 'k', 'c', 'a', 1, 1, false, 1, $3)`,
          [mid.namespace, mid.request_id, Buffer.alloc(32)],
        );
        const both = Promise.all([a.events.write(events.map(item)), b.events.write([...events].reverse().map(item))]);
        await until(
          async () =>
            (
              await sql<{ n: number }>(
                url,
                `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH input%'`,
              )
            )[0]!.n === 2,
        );
        await blocker.query('ROLLBACK');
        const [ra, rb] = await both;
        const statuses = [...ra, ...rb].map((r) => r.status);
        expect(statuses.filter((s) => s === 'created')).toHaveLength(200);
        expect(statuses.filter((s) => s === 'duplicate')).toHaveLength(200);
        expect(await sql(url, 'SELECT count(*)::int AS n FROM events')).toEqual([{ n: 200 }]);
      } finally {
        await blocker.end().catch(() => {});
        await Promise.all([a.close(), b.close()]);
      }
    });
  });

  describe('snapshot bound', () => {
    it('latestId() waits out writers still holding lower ids: events with id ≤ it never change afterwards', async () => {
      const url = await freshDatabase(cluster!.url);
      const [a, b] = await Promise.all([open(url), open(url)]);
      const blocker = new pg.Client({ connectionString: url });
      await blocker.connect();
      try {
        // A's write draws its ids, then waits on a row another transaction holds.
        const held = ev();
        await blocker.query('BEGIN');
        await blocker.query(
          `INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
           VALUES ($1, $2, 'o', 'k', 'c', 'a', 1, 1, false, 1, $3)`,
          [held.namespace, held.request_id, Buffer.alloc(32)],
        );
        const slow = a.events.write([item(ev()), item(held)]);
        await until(
          async () =>
            (
              await sql<{ n: number }>(
                url,
                `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH input%'`,
              )
            )[0]!.n === 1,
        );
        // B commits a higher id meanwhile.
        const [fast] = await b.events.write([item(ev())]);
        let bound: number | undefined;
        const asking = b.events.latestId().then((m) => (bound = m));
        await new Promise((r) => setTimeout(r, 300));
        expect(bound).toBeUndefined(); // still waiting for A
        await blocker.query('ROLLBACK');
        await asking;
        expect(bound).toBeGreaterThanOrEqual(fast!.id);
        // Everything at or below the bound is committed by the time it is handed out.
        const below = await sql<{ n: number }>(url, 'SELECT count(*)::int AS n FROM events WHERE id <= $1', [bound]);
        const [r1, r2] = await slow;
        expect(r1!.id).toBeLessThan(fast!.id);
        expect(below[0]!.n).toBe([r1!.id, r2!.id, fast!.id].filter((id) => id <= bound!).length);
        expect(r1!.id).toBeLessThanOrEqual(bound!);
      } finally {
        await blocker.end().catch(() => {});
        await Promise.all([a.close(), b.close()]);
      }
    });
  });

  describe('ordering rule', () => {
    it('an event committed late after a lower id was sealed past goes into a later epoch: none skipped, none twice', async () => {
      const url = await freshDatabase(cluster!.url);
      const ledger = await open(url);
      const slow = new pg.Client({ connectionString: url });
      await slow.connect();
      try {
        await ledger.leadership.start(() => {});
        expect(ledger.leadership.role()).toBe('leader');
        expect(await ledger.epochs.sealNext(seal())).toBeNull(); // nothing waits: no epoch

        // A writer holding its transaction open: its id is drawn now, below every later one.
        const late = ev();
        await slow.query('BEGIN');
        const { rows } = await slow.query<{ id: string }>(
          `INSERT INTO events (namespace, request_id, owner, key_id, caller, action, units, ts, ts_explicit, received_at, leaf_hash)
           VALUES ($1, $2, 'acme-inc', 'abcdefabcdef', $3, $4, $5, $6, false, $7, $8) RETURNING id`,
          [
            late.namespace,
            late.request_id,
            late.caller,
            late.action,
            late.units,
            late.ts_ms,
            late.received_at,
            Buffer.from(leafHash(late)),
          ],
        );
        const lateId = Number(rows[0]!.id);

        const first = Array.from({ length: 5 }, () => ev());
        const written = await ledger.events.write(first.map(item));
        expect(written.every((r) => r.id > lateId)).toBe(true);

        const e0 = await ledger.epochs.sealNext(seal());
        expect(e0).toMatchObject({ epoch: 0, first_seq: 1, last_seq: 5, size: 5 });
        expect(await ledger.events.unsealed()).toMatchObject({ events: 0 }); // the open one is not visible
        expect(await ledger.epochs.sealNext(seal())).toBeNull();

        await slow.query('COMMIT');
        expect(await ledger.events.unsealed()).toMatchObject({ events: 1 });
        const more = Array.from({ length: 3 }, () => ev());
        await ledger.events.write(more.map(item));
        const e1 = await ledger.epochs.sealNext(seal(2));
        const e2 = await ledger.epochs.sealNext(seal(2));
        expect(e1).toMatchObject({ epoch: 1, first_seq: 6, last_seq: 7, size: 2 });
        expect(e2).toMatchObject({ epoch: 2, first_seq: 8, last_seq: 9, size: 2 });
        expect(await ledger.epochs.sealNext(seal())).toBeNull();
        expect(await ledger.events.unsealed()).toEqual({ events: 0, oldestReceivedAt: null });

        // The late event took the first place of the next epoch, in id order among the unsealed.
        expect((await ledger.events.get(lateId))!.seq).toBe(6);

        // Every event in exactly one epoch; seq dense 1 … 9; epochs 0, 1, 2 without gaps.
        const all = await sql<{ id: string; seq: string; leaf_hash: Buffer }>(url, 'SELECT id, seq, leaf_hash FROM events ORDER BY seq');
        expect(all.map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        const epochs = await ledger.epochs.list({ limit: 10 });
        expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
        expect(await ledger.epochs.list({ limit: 2, desc: true })).toEqual([epochs[2], epochs[1]]);
        expect(await ledger.epochs.latest()).toEqual(epochs[2]);

        // The stored trees are over the leaves in seq order, and prove every event.
        for (const epoch of epochs) {
          const members = all.filter((r) => Number(r.seq) >= epoch.first_seq && Number(r.seq) <= epoch.last_seq);
          const leaves = Buffer.concat(members.map((r) => r.leaf_hash));
          expect(Buffer.from(rootOf(buildTree(leaves))).toString('hex')).toBe(epoch.root);
          const levels: Uint8Array[] = [];
          for (const [l, level] of buildTree(leaves).levels.entries()) {
            levels.push(await ledger.epochs.level(epoch.epoch, l));
            expect(Buffer.from(levels[l]!)).toEqual(Buffer.from(level));
          }
          for (const r of members) {
            const seq = Number(r.seq);
            expect(await ledger.epochs.containing(seq)).toEqual(epoch);
            const index = seq - epoch.first_seq;
            expect(Buffer.from(await ledger.epochs.node(epoch.epoch, 0, index))).toEqual(r.leaf_hash);
            const path = auditPath(index, epoch.size, (l, i) => levels[l]!.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
            expect(verifyInclusion(r.leaf_hash, index, epoch.size, path, Buffer.from(epoch.root, 'hex'))).toEqual({ ok: true });
          }
        }
        expect(await ledger.epochs.containing(10)).toBeUndefined();
        await expect(ledger.epochs.node(0, 0, 99)).rejects.toThrow(/no stored node/);
      } finally {
        await slow.end().catch(() => {});
        await ledger.close();
      }
    });

    it('stores trees larger than one node chunk (64 hashes) so proofs read them back', async () => {
      const ledger = await open(await freshDatabase(cluster!.url));
      try {
        await ledger.leadership.start(() => {});
        await ledger.events.write(Array.from({ length: 150 }, () => item(ev())));
        const e = await ledger.epochs.sealNext(seal());
        expect(e).toMatchObject({ epoch: 0, size: 150 });
        const leaves = await ledger.epochs.level(0, 0);
        expect(leaves.length).toBe(150 * HASH_SIZE);
        const tree = buildTree(leaves);
        for (const [l, level] of tree.levels.entries()) expect(Buffer.from(await ledger.epochs.level(0, l))).toEqual(Buffer.from(level));
        expect(Buffer.from(await ledger.epochs.node(0, 0, 130))).toEqual(Buffer.from(leaves.subarray(130 * 32, 131 * 32)));
      } finally {
        await ledger.close();
      }
    });

    it('page() walks (ts, id) within the asOf snapshot, both ways', async () => {
      const ledger = await open(await freshDatabase(cluster!.url));
      try {
        const times = [NOW - 500, NOW - 100, NOW - 300, NOW - 100];
        const written = await ledger.events.write(times.map((ts) => item(ev({ ts }))));
        await ledger.events.write([item(ev({ namespace: 'other/ns', ts: NOW - 200 }))]);
        const asOf = await ledger.events.latestId();
        await ledger.events.write([item(ev({ ts: NOW - 400 }))]); // after the snapshot
        const q = { namespace: 'acme/prod', from: 0, to: NOW + 1, asOf, limit: 2 };
        const p1 = await ledger.events.page({ ...q, after: [-1, -1] });
        const p2 = await ledger.events.page({ ...q, after: [p1[1]!.ts_ms, p1[1]!.id] });
        const ids = written.map((w) => w.id);
        expect([...p1, ...p2].map((e) => e.id)).toEqual([ids[0], ids[2], ids[1], ids[3]]);
        const d1 = await ledger.events.page({ ...q, desc: true, after: [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] });
        expect(d1.map((e) => e.id)).toEqual([ids[3], ids[1]]);
      } finally {
        await ledger.close();
      }
    });
  });

  describe('leadership and fencing', () => {
    it('elects one leader; a killed lock connection hands over within seconds; the stale one cannot write', async () => {
      const url = await freshDatabase(cluster!.url);
      const a = await open(url, { instanceId: 'instance-a' });
      const b = await open(url, { instanceId: 'instance-b' });
      const changes: Record<string, Role[]> = { a: [], b: [] };
      try {
        await a.leadership.start((r) => changes.a!.push(r));
        await b.leadership.start((r) => changes.b!.push(r));
        expect(a.leadership.role()).toBe('leader'); // started first, took it at once
        await new Promise((r) => setTimeout(r, 700)); // several campaign rounds
        expect(b.leadership.role()).toBe('follower');
        expect(a.leadership.describe()).toMatchObject({ role: 'leader', term: 1, holder: 'instance-a' });
        expect(b.leadership.describe()).toMatchObject({ role: 'follower', term: 1, holder: 'instance-a' });
        await expect(b.epochs.sealNext(seal())).rejects.toThrow(FencedError);

        await a.events.write([item(ev()), item(ev())]);
        // Kill the leader's lock connection.
        const killedAt = Date.now();
        const killed = await sql<{ ok: boolean }>(
          url,
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'sui-receipts leader-election instance-a%'`,
        );
        expect(killed).toEqual([{ ok: true }]);
        await until(() => a.leadership.role() === 'follower', 3000);
        // A leader that lost only its connection may win the next round itself (it is alive). To
        // model a dead leader, it stops campaigning: its rounds stop, as a killed process's would.
        await a.leadership.stop();
        await until(() => b.leadership.role() === 'leader', 5000);
        expect(Date.now() - killedAt).toBeLessThan(5000);
        // a may have won one more round before it stopped (then b's term is 3, not 2): either way
        // a ends a follower, b led once, with a newer term than any a held.
        expect(changes.a!.at(-1)).toBe('follower');
        expect(changes.a!.filter((r) => r === 'leader').length).toBe(changes.a!.filter((r) => r === 'follower').length);
        expect(changes.b).toEqual(['leader']);
        expect(b.leadership.describe()).toMatchObject({ role: 'leader', holder: 'instance-b' });
        expect(b.leadership.describe().term).toBe(1 + changes.a!.filter((r) => r === 'leader').length);

        // The stale one writes nothing; the new leader seals.
        await expect(a.epochs.sealNext(seal())).rejects.toThrow(/no longer the leader/);
        await expect(
          a.anchors.record([0], {
            network: 'localnet',
            package_id: '0x1',
            registry_id: '0x2',
            tx_digest: 'd',
            checkpoint: '1',
            anchored_at_ms: 1,
          }),
        ).rejects.toThrow(FencedError);
        expect(await b.epochs.sealNext(seal())).toMatchObject({ epoch: 0, size: 2 });
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('a leader whose term was superseded (it has not noticed yet) is fenced in the database and writes nothing', async () => {
      const url = await freshDatabase(cluster!.url);
      const a = await open(url, { instanceId: 'instance-a' });
      const changes: Role[] = [];
      try {
        await a.leadership.start((r) => changes.push(r));
        expect(a.leadership.describe()).toMatchObject({ role: 'leader', term: 1 });
        await a.events.write([item(ev()), item(ev())]);
        expect(await a.epochs.sealNext(seal(1))).toMatchObject({ epoch: 0 });
        await a.anchors.recordAttempt({ tx_digest: 'tx-1', first_epoch: 0, last_epoch: 0, created_at_ms: 5 });

        // Another instance took office while this one was cut off (it still believes it leads).
        await sql(url, "UPDATE leadership SET term = term + 1, holder = 'instance-z'");
        expect(a.leadership.role()).toBe('leader');
        await expect(a.epochs.sealNext(seal())).rejects.toThrow(/term 1 was superseded by term 2 \(instance-z\)/);
        expect(await sql(url, 'SELECT count(*)::int AS n FROM epochs')).toEqual([{ n: 1 }]);
        expect(await sql(url, 'SELECT count(*)::int AS n FROM events WHERE seq IS NULL')).toEqual([{ n: 1 }]);
        expect(changes.slice(0, 2)).toEqual(['leader', 'follower']); // it stepped down on seeing the newer term

        // It campaigns again and comes back with a new term; writes work again.
        await until(() => a.leadership.role() === 'leader', 5000);
        expect(a.leadership.describe().term).toBe(3);
        await a.anchors.recordAttempt({ tx_digest: 'tx-2', first_epoch: 0, last_epoch: 1, created_at_ms: 6 });
        await a.anchors.recordAttempt({ tx_digest: 'tx-2', first_epoch: 0, last_epoch: 1, created_at_ms: 6 }); // idempotent
        expect(await a.anchors.attemptsCovering(0)).toEqual(['tx-2', 'tx-1']);
        await a.anchors.record([0], {
          network: 'localnet',
          package_id: '0x1',
          registry_id: '0x2',
          tx_digest: 'tx-1',
          checkpoint: '9',
          anchored_at_ms: 7,
        });
        await a.anchors.record([0], {
          network: 'localnet',
          package_id: '0x1',
          registry_id: '0x2',
          tx_digest: 'other',
          checkpoint: '10',
          anchored_at_ms: 8,
        });
        expect(await a.anchors.get(0)).toEqual({
          network: 'localnet',
          package_id: '0x1',
          registry_id: '0x2',
          tx_digest: 'tx-1',
          checkpoint: '9',
          anchored_at_ms: 7,
        });
        expect(await a.anchors.anchoredThrough()).toBe(0);
        expect(await a.anchors.get(1)).toBeNull();
      } finally {
        await a.close();
      }
    });

    it('while the database refuses connections it follows and says why; it leads again once it can', async () => {
      const url = await freshDatabase(cluster!.url);
      const name = new URL(url).pathname.slice(1);
      const a = await open(url, { instanceId: 'instance-a' });
      try {
        const changes: Role[] = [];
        await a.leadership.start((r) => changes.push(r));
        await sql(cluster!.url, `ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
        await sql(
          cluster!.url,
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'sui-receipts leader-election%'`,
          [name],
        );
        await until(() => a.leadership.describe().error !== null, 5000);
        expect(a.leadership.describe()).toMatchObject({
          role: 'follower',
          error: expect.stringMatching(/not currently accepting connections/),
        });
        await sql(cluster!.url, `ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
        await until(() => a.leadership.role() === 'leader', 5000);
        expect(a.leadership.describe()).toMatchObject({ role: 'leader', term: 2, error: null });
        expect(changes).toEqual(['leader', 'follower', 'leader']);
      } finally {
        await sql(cluster!.url, `ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
        await a.close();
      }
    });

    it('a seal already past the fence check commits before the next term starts', async () => {
      const url = await freshDatabase(cluster!.url);
      const a = await open(url, { instanceId: 'instance-a' });
      const blocker = new pg.Client({ connectionString: url });
      await blocker.connect();
      try {
        await a.leadership.start(() => {});
        await a.events.write([item(ev()), item(ev())]);
        // Hold an unsealed row so the seal's write stops right after its fence check (reading
        // and hashing take no lock; numbering the rows does).
        await blocker.query('BEGIN');
        await blocker.query('SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT 1 FOR UPDATE');
        const sealing = a.epochs.sealNext(seal());
        const waiting = async (like: string) =>
          (
            await sql<{ n: number }>(
              url,
              `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`,
              [like],
            )
          )[0]!.n === 1;
        await until(() => waiting('UPDATE events SET seq%'));
        // A new term now has to wait for the seal that already passed the check.
        const bump = sql<{ term: string }>(url, "UPDATE leadership SET term = term + 1, holder = 'instance-z' RETURNING term");
        await until(() => waiting('UPDATE leadership%'));
        await blocker.query('COMMIT');
        expect(await sealing).toMatchObject({ epoch: 0, size: 2 });
        expect(await bump).toEqual([{ term: '2' }]);
        // From the new term on, this instance's writes are refused.
        await a.events.write([item(ev())]);
        await expect(a.epochs.sealNext(seal())).rejects.toThrow(FencedError);
        expect(await sql(url, 'SELECT count(*)::int AS n FROM epochs')).toEqual([{ n: 1 }]);
      } finally {
        await blocker.end().catch(() => {});
        await a.close();
      }
    });
  });

  describe('schema', () => {
    it('two instances starting together on a fresh database both open it; each migration is applied once', async () => {
      const url = await freshDatabase(cluster!.url);
      const ledgers = await Promise.all([open(url), open(url), open(url)]);
      try {
        const rows = await sql<{ version: number; name: string }>(url, 'SELECT version, name FROM schema_migrations ORDER BY version');
        expect(rows.map((r) => r.name)).toEqual([
          '001_init.sql',
          '002_epochs.sql',
          '003_anchors.sql',
          '004_classifications.sql',
          '005_key_changes.sql',
          '006_checkpoints.sql',
          '007_key_rights.sql',
          '008_rollups.sql',
          '009_witness_cosignatures.sql',
          '010_corrections.sql',
          // later ones: whatever this build ships, in order
          ...PG_MIGRATIONS.map((m) => m.name).filter((n) => Number(n.slice(0, 3)) > 10),
        ]);
        expect(await sql(url, 'SELECT term FROM leadership')).toEqual([{ term: '0' }]);
        expect(await Promise.all(ledgers.map((l) => l.healthy()))).toEqual([true, true, true]);
        expect(ledgers[0]!.location).toBe(url);
      } finally {
        await Promise.all(ledgers.map((l) => l.close()));
      }
    });

    it('refuses a schema newer than it knows, saying what to do', async () => {
      const url = await freshDatabase(cluster!.url);
      await (await open(url)).close();
      await sql(url, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '999_future.sql', 0)");
      const err = await open(url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SchemaTooNewError);
      expect((err as Error).message).toMatch(
        /schema version 999, newer than this build of sui-receipts knows \((\d+)\)\. Upgrade sui-receipts/,
      );
      expect((err as Error).message).toContain(`knows (${PG_MIGRATIONS.at(-1)!.version})`);
    });

    it('keeps the password out of its location', async () => {
      const u = new URL(await freshDatabase(cluster!.url));
      u.password = 'hunter2';
      const ledger = await open(u.toString()); // trust auth ignores it
      try {
        expect(ledger.location).not.toContain('hunter2');
        expect(ledger.location).toContain(u.pathname);
        expect(await ledger.healthy()).toBe(true);
      } finally {
        await ledger.close();
      }
      expect(await ledger.healthy()).toBe(false);
    });
  });

  describe('keys', () => {
    it('creates, authenticates, lists and revokes keys; only the hash is stored', async () => {
      const url = await freshDatabase(cluster!.url);
      const ledger = await open(url);
      try {
        const k = await ledger.keys.create('acme-inc', ['acme/*'], 1000);
        expect(k.key).toMatch(/^sr_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
        const p = await ledger.keys.authenticate(k.key);
        expect(p).toMatchObject({ keyId: k.id, owner: 'acme-inc', namespaces: ['acme/*'] });
        expect(p!.allows('acme/prod/eu')).toBe(true);
        expect(p!.allows('acmex/prod')).toBe(false);
        expect([...p!.rights]).toEqual(['record', 'read']);
        expect(await ledger.keys.authenticate(k.key.slice(0, -1) + (k.key.endsWith('A') ? 'B' : 'A'))).toBeNull();
        expect(await ledger.keys.authenticate('nonsense')).toBeNull();
        expect(await ledger.keys.list()).toEqual([
          { id: k.id, owner: 'acme-inc', namespaces: ['acme/*'], rights: ['record', 'read'], created_at: 1000, revoked_at: null },
        ]);
        const stored = await sql<{ dump: string }>(url, 'SELECT row_to_json(api_keys)::text AS dump FROM api_keys');
        // The secret is everything after sr_<id>_ (base64url: it may itself hold '_').
        const secret = k.key.slice(`sr_${k.id}_`.length);
        expect(secret).toHaveLength(43);
        expect(stored[0]!.dump).not.toContain(secret);
        expect(await ledger.keys.revoke(k.id, 2000)).toBe(true);
        expect(await ledger.keys.revoke(k.id, 3000)).toBe(false);
        expect(await ledger.keys.authenticate(k.key)).toBeNull();
        await expect(ledger.keys.create('acme-inc', ['ACME/*'])).rejects.toThrow(/namespace pattern "ACME\/\*"/);
      } finally {
        await ledger.close();
      }
    });
  });

  describe('key cache', () => {
    /** How many times `ledger` read a key from the database. */
    const keyReads = (ledger: PostgresLedger) => {
      const spy = vi.spyOn(ledger.pool, 'query');
      return () => spy.mock.calls.filter(([q]) => (q as { name?: string })?.name === 'keys-by-id').length;
    };

    /** Whether `key` is kept: right after one authentication, another reads nothing. */
    const kept = async (ledger: PostgresLedger, key: string, reads: () => number) => {
      await ledger.keys.authenticate(key);
      const before = reads();
      await ledger.keys.authenticate(key);
      return reads() === before;
    };

    it('keeps a key in memory, and drops it when any instance revokes it or it changes by hand', async () => {
      const url = await freshDatabase(cluster!.url);
      const [a, b] = [await open(url), await open(url)];
      try {
        const reads = keyReads(a);
        const k1 = await b.keys.create('acme-inc', ['acme/*']);
        const k2 = await b.keys.create('acme-inc', ['acme/*']);
        const k3 = await b.keys.create('acme-inc', ['acme/*']);
        // The first authentication starts the listener; once it listens, a key read is kept.
        await until(() => kept(a, k1.key, reads));
        const cached = reads();
        expect(await a.keys.authenticate(k1.key)).toMatchObject({ keyId: k1.id });
        expect(reads()).toBe(cached);
        // Revoked through the other instance: refused here as soon as the notice arrives.
        expect(await b.keys.revoke(k1.id)).toBe(true);
        await until(async () => (await a.keys.authenticate(k1.key)) === null, 2000);
        // Changed by hand (an UPDATE, a DELETE): the trigger announces those too.
        for (const k of [k2, k3]) expect(await a.keys.authenticate(k.key)).not.toBeNull();
        await sql(url, 'UPDATE api_keys SET revoked_at = 1 WHERE id = $1', [k2.id]);
        await sql(url, 'DELETE FROM api_keys WHERE id = $1', [k3.id]);
        await until(async () => (await a.keys.authenticate(k2.key)) === null && (await a.keys.authenticate(k3.key)) === null, 2000);
        // A wrong secret for a kept id is refused like any other.
        const k4 = await b.keys.create('acme-inc', ['acme/*']);
        expect(await a.keys.authenticate(k4.key)).not.toBeNull();
        expect(await a.keys.authenticate(k4.key.slice(0, -1) + (k4.key.endsWith('A') ? 'B' : 'A'))).toBeNull();
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('while its listening connection is down, every authentication reads the database; caching resumes when it is back', async () => {
      const url = await freshDatabase(cluster!.url);
      // a reconnects only after a minute: its outage lasts the whole check, whatever the load.
      const a = await open(url, { keyListenerRetryMs: 60_000 });
      const b = await open(url, { keyListenerRetryMs: 200 });
      try {
        const [readsA, readsB] = [keyReads(a), keyReads(b)];
        const k = await a.keys.create('acme-inc', ['acme/*']);
        await until(() => kept(a, k.key, readsA));
        await until(() => kept(b, k.key, readsB));
        // Changes from now on are not announced at all (as if every notice were lost).
        await sql(url, 'ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed');
        await sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN sui_receipts_keys'");
        // Once a notices the drop, nothing kept is trusted: every authentication reads.
        await until(async () => {
          const before = readsA();
          await a.keys.authenticate(k.key);
          return readsA() === before + 1;
        });
        await sql(url, 'UPDATE api_keys SET revoked_at = 1 WHERE id = $1', [k.id]);
        expect(await a.keys.authenticate(k.key)).toBeNull();
        expect(await a.keys.authenticate(k.key)).toBeNull();
        // b too: what it kept from before the drop is gone (it reconnects when next asked).
        expect(b.keys.listening).toBe(false);
        expect(await b.keys.authenticate(k.key)).toBeNull();
        // Asking it reconnects it (200 ms): still refused, nothing from before the drop came back.
        await until(async () => (await b.keys.authenticate(k.key), b.keys.listening));
        expect(await b.keys.authenticate(k.key)).toBeNull();
        expect(await b.keys.authenticate(k.key)).toBeNull();
        await sql(url, 'UPDATE api_keys SET revoked_at = NULL WHERE id = $1', [k.id]);
        await sql(url, 'ALTER TABLE api_keys ENABLE TRIGGER api_keys_changed');
        // And it keeps keys again.
        await until(() => kept(b, k.key, readsB));
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  describe('usage', () => {
    it('groups by action, caller, hour and day with keys in byte order and the asOf bound', async () => {
      const ledger = await open(await freshDatabase(cluster!.url));
      try {
        const hour = 3_600_000;
        const base = Math.floor((NOW - 3 * hour) / hour) * hour;
        await ledger.events.write([
          item(ev({ action: 'recall', caller: 'alice', units: 2, ts: base + 10 })),
          item(ev({ action: 'store', caller: 'Zed', units: 3, ts: base + hour + 10 })),
          item(ev({ action: 'recall', caller: 'alice', units: 4, ts: base + hour + 20 })),
          item(ev({ namespace: 'acme/dev', units: 100, ts: base + 10 })),
        ]);
        const asOf = await ledger.events.latestId();
        await ledger.events.write([item(ev({ action: 'store', units: 50, ts: base + 30 }))]);
        const q = { namespace: 'acme/prod', from: base, to: base + 2 * hour, asOf };
        expect(await ledger.usage.query({ ...q, groupBy: 'action' })).toEqual({
          namespace: 'acme/prod',
          from: base,
          to: base + 2 * hour,
          group_by: 'action',
          groups: [
            { key: 'recall', events: 2, units: 6, billable_events: 2, billable_units: 6 },
            { key: 'store', events: 1, units: 3, billable_events: 1, billable_units: 3 },
          ],
          totals: { events: 3, units: 9, billable_events: 3, billable_units: 9 },
        });
        expect((await ledger.usage.query({ ...q, groupBy: 'caller' })).groups.map((g) => g.key)).toEqual(['Zed', 'alice']);
        expect((await ledger.usage.query({ ...q, groupBy: 'hour' })).groups).toEqual([
          { key: new Date(base).toISOString(), events: 1, units: 2, billable_events: 1, billable_units: 2 },
          { key: new Date(base + hour).toISOString(), events: 2, units: 7, billable_events: 2, billable_units: 7 },
        ]);
        const day = await ledger.usage.query({ ...q, groupBy: 'day', asOf: undefined });
        expect(day.totals).toEqual({ events: 4, units: 59, billable_events: 4, billable_units: 59 });
        expect(day.groups.every((g) => g.key.endsWith('T00:00:00.000Z'))).toBe(true);
        // [from, to) is half-open.
        expect((await ledger.usage.query({ ...q, from: base + 11, groupBy: 'action' })).totals).toEqual({
          events: 2,
          units: 7,
          billable_events: 2,
          billable_units: 7,
        });
      } finally {
        await ledger.close();
      }
    });

    it('sums exactly past 2^63: a decimal string beyond 2^53−1', async () => {
      const ledger = await open(await freshDatabase(cluster!.url), { groupCommit: { maxBatchEvents: 2000 } });
      try {
        const max = Number.MAX_SAFE_INTEGER;
        await ledger.events.write(Array.from({ length: 1100 }, () => item(ev({ units: max, ts: NOW - 1 }))));
        const r = await ledger.usage.query({ namespace: 'acme/prod', from: 0, to: NOW + 1, groupBy: 'action' });
        const expected = (1100n * BigInt(max)).toString();
        expect(1100n * BigInt(max) > 2n ** 63n).toBe(true);
        expect(r.totals).toEqual({ events: 1100, units: expected, billable_events: 1100, billable_units: expected });
        expect(r.groups).toEqual([{ key: 'recall', events: 1100, units: expected, billable_events: 1100, billable_units: expected }]);
      } finally {
        await ledger.close();
      }
    });

    it('a large seal leaves the planner knowing its rows are sealed: the tail reads the unsealed index at once', async () => {
      const url = await freshDatabase(cluster!.url);
      // A long lease: a seal's run is capped by the share of the lease its build may take.
      const ledger = await open(url, { groupCommit: { maxBatchEvents: 5000 }, leaseMs: 60_000 });
      try {
        // Autovacuum off for this table, so that only the seal can have analyzed it since.
        await sql(url, 'ALTER TABLE events SET (autovacuum_enabled = false)');
        const day = 86_400_000;
        for (let b = 0; b < 3; b++)
          await ledger.events.write(Array.from({ length: 4000 }, (_, i) => item(ev({ caller: `c${i % 7}`, ts: NOW - (i % 30) * day }))));
        await sql(url, 'ANALYZE events');
        const nullFrac = async () =>
          Number(
            (await sql<{ f: number }>(url, "SELECT null_frac AS f FROM pg_stats WHERE tablename = 'events' AND attname = 'seq'"))[0]!.f,
          );
        expect(await nullFrac(), 'before the seal: every row unsealed').toBe(1);
        await ledger.leadership.start(() => {});
        for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
        expect(await ledger.epochs.sealNext(seal(12_000))).toMatchObject({ size: 12_000 });
        expect(await nullFrac(), 'after it: sealed, as the planner now knows').toBe(0);
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          const p = new Params();
          const text = partSql(
            { kind: 'tail', key: 'action', from: NOW - 7 * day, to: NOW },
            'acme/prod',
            Number.MAX_SAFE_INTEGER,
            'true',
            p,
            {
              r: 12_000,
              sealed: 12_000,
            },
          );
          const nodes = await planNodes(c, text, p.values);
          // Through an index on seq (the unsealed one, or the unique one: both find seq IS NULL at once).
          expect(nodes.some((n) => n['Index Name'] === 'events_unsealed' || n['Index Name'] === 'events_seq_key')).toBe(true);
          expect(nodes.filter((n) => String(n['Node Type']).includes('Seq Scan') && n['Relation Name'] === 'events')).toEqual([]);
          // While another session holds the lock ANALYZE needs (as a VACUUM or an index build
          // would), the next large seal neither waits for it nor fails: it says the ANALYZE failed.
          for (let b = 0; b < 3; b++)
            await ledger.events.write(Array.from({ length: 4000 }, (_, i) => item(ev({ caller: `d${i % 7}`, ts: NOW - (i % 30) * day }))));
          await c.query('BEGIN');
          await c.query('LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE');
          const phases: string[] = [];
          const started = Date.now();
          const next = await ledger.epochs.sealNext({ ...seal(12_000), progress: (phase) => phases.push(phase) });
          expect(next).toMatchObject({ size: 12_000 });
          expect(phases).toContain('analyze-failed');
          expect(Date.now() - started, 'the seal did not wait for the lock').toBeLessThan(20_000);
          await c.query('ROLLBACK');
        } finally {
          await c.end();
        }
      } finally {
        await ledger.close();
      }
    });

    it('runs on the (namespace, ts) index, never a full scan (EXPLAIN on an ANALYZEd table)', async () => {
      const url = await freshDatabase(cluster!.url);
      const ledger = await open(url, { groupCommit: { maxBatchEvents: 5000 } });
      try {
        const day = 86_400_000;
        await ledger.events.write(
          Array.from({ length: 5000 }, (_, i) =>
            item(ev({ namespace: `tenant-${i % 50}/prod`, caller: `c${i % 7}`, ts: NOW - (i % 30) * day })),
          ),
        );
        await sql(url, 'ANALYZE events');
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          // Receipt pages too: a keyset range on the same index, no sort of the namespace's rows.
          for (const [text, after] of [
            [PAGE_SQL, [NOW - 7 * day, 0]],
            [PAGE_DESC_SQL, [NOW, Number.MAX_SAFE_INTEGER]],
          ] as const) {
            const nodes = await planNodes(c, text, ['tenant-7/prod', NOW - 7 * day, NOW, Number.MAX_SAFE_INTEGER, after[0], after[1], 100]);
            expect(nodes.some((n) => n['Node Type'] === 'Index Scan' && n['Index Name'] === 'events_namespace_ts')).toBe(true);
            expect(nodes.map((n) => n['Node Type'])).not.toContain('Seq Scan');
            expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
            expect(nodes.map((n) => n['Node Type'])).not.toContain('Incremental Sort');
          }
          // As a served ledger is for the usage parts: nearly every event sealed and rolled up, a few waiting.
          await ledger.leadership.start(() => {});
          for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
          expect(await ledger.epochs.sealNext(seal(5000))).toMatchObject({ size: 5000 });
          await ledger.events.write(Array.from({ length: 20 }, (_, i) => item(ev({ namespace: `tenant-${i % 50}/prod`, ts: NOW - day }))));
          await sql(url, 'ANALYZE');
          // A meter's tail too (postgres/meters.ts): never the range through (namespace, ts).
          {
            const p = new Params();
            const part: MeterPart = {
              kind: 'tail',
              from: NOW - 7 * day,
              to: NOW,
              actions: ['recall'],
              time: 'bucket',
              group: null,
              callers: true,
            };
            const nodes = await planNodes(c, meterPartSql(part, 'unique_count', 'tenant-7/prod', p, { r: 1000, sealed: 3000 }), p.values);
            expect(nodes.filter((n) => n['Index Name'] === 'events_namespace_ts')).toEqual([]);
            expect(nodes.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'events')).toEqual([]);
          }
          // Every part of a usage question: events through (namespace, ts), the tail through the
          // unsealed index and the seq and id ranges, the rollups through their primary keys.
          for (const key of ['action', 'caller', 'bucket', 'ts'] as const) {
            for (const part of [
              { kind: 'events', key, from: NOW - 7 * day, to: NOW },
              { kind: 'tail', key, from: NOW - 7 * day, to: NOW },
              { kind: 'rollup', table: 'buckets', key, from: NOW - 7 * day, to: NOW },
              { kind: 'rollup', table: 'callers', key, from: NOW - 7 * day, to: NOW },
            ] as const) {
              const p = new Params();
              // A snapshot mid catch-up and a paged read: every branch of the tail is in the plan.
              const text = partSql(part, 'tenant-7/prod', 4000, 'true', p, { r: 1000, sealed: 3000 });
              // The rollup tables of this small ledger fit in a page or two, where a scan is cheaper;
              // what matters is that their questions can use the key, so scans are priced out there.
              await c.query(`SET enable_seqscan = ${part.kind === 'rollup' ? 'off' : 'on'}`);
              const nodes = await planNodes(c, text, p.values);
              const what = `${part.kind} ${key}`;
              // The tail never reads the range through (namespace, ts): that would be every event of it.
              if (part.kind === 'tail')
                expect(
                  nodes.filter((n) => n['Index Name'] === 'events_namespace_ts'),
                  what,
                ).toEqual([]);
              if (part.kind === 'events')
                expect(
                  nodes.some((n) => n['Index Name'] === 'events_namespace_ts'),
                  what,
                ).toBe(true);
              // rollup_state (one row) and epochs (one probe of its key) may be scanned; events and
              // the rollups never.
              expect(
                nodes
                  .filter((n) => n['Node Type'] === 'Seq Scan')
                  .map((n) => n['Relation Name'])
                  .filter((r) => r !== 'rollup_state' && r !== 'epochs'),
                what,
              ).toEqual([]);
            }
          }
        } finally {
          await c.end();
        }
      } finally {
        await ledger.close();
      }
    });
  });

  describe('copyInto', () => {
    it('copies a SQLite ledger raw: ids, seqs, epochs and nodes kept; the unsealed tail is sealed after it, new ids after the last', async () => {
      const url = await freshDatabase(cluster!.url);
      const ledger = await open(url);
      try {
        const events = [ev({ ts: NOW - 30 }), ev({ ts: NOW - 20 }), ev({ ts: NOW - 10 })];
        const rows = events.map((e, i) => ({
          seq: i + 1,
          namespace: e.namespace,
          request_id: e.request_id,
          owner: 'acme-inc',
          key_id: 'abcdefabcdef',
          caller: e.caller,
          action: e.action,
          units: e.units,
          artifact_digest: null,
          ts: e.ts_ms,
          ts_explicit: 1,
          received_at: e.received_at,
          source: null,
          metadata: null,
          leaf_hash: Buffer.from(leafHash(e)),
        }));
        const tree = buildTree(Buffer.concat(rows.slice(0, 2).map((r) => r.leaf_hash)));
        const data = {
          keys: [
            {
              id: 'abcdefabcdef',
              owner: 'acme-inc',
              namespaces: '["acme/*"]',
              key_hash: Buffer.alloc(32, 1),
              created_at: 1,
              revoked_at: null,
            },
          ],
          events: rows,
          epochs: [
            {
              epoch: 0,
              first_seq: 1,
              last_seq: 2,
              size: 2,
              root: Buffer.from(rootOf(tree)),
              first_ts: NOW - 30,
              last_ts: NOW - 20,
              sealed_at: 5,
            },
          ],
          nodes: tree.levels.map((h, level) => ({ epoch: 0, level, chunk: 0, hashes: Buffer.from(h) })),
          attempts: [{ tx_digest: 'tx-a', first_epoch: 0, last_epoch: 0, created_at: 6 }],
          anchors: [
            { epoch: 0, network: 'testnet', package_id: '0x1', registry_id: '0x2', tx_digest: 'tx-a', checkpoint: '77', anchored_at: 7 },
          ],
        };
        expect(await copyInto(ledger, data)).toEqual({ keys: 1, events: 3, epochs: 1, nodes: 2, attempts: 1, anchors: 1 });
        await expect(copyInto(ledger, data)).rejects.toThrow(/already holds a ledger/);

        expect((await ledger.events.get(2))!.seq).toBe(2);
        expect((await ledger.events.get(3))!.seq).toBeNull();
        expect(await ledger.epochs.containing(2)).toMatchObject({ epoch: 0, root: Buffer.from(rootOf(tree)).toString('hex') });
        expect(await ledger.anchors.get(0)).toMatchObject({ tx_digest: 'tx-a', checkpoint: '77' });
        expect(await ledger.events.write([item(events[0]!)])).toEqual([
          { status: 'duplicate', id: 1, leaf_hash: rows[0]!.leaf_hash.toString('hex') },
        ]);
        const fresh = (await ledger.events.write([item(ev())]))[0]!;
        expect(fresh.status).toBe('created');
        expect(fresh.id).toBeGreaterThan(3); // ids go on after the copied ones (a repeat may use one up)
        await ledger.leadership.start(() => {});
        expect(await ledger.epochs.sealNext(seal())).toMatchObject({ epoch: 1, first_seq: 3, last_seq: 4, size: 2 });
        expect((await ledger.events.get(fresh.id))!.seq).toBe(4);
      } finally {
        await ledger.close();
      }
    });

    it('refuses an inconsistent copy and writes nothing', async () => {
      const url = await freshDatabase(cluster!.url);
      const ledger = await open(url);
      try {
        const e = ev();
        const data = {
          keys: [],
          attempts: [],
          anchors: [],
          nodes: [],
          events: [
            {
              seq: 1,
              namespace: e.namespace,
              request_id: e.request_id,
              owner: 'o',
              key_id: 'k',
              caller: e.caller,
              action: e.action,
              units: 1,
              artifact_digest: null,
              ts: e.ts_ms,
              ts_explicit: 0,
              received_at: e.received_at,
              source: null,
              metadata: null,
              leaf_hash: Buffer.from(leafHash(e)),
            },
          ],
          epochs: [{ epoch: 1, first_seq: 1, last_seq: 1, size: 1, root: Buffer.alloc(32), first_ts: 0, last_ts: 0, sealed_at: 0 }],
        };
        await expect(copyInto(ledger, data)).rejects.toThrow(/epochs are not numbered 0, 1, 2/);
        expect(await sql(url, 'SELECT count(*)::int AS n FROM events')).toEqual([{ n: 0 }]);
      } finally {
        await ledger.close();
      }
    });
  });
});
