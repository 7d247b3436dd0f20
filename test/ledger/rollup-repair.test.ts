// Rollups are checked against their events and repaired from them: `receipts fsck` names a rollup
// row that differs (table, namespace, bucket, action, both sides' values), `receipts rollups
// rebuild` drops and rebuilds them, and a ledger whose rollups are missing (one from before them,
// or mid-rebuild) still answers usage exactly and is rolled up again before the next seal.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { fsck } from '../../src/fsck/index.ts';
import { SqliteLedger, type Ledger } from '../../src/ledger/index.ts';
import type { PostgresLedger } from '../../src/ledger/postgres/index.ts';
import { postgresReader } from '../../src/ledger/postgres/readers.ts';
import { sqliteReader } from '../../src/ledger/sqlite/readers.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { receipts, serve } from '../cli/run.ts';
import { forEachEngine } from '../support/engines.ts';

const NOW = Date.now();
/** Yesterday 12:00 UTC: the events of items() (5 hours back from it) lie in one UTC day whatever the hour now. */
const NOON = Math.floor(NOW / 86_400_000) * 86_400_000 - 43_200_000;
let counter = 0;
const items = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const v = validateEvent(
      {
        request_id: `rr-${++counter}`,
        namespace: 'acme/prod',
        action: i % 3 ? 'chat' : 'recall',
        caller: `u${i % 4}`,
        units: i,
        ts: NOON - i * 600_000,
      },
      { now: NOW, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
    );
    if (!v.ok) throw new Error(JSON.stringify(v.errors));
    return { event: v.event, owner: 'acme', keyId: 'abcdefabcdef' };
  });

forEachEngine((fresh, engine) => {
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  afterEach(async () => {
    await ledger.close();
    await cleanup();
  });

  /** Runs SQL on the engine's own connection (the tampering a test needs; stages never do this). */
  const exec = async (sql: string) => {
    if (engine === 'sqlite') (ledger as SqliteLedger).db.exec(sql);
    else await (ledger as unknown as PostgresLedger).pool.query(sql);
  };
  const check = async () => {
    if (engine === 'sqlite') return fsck(sqliteReader((ledger as SqliteLedger).db, 'test'));
    const client = await (ledger as unknown as PostgresLedger).pool.connect();
    try {
      return await fsck(postgresReader(client, 'test'));
    } finally {
      client.release();
    }
  };
  const total = async () => (await ledger.usage.query({ namespace: 'acme/prod', from: 0, to: NOW + 1, groupBy: 'action' })).totals;

  describe('rollup check and repair', () => {
    it('fsck names a rollup row that differs from its events; clear and catch-up rebuild it; usage stays exact meanwhile', async () => {
      ({ ledger, cleanup } = await fresh());
      await ledger.leadership.start(() => {});
      for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
      await ledger.events.write(items(60));
      while (await sealNext(ledger, { maxEvents: 25 }));
      const exact = await total();
      expect(exact.events).toBe(60);
      expect((await check()).ok).toBe(true);
      expect((await check()).rollup_differences).toBe(0);

      // One bucket's count raised by hand: usage is now wrong there, and fsck says where.
      await exec(
        "UPDATE usage_buckets SET n = n + 1 WHERE action = 'recall' AND bucket = (SELECT min(bucket) FROM usage_buckets WHERE action = 'recall')",
      );
      expect((await total()).events).toBe(61);
      const report = await check();
      expect(report.ok).toBe(false);
      expect(report.rollup_differences).toBe(1);
      expect(report.problem).toMatchObject({ code: 'rollup' });
      expect(report.problem!.message).toMatch(
        /usage_buckets of namespace "acme\/prod", the 15-minute bucket at .*Z, action "recall": stored \[/,
      );
      expect(report.problem!.message).toMatch(/receipts rollups rebuild/);

      // Dropped: usage is read from the events, exact; rebuilt: the same, from the rollups again.
      await ledger.epochs.clearRollups();
      expect(await total()).toEqual(exact);
      const steps: number[] = [];
      expect(await ledger.epochs.catchUpRollups((p) => steps.push(p.done))).toBe(3);
      expect(steps).toEqual([1, 2, 3]);
      expect(await total()).toEqual(exact);
      const after = await check();
      expect(after.ok).toBe(true);
      expect(after.rollup_differences).toBe(0);
    });

    it('a ledger whose rollups are behind is rolled up before the next seal, in epoch order', async () => {
      ({ ledger, cleanup } = await fresh());
      await ledger.leadership.start(() => {});
      for (let i = 0; i < 200 && ledger.leadership.role() !== 'leader'; i++) await new Promise((r) => setTimeout(r, 20));
      await ledger.events.write(items(40));
      while (await sealNext(ledger, { maxEvents: 10 }));
      await ledger.epochs.clearRollups(); // as a ledger migrated from before rollups starts
      await ledger.events.write(items(5));
      const phases: string[] = [];
      await sealNext(ledger, { maxEvents: 100, progress: (phase) => phases.push(phase) });
      expect(phases.filter((p) => p === 'rollup-catch-up').length).toBe(4); // the 4 epochs sealed before
      expect(phases.filter((p) => p === 'rolled-up').length).toBe(1); // then the new one, in its seal
      expect((await total()).events).toBe(45);
      expect((await check()).rollup_differences).toBe(0);
    });
  });
});

describe('an upgraded ledger (a real process, SQLite file)', () => {
  it('receipts serve rolls up the epochs sealed before rollups on start, and says so in its log', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rollup-upgrade-'));
    try {
      const file = join(dir, 'ledger.db');
      const ledger = new SqliteLedger(file);
      await ledger.events.write(items(30));
      while (await sealNext(ledger, { maxEvents: 10 }));
      await ledger.epochs.clearRollups(); // as a ledger from before rollups: state -1, no rows
      await ledger.close();
      const served = await serve(['--db', file]);
      try {
        const deadline = Date.now() + 60_000;
        while (!/rolled up 3 epochs sealed before them/.test(served.output()) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 200));
        expect(served.output()).toMatch(/usage rollups: rolled up 3 epochs sealed before them; usage reads them now/);
      } finally {
        served.proc.kill('SIGTERM');
        await served.exited;
      }
      const after = new SqliteLedger(file);
      expect(after.db.prepare('SELECT epoch FROM rollup_state').pluck().get() as number).toBe(2);
      await after.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('receipts fsck and receipts rollups rebuild (a real process, SQLite file)', () => {
  it('fsck exits 1 naming the rollup row; rebuild repairs it; fsck exits 0 again', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rollup-repair-'));
    try {
      const file = join(dir, 'ledger.db');
      const ledger = new SqliteLedger(file);
      await ledger.events.write(items(30));
      while (await sealNext(ledger, { maxEvents: 10 }));
      ledger.db.exec("UPDATE usage_caller_days SET n = n + 2 WHERE caller = 'u1'");
      await ledger.close();

      const bad = receipts(['fsck', '--db', file, '--json']);
      expect(bad.code, bad.stderr).toBe(1);
      const report = JSON.parse(bad.stdout);
      expect(report).toMatchObject({ ok: false, rollup_differences: 1, problem: { code: 'rollup' } });
      expect(report.problem.message).toMatch(/usage_caller_days of namespace "acme\/prod", the UTC day \d{4}-\d\d-\d\d, caller "u1"/);
      const text = receipts(['fsck', '--db', file]);
      expect(text.stdout).toMatch(/epochs, trees and events check out, but 1 usage rollup row differs/);

      const rebuilt = receipts(['rollups', 'rebuild', '--db', file]);
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stdout).toMatch(/rebuilt the usage rollups of 3 epochs from their events/);
      const good = receipts(['fsck', '--db', file, '--json']);
      expect(good.code, good.stdout + good.stderr).toBe(0);
      expect(JSON.parse(good.stdout)).toMatchObject({ ok: true, rollup_differences: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
