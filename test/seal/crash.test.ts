// kill -9 in the middle of sealing a large epoch: afterwards the epoch is there whole or not at
// all, no event is in two epochs, none is skipped, and sealing again completes it.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { validateEvent } from '../../src/event/validate.ts';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { rootOf, buildTree } from '../../src/merkle/tree.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { MAIN } from '../cli/run.ts';
import { tempDir } from '../helpers.ts';

const t = tempDir('receipts-sealcrash-');
afterAll(() => t.cleanup());
const N = 150_000;

async function fill(file: string) {
  const ledger = new SqliteLedger(file, { synchronous: 'normal', groupCommit: { maxBatchEvents: 10_000 } });
  const now = Date.now();
  const writes = [];
  for (let i = 0; i < N; i++) {
    const v = validateEvent(
      { request_id: `e${i}`, namespace: 'acme/seal', action: 'recall', caller: `c${i % 100}`, units: 1 },
      { now, maxAgeMs: 1e9, maxFutureMs: 1e6 },
    );
    if (!v.ok) throw new Error('bad event');
    writes.push(ledger.events.write([{ event: v.event, owner: 'acme', keyId: 'k' }]));
  }
  await Promise.all(writes);
  await ledger.close();
}

/** Runs `receipts seal` and kills it with SIGKILL as soon as it reports `phase`. */
function sealAndKillAt(file: string, phase: string): Promise<{ signal: string | null; sawPhase: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'seal', '--db', file, '--max-events', String(N)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let sawPhase = false;
    child.stderr.on('data', (d: Buffer) => {
      if (!sawPhase && d.toString().includes(`: ${phase} `)) {
        sawPhase = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (_code, signal) => resolve({ signal, sawPhase }));
  });
}

function check(file: string) {
  new SqliteLedger(file).closeSync(); // recovery, as on restart
  const db = new Database(file, { readonly: true });
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  const epochs = db.prepare('SELECT epoch, size, root, first_seq, last_seq FROM epochs ORDER BY epoch').all() as Array<{
    epoch: number;
    size: number;
    root: Buffer;
    first_seq: number;
    last_seq: number;
  }>;
  const nodes = db.prepare('SELECT count(DISTINCT epoch) AS n FROM epoch_nodes').get() as { n: number };
  expect(nodes.n).toBe(epochs.length); // no nodes of an epoch that is not there
  epochs.forEach((e, i) => {
    expect(e.epoch).toBe(i); // no gap in epoch numbers
    expect(e.first_seq).toBe(i === 0 ? 1 : epochs[i - 1]!.last_seq + 1); // no event skipped, none in two epochs
  });
  db.close();
  return epochs;
}

it('leaves the whole epoch or none of it when killed mid-seal, and resealing completes it', async () => {
  const file = join(t.dir, 'seal.db');
  await fill(file);

  const early = await sealAndKillAt(file, 'read'); // killed while hashing: inside the transaction
  expect(early).toEqual({ signal: 'SIGKILL', sawPhase: true });
  expect(check(file)).toEqual([]); // nothing of the epoch survived

  const late = await sealAndKillAt(file, 'stored'); // killed while assigning leaf indexes
  expect(late.signal === 'SIGKILL' || late.signal === null).toBe(true);
  const after = check(file); // whole or nothing, whichever the kill allowed
  expect(after.length === 0 || (after.length === 1 && after[0]!.size === N)).toBe(true);

  const ledger = new SqliteLedger(file);
  await sealAll(ledger, { maxEvents: N });
  await ledger.close();
  const [epoch, ...rest] = check(file);
  expect(rest).toEqual([]);
  expect(epoch!.size).toBe(N);

  const db = new Database(file, { readonly: true });
  const rows = db.prepare('SELECT seq, leaf_hash FROM events ORDER BY seq').raw(true).all() as Array<[number, Buffer]>;
  expect(rows.length).toBe(N);
  expect([epoch!.first_seq, epoch!.last_seq]).toEqual([rows[0]![0], rows.at(-1)![0]]); // every event once, in ledger order
  expect(Buffer.from(rootOf(buildTree(new Uint8Array(Buffer.concat(rows.map((r) => r[1])))))).equals(epoch!.root)).toBe(true);
  db.close();
}, 120_000);
