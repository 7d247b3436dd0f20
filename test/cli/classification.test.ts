// `receipts serve` billable classification flags, through the real executable.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.ts';
import { receipts, serve } from './run.ts';

const t = tempDir('receipts-cls-');
afterAll(() => t.cleanup());

describe('receipts serve --billable-actions …', () => {
  it('stores the classification, publishes it, and refuses a later change from a past time (exit 1, a sentence)', async () => {
    const file = join(t.dir, 'cls.db');
    const s = await serve(['--db', file, '--billable-actions', 'recall,extract', '--non-billable-actions', 'ping'], { RECEIPTS_OTHER_ACTIONS: 'non_billable' });
    try {
      const key = JSON.parse(receipts(['keys', 'create', '--db', file, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
      const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
      const body = JSON.stringify({ events: [{ request_id: 'a', namespace: 'acme/p', action: 'recall', caller: 'c', units: 5 }, { request_id: 'b', namespace: 'acme/p', action: 'ping', caller: 'c', units: 9 }] });
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
    const same = await serve(['--db', file, '--billable-actions', 'extract,recall', '--non-billable-actions', 'ping', '--other-actions', 'non_billable']);
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
});
