// Corrections in `receipts fsck` and `receipts migrate`, as real processes: a ledger with voids and
// amendments (sealed, and after the last epoch) checks out on both engines, fsck recomputes each
// correction's leaf v2 from the version it replaces and names a correction whose columns disagree
// with that version; migrate carries the correction columns to PostgreSQL, where every receipt is
// the same (v2 for the corrections, corrected_by on the replaced versions) and verifies.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { SqliteLedger, type Ledger } from '../../src/ledger/index.ts';
import { openPostgresLedger } from '../../src/ledger/postgres/index.ts';
import type { AnyReceipt } from '../../src/receipt/format.ts';
import { ReceiptReader } from '../../src/receipt/reader.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { event, tempDir, until } from '../helpers.ts';
import { freshDatabase, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { MAIN } from './run.ts';
import { spawn } from 'node:child_process';

/** The CLI as a child process, without blocking this one (the PostgreSQL cluster runs in it). */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const tmp = tempDir('receipts-corrections-cli-');
const cluster: PostgresCluster | null = await startPostgres();
afterAll(async () => {
  await cluster?.stop();
  tmp.cleanup();
});

/**
 * 20 events sealed; amendments and voids of some of them (a chain of three, a void of an original,
 * an amendment of an amendment), part sealed, part after the last epoch. Returns the ids of the
 * corrections and of what they replace.
 */
async function fill(ledger: Ledger): Promise<{ ids: number[]; corrections: number[] }> {
  const { id: keyId } = await ledger.keys.create('acme-inc', ['acme/*']);
  const now = Date.now();
  const batch = Array.from({ length: 20 }, (_, i) => {
    const v = validateEvent(event({ units: i + 1, ts: now - 1000 + i, ...(i % 3 === 0 && { artifact_digest: 'cd'.repeat(32) }) }), {
      now,
      maxAgeMs: DEFAULT_MAX_AGE_MS,
      maxFutureMs: DEFAULT_MAX_FUTURE_MS,
    });
    if (!v.ok) throw new Error(JSON.stringify(v.errors));
    return { event: v.event, owner: 'acme-inc', keyId };
  });
  const ids = (await ledger.events.write(batch)).map((w) => w.id);
  await ledger.leadership.start(() => {});
  await until(() => ledger.leadership.role() === 'leader');
  let n = 0;
  const correct = async (target: number, kind: 'void' | 'amend', changes?: { units?: number; caller?: string }) => {
    const [r] = await ledger.events.correct([
      {
        kind,
        target: { id: target },
        request_id: `fix-${++n}`,
        ...(changes && { changes }),
        owner: 'acme-inc',
        keyId,
        notBeforeMs: 0,
        receivedAtMs: now,
      },
    ]);
    if (r?.status !== 'created') throw new Error(JSON.stringify(r));
    return r.id;
  };
  const a1 = await correct(ids[0]!, 'amend', { units: 100 });
  const a2 = await correct(a1, 'amend', { caller: 'someone-else' });
  const v1 = await correct(ids[1]!, 'void');
  await sealAll(ledger, { maxEvents: 8 });
  const v2 = await correct(a2, 'void'); // after the last epoch
  const a3 = await correct(ids[2]!, 'amend', { units: 0 });
  return { ids: [...ids, a1, a2, v1, v2, a3], corrections: [a1, a2, v1, v2, a3] };
}

async function receiptsOf(ledger: Ledger, ids: number[]): Promise<AnyReceipt[]> {
  const reader = new ReceiptReader(ledger);
  return Promise.all(ids.map(async (id) => reader.receipt((await ledger.events.get(id))!)));
}

describe('receipts fsck and migrate with corrections', () => {
  const file = join(tmp.dir, 'receipts.db');
  let made: { ids: number[]; corrections: number[] };
  let before: AnyReceipt[];

  beforeAll(async () => {
    const ledger = new SqliteLedger(file, { synchronous: 'normal' });
    made = await fill(ledger);
    before = await receiptsOf(ledger, made.ids);
    await ledger.close();
  }, 60_000);

  const sqlite = (text: string, ...values: unknown[]) => {
    const db = new Database(file);
    try {
      db.prepare(text).run(...values);
    } finally {
      db.close();
    }
  };

  it('the ledger has sealed and unsealed corrections, whose receipts are v2 and verify', () => {
    const byId = new Map(made.ids.map((id, i) => [id, before[i]!]));
    const [a1, a2, v1, v2] = made.corrections as [number, number, number, number];
    expect(byId.get(a1)).toMatchObject({ version: 2, status: 'sealed', corrected_by: { id: a2, kind: 'amend' } });
    expect(byId.get(v2)).toMatchObject({ version: 2, status: 'pending', event: { kind: 'void' } });
    expect(byId.get(v1)).toMatchObject({ version: 2, event: { kind: 'void', units: 0 } });
    for (const r of before) if (r.status !== 'pending') expect(verifyReceipt(r).ok).toBe(true);
  });

  it('fsck checks out, every correction leaf v2 rebuilt from the version it replaces', async () => {
    const r = await run(['fsck', '--db', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, events_checked: 23, unsealed_checked: 2 });
  });

  it.each([
    [
      'prev_units',
      'UPDATE events SET prev_units = prev_units + 1 WHERE seq = ?',
      'UPDATE events SET prev_units = prev_units - 1 WHERE seq = ?',
      /prev_units is \d+, but the version it replaces has \d+/,
    ],
    [
      'chain_id',
      'UPDATE events SET chain_id = chain_id + 1 WHERE seq = ?',
      'UPDATE events SET chain_id = chain_id - 1 WHERE seq = ?',
      /chain_id is \d+, but the version it replaces belongs to the chain of event \d+/,
    ],
    [
      'prev_caller',
      "UPDATE events SET prev_caller = prev_caller || 'x' WHERE seq = ?",
      'UPDATE events SET prev_caller = substr(prev_caller, 1, length(prev_caller) - 1) WHERE seq = ?',
      /prev_caller is "[^"]+x", but the version it replaces has/,
    ],
  ])('fsck names a correction whose %s does not match the replaced version', async (_what, change, undo, message) => {
    const target = made.corrections[1]!; // a sealed amendment of an amendment
    sqlite(change, target);
    try {
      const r = await run(['fsck', '--db', file, '--json']);
      expect(r.code).toBe(1);
      const report = JSON.parse(r.stdout);
      expect(report.problem).toMatchObject({ code: 'correction', event: target });
      expect(report.problem.message).toMatch(message);
    } finally {
      sqlite(undo, target);
    }
  });

  it('fsck recomputes the leaf v2 with the replaced version: a correction pointed elsewhere no longer hashes', async () => {
    const [, , , v2] = made.corrections as [number, number, number, number];
    // The unsealed void of a2, pointed at a1 (same chain, same values taken back): only the leaf can tell.
    const a1 = made.corrections[0]!;
    sqlite('UPDATE events SET corrects_id = ? WHERE seq = ?', a1 + 1000, v2);
    try {
      const r = await run(['fsck', '--db', file, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).problem).toMatchObject({
        code: 'correction',
        event: v2,
        message: expect.stringMatching(/is not in the ledger/),
      });
    } finally {
      sqlite('UPDATE events SET corrects_id = ? WHERE seq = ?', made.corrections[1]!, v2);
    }
    // Its stored leaf hash changed: the leaf v2 no longer matches.
    const db = new Database(file);
    const stored = db.prepare('SELECT leaf_hash FROM events WHERE seq = ?').pluck().get(v2) as Buffer;
    db.close();
    sqlite('UPDATE events SET leaf_hash = ? WHERE seq = ?', Buffer.alloc(32, 7), v2);
    try {
      const r = await run(['fsck', '--db', file, '--json']);
      expect(JSON.parse(r.stdout).problem).toMatchObject({ code: 'leaf_hash', event: v2 });
    } finally {
      sqlite('UPDATE events SET leaf_hash = ? WHERE seq = ?', stored, v2);
    }
    expect((await run(['fsck', '--db', file])).code).toBe(0);
  });

  describe.skipIf(!cluster)('migrate to PostgreSQL', () => {
    it('carries every correction: the same receipts (v2, corrected_by), fsck passes on the copy', async () => {
      const url = await freshDatabase(cluster!.url);
      const r = await run(['migrate', '--from', file, '--to', url, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ copied: { events: 25 } });
      const checked = await run(['fsck', '--db', url, '--json']);
      expect(checked.code, checked.stdout).toBe(0);
      const ledger = await openPostgresLedger(url, { leaseMs: 600 });
      try {
        const after = await receiptsOf(ledger, made.ids);
        expect(after).toEqual(before);
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        const rows = (
          await c.query(
            'SELECT id, kind, corrects_id, chain_id, prev_caller, prev_action, prev_units FROM events WHERE kind <> 0 ORDER BY id',
          )
        ).rows;
        await c.end();
        expect(rows.map((x) => Number(x.id))).toEqual(made.corrections);
        expect(rows.every((x) => x.chain_id !== null && x.prev_caller !== null && x.prev_units !== null)).toBe(true);
        // The unsealed void still links to its chain on the copy.
        expect((await ledger.events.chainOf(made.corrections[3]!)).map((e) => e.id)).toEqual([
          made.ids[0],
          ...made.corrections.slice(0, 2),
          made.corrections[3],
        ]);
      } finally {
        await ledger.close();
      }
    });
  });
});
