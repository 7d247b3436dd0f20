// `receipts serve` billable classification flags, through the real executable.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.ts';
import { MAIN, receipts, serve } from './run.ts';

const t = tempDir('receipts-cls-');
afterAll(() => t.cleanup());

describe('receipts serve --billable-actions …', () => {
  it('stores the classification, publishes it, and refuses a later change from a past time (exit 1, a sentence)', async () => {
    const file = join(t.dir, 'cls.db');
    const s = await serve(['--db', file, '--billable-actions', 'recall,extract', '--non-billable-actions', 'ping'], {
      RECEIPTS_OTHER_ACTIONS: 'non_billable',
    });
    try {
      const key = JSON.parse(receipts(['keys', 'create', '--db', file, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
      const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
      const body = JSON.stringify({
        events: [
          { request_id: 'a', namespace: 'acme/p', action: 'recall', caller: 'c', units: 5 },
          { request_id: 'b', namespace: 'acme/p', action: 'ping', caller: 'c', units: 9 },
        ],
      });
      expect((await fetch(`${s.url}/v1/events`, { method: 'POST', headers, body })).status).toBe(200);
      const c = await (await fetch(`${s.url}/v1/classification`, { headers })).json();
      expect(c.in_force).toEqual({ from_ms: 0, billable: ['extract', 'recall'], non_billable: ['ping'], other: 'non_billable' });
      const u = await (await fetch(`${s.url}/v1/usage?namespace=acme/p`, { headers })).json();
      expect(u.totals).toEqual({ events: 2, units: 14, billable_events: 1, billable_units: 5 });
    } finally {
      s.proc.kill('SIGTERM');
      await s.exited;
    }

    const past = new Date(Date.now() - 3_600_000).toISOString();
    const refused = receipts(['serve', '--db', file, '--port', '0', '--billable-actions', 'recall,ping', '--classification-from', past]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error: classification from .* is refused: .*retroactive.*Use a --classification-from of .* or later/);

    // Restarting with the same classification (any order) changes nothing; without flags the stored one stays in force.
    const same = await serve([
      '--db',
      file,
      '--billable-actions',
      'extract,recall',
      '--non-billable-actions',
      'ping',
      '--other-actions',
      'non_billable',
    ]);
    same.proc.kill('SIGTERM');
    await same.exited;
    expect(same.output()).toMatch(/billable classification unchanged/);
  });

  it('refuses bad classification flags with the flag and the rule, before opening anything', () => {
    const file = join(t.dir, 'bad.db');
    const both = receipts(['serve', '--db', file, '--port', '0', '--billable-actions', 'recall', '--non-billable-actions', 'recall']);
    expect(both.code).toBe(2); // a bad flag: the message and the usage, exit 2 (README)
    expect(both.stderr).toMatch(/"recall" cannot be both billable and non_billable/);
    expect(both.stderr).toMatch(/Usage: receipts serve/);
    const pattern = receipts(['serve', '--db', file, '--port', '0', '--billable-actions', 'Recall!']);
    expect(pattern.code).toBe(2);
    expect(pattern.stderr).toMatch(/--billable-actions: "Recall!" is not an action/);
    const json = join(t.dir, 'c.json');
    writeFileSync(json, '{"billable":["recall"],"other":"free"}');
    const fileBad = receipts(['serve', '--db', file, '--port', '0', '--classification', json]);
    expect(fileBad.stderr).toMatch(/other must be one of billable, non_billable, info/);
    expect(fileBad.code).toBe(2);
    const mixed = receipts(['serve', '--db', file, '--port', '0', '--classification', json, '--billable-actions', 'x']);
    expect(mixed.stderr).toMatch(/are alternatives/);
    const when = receipts(['serve', '--db', file, '--port', '0', '--billable-actions', 'x', '--classification-from', 'yesterday']);
    expect(when.code).toBe(2);
    expect(when.stderr).toMatch(/--classification-from.*RFC 3339/);
  });

  it.each([
    ['--billable-actions', ['--billable-actions', ''], {}],
    ['--billable-actions', ['--billable-actions', ' , '], {}],
    ['--non-billable-actions', ['--billable-actions', 'recall', '--non-billable-actions', ''], {}],
    ['--billable-actions', [], { RECEIPTS_BILLABLE_ACTIONS: '' }],
    ['--billable-actions', [], { RECEIPTS_BILLABLE_ACTIONS: '   ' }],
    ['--non-billable-actions', [], { RECEIPTS_NON_BILLABLE_ACTIONS: '' }],
  ] as const)('refuses an empty or blank %s (%j %j): exit 2 with the usage, and no period is stored', (flag, args, env) => {
    const file = join(t.dir, `empty-${Math.random().toString(36).slice(2)}.db`);
    const r = receipts(['serve', '--db', file, '--port', '0', ...args], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`option '${flag} <list>'`);
    const variable = Object.keys(env)[0];
    if (variable) expect(r.stderr).toContain(`from env '${variable}'`);
    expect(r.stderr).toMatch(/must name at least one action.*periods are never removed/);
    expect(r.stderr).toMatch(/Usage: receipts serve/);
    expect(existsSync(file)).toBe(false); // refused before the ledger was opened: nothing appended
  });

  it('reads --classification only from a regular file: /dev/zero and a FIFO are refused at once (exit 2), never a hang', () => {
    const fifo = join(t.dir, 'cls.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [path, env] of [
      ['/dev/zero', {}],
      [fifo, {}],
      [t.dir, {}],
      [fifo, { RECEIPTS_CLASSIFICATION: fifo }],
    ] as const) {
      const file = join(t.dir, `dev-${Math.random().toString(36).slice(2)}.db`);
      const args = 'RECEIPTS_CLASSIFICATION' in env ? [] : ['--classification', path];
      const started = Date.now();
      // A hang (or reading /dev/zero into memory) is killed by the timeout and fails here.
      const r = spawnSync(process.execPath, [MAIN, 'serve', '--db', file, '--port', '0', ...args], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        timeout: 10_000,
      });
      expect(r.signal, `${path}: ${r.stderr}`).toBeNull();
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--classification ${path}: cannot read it (it is not a regular file`);
      expect(r.stderr).toMatch(/Usage: receipts serve/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(existsSync(file)).toBe(false);
    }
    const big = join(t.dir, 'big.json');
    writeFileSync(big, `{"billable":["recall"]}${' '.repeat(1024 * 1024)}`);
    const tooBig = receipts(['serve', '--db', join(t.dir, 'big.db'), '--port', '0', '--classification', big]);
    expect(tooBig.code).toBe(2);
    expect(tooBig.stderr).toMatch(/larger than 1048576 bytes/);
    const blank = receipts(['serve', '--db', join(t.dir, 'blank.db'), '--port', '0'], { RECEIPTS_CLASSIFICATION: '' });
    expect(blank.code).toBe(2);
    expect(blank.stderr).toMatch(/--classification : cannot read it \(the file name is empty\)/);
  });
});
