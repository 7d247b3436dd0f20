// Operating the service, through its public surface: the backlog gauges of GET /metrics, the
// structured anchoring health of GET /healthz, what a leader logs when it stops or loses the
// role, and (SQLite) the seal worker opening the file as serve asked.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MoveAbortError } from '../../src/chain/chain.ts';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { FakeChain } from '../anchor/fake-chain.ts';
import { event, tempDir, testServer, testServerOn, until, type LedgerFactory, type TestServer } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

/** One sample of an unlabelled metric from GET /metrics (NaN stays NaN; absent is undefined). */
async function sample(s: TestServer, name: string): Promise<number | undefined> {
  const body = (await s.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function samples(s: TestServer, names: string[]): Promise<Record<string, number | undefined>> {
  const body = (await s.app.inject({ method: 'GET', url: '/metrics' })).body;
  const lines = body.split('\n');
  return Object.fromEntries(
    names.map((n) => [n, ((l) => (l === undefined ? undefined : Number(l.slice(n.length + 1))))(lines.find((l) => l.startsWith(`${n} `)))]),
  );
}

const BACKLOG = [
  'receipts_unsealed_events',
  'receipts_unsealed_oldest_age_seconds',
  'receipts_last_sealed_timestamp_seconds',
  'receipts_unanchored_epochs',
  'receipts_unanchored_oldest_age_seconds',
  'receipts_last_anchored_timestamp_seconds',
  'receipts_last_anchored_checkpoint',
];

forEachEngine((fresh, engine) => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  describe('GET /metrics: what waits to be sealed and anchored', () => {
    it('reports unsealed events and the age of the oldest, unanchored epochs and the age of the oldest, and the last seal and anchor', async () => {
      const chain = new FakeChain();
      chain.readTimeouts = 1e9; // the chain cannot be read: epochs stay unanchored until the test lets it
      let clock = Date.now();
      s = await testServerOn(fresh, { anchoring: { chain, pollMs: 5, backoff: { baseMs: 5, maxMs: 10 } }, now: () => clock });
      await s.app.ready();
      expect(await samples(s, BACKLOG)).toEqual(Object.fromEntries(BACKLOG.map((n) => [n, 0])));

      const received = clock;
      for (let i = 0; i < 3; i++) expect((await s.post(event())).json().results[0].status).toBe('created');
      clock += 90_000;
      expect(await samples(s, BACKLOG.slice(0, 4))).toEqual({
        receipts_unsealed_events: 3,
        receipts_unsealed_oldest_age_seconds: 90,
        receipts_last_sealed_timestamp_seconds: 0,
        receipts_unanchored_epochs: 0,
      });

      const sealedAt = clock;
      expect((await sealAll(s.ledger, { maxEvents: 2, now: sealedAt })).map((e) => e.size)).toEqual([2, 1]);
      clock += 30_000;
      expect(await samples(s, BACKLOG.slice(0, 6))).toEqual({
        receipts_unsealed_events: 0,
        receipts_unsealed_oldest_age_seconds: 0,
        receipts_last_sealed_timestamp_seconds: sealedAt / 1000,
        receipts_unanchored_epochs: 2,
        receipts_unanchored_oldest_age_seconds: 30,
        receipts_last_anchored_timestamp_seconds: 0,
      });
      expect(received).toBeLessThan(sealedAt);

      const before = Date.now();
      chain.readTimeouts = 0;
      await until(async () => (await sample(s!, 'receipts_unanchored_epochs')) === 0);
      const after = await samples(s, BACKLOG);
      expect(after.receipts_unanchored_oldest_age_seconds).toBe(0);
      expect(after.receipts_last_anchored_checkpoint).toBe(1000);
      expect(after.receipts_last_anchored_timestamp_seconds! * 1000).toBeGreaterThanOrEqual(before);
      expect(after.receipts_last_anchored_timestamp_seconds! * 1000).toBeLessThanOrEqual(Date.now());
    });

    it('leaves the anchoring gauges out when the service does not anchor (every epoch would look overdue)', async () => {
      s = await testServerOn(fresh);
      await s.post(event());
      const got = await samples(s, BACKLOG);
      expect(got.receipts_unsealed_events).toBe(1);
      expect(got.receipts_unanchored_epochs).toBeUndefined();
      expect(got.receipts_last_anchored_timestamp_seconds).toBeUndefined();
    });

    it('a failed ledger read shows as NaN and is counted, and the scrape still answers', async () => {
      s = await testServerOn(fresh);
      await s.post(event());
      await s.ledger.close();
      const res = await s.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatch(/^receipts_unsealed_events NaN$/im);
      expect(res.body).toMatch(/^receipts_ledger_gauge_read_errors_total 1$/m);
    });
  });

  describe('GET /healthz', () => {
    it('reports anchoring as { status, error } beside the one-string check, and who leads', async () => {
      s = await testServerOn(fresh);
      const ok = (await s.app.inject({ method: 'GET', url: '/healthz' })).json();
      expect(ok).toMatchObject({
        status: 'ok',
        role: 'leader',
        checks: { database: 'ok', anchoring: 'off' },
        anchoring: { status: 'off', error: null },
      });
      if (engine === 'postgres')
        expect(ok.ledger).toEqual({ engine, term: expect.any(Number), leader: expect.any(String), election_error: null });
      else
        expect(ok.ledger).toEqual({
          engine,
          term: null,
          leader: expect.stringMatching(new RegExp(`:${process.pid}$`)),
          election_error: null,
        });
    });

    it('a stopped anchorer is { status: failed, error } and degrades the service', async () => {
      const chain = new FakeChain();
      chain.anchor = async () => {
        throw new MoveAbortError('EWrongCap', 'MoveAbort in registry::anchor: EWrongCap');
      };
      s = await testServerOn(fresh, { anchoring: { chain, pollMs: 5 } });
      await s.app.ready();
      await s.post(event());
      await sealAll(s.ledger, { maxEvents: 100 });
      await until(async () => (await s!.app.inject({ method: 'GET', url: '/healthz' })).json().status === 'degraded');
      const health = (await s.app.inject({ method: 'GET', url: '/healthz' })).json();
      expect(health.anchoring).toEqual({
        status: 'failed',
        error: expect.stringMatching(/^anchoring epochs 0–0 aborted on chain with EWrongCap/),
      });
      expect(health.checks.anchoring).toBe(`failed: ${health.anchoring.error}`);
    });
  });

  describe('leadership in the log', () => {
    it('a leader that stops says it gave up leadership, not that another instance seals', async () => {
      s = await testServerOn(fresh, { sealing: { epochMs: 60_000, maxEvents: 1000 } });
      await s.app.ready();
      await until(() => s!.logs.join('').includes('this instance now leads'));
      await s.app.close();
      const logs = s.logs.join('');
      expect(logs).toMatch(/this instance gave up leadership because it is stopping/);
      expect(logs).not.toMatch(/another one seals/);
    });

    it.runIf(engine === 'postgres')('a leader whose lock connection is cut says it lost leadership, and leads again', async () => {
      s = await testServerOn(fresh);
      await until(() => s!.logs.join('').includes('this instance now leads'));
      await s.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'sui-receipts leader-election%'");
      await until(() => s!.logs.join('').includes('this instance lost leadership'));
      await until(() => s!.logs.join('').split('this instance now leads').length === 3);
      const lost = s.logs.find((l) => l.includes('lost leadership'))!;
      expect(JSON.parse(lost)).toMatchObject({ level: 40, role: 'follower', engine: 'postgres' });
      expect(s.logs.join('')).not.toMatch(/another one seals/);
    });
  });
});

describe('the SQLite seal worker', () => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });
  const on =
    (synchronous: 'full' | 'normal'): LedgerFactory =>
    async () => {
      const { dir, cleanup } = tempDir();
      return { ledger: new SqliteLedger(join(dir, 'receipts.db'), { synchronous }), cleanup: async () => cleanup() };
    };

  for (const synchronous of ['normal', 'full'] as const) {
    it(`opens its connection with serve's --synchronous ${synchronous}, and seals`, async () => {
      s = await testServer({ sealing: { epochMs: 10, maxEvents: 100 } }, on(synchronous));
      await s.app.ready();
      await until(() => s!.logs.some((l) => l.includes('seal worker opened its own connection')));
      const opened = JSON.parse(s.logs.find((l) => l.includes('seal worker opened its own connection'))!);
      expect(opened).toMatchObject({ synchronous, journal_mode: 'wal' });
      await s.post(event());
      await until(async () => (await s!.ledger.epochs.latest()) !== undefined);
    });
  }

  it('does not run migrations on the file the service already opened', async () => {
    s = await testServer({ sealing: { epochMs: 10, maxEvents: 100 } }, async () => {
      const { dir, cleanup } = tempDir();
      const file = join(dir, 'receipts.db');
      // A step recorded as not applied though its tables exist: re-running it fails ("already exists").
      const ledger = new SqliteLedger(file, { synchronous: 'normal' });
      ledger.db.prepare('DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)').run();
      return { ledger, cleanup: async () => cleanup() };
    });
    const versions = () => s!.db().prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all();
    const recorded = versions();
    await s.app.ready();
    await s.post(event());
    await until(async () => (await s!.ledger.epochs.latest()) !== undefined, 8_000);
    expect(versions()).toEqual(recorded);
    expect(s.logs.join('')).not.toMatch(/seal worker could not open/);
  });
});
