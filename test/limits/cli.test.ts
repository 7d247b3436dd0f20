// `receipts limits create|list|delete` as a real process (docs/api.md "Limits"): the same rules
// as the API, a bad flag refused naming it and the rule (exit 2, nothing stored), --json output,
// deletion as a version that a running check then honours.
import { afterAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/index.ts';
import { checkLimits } from '../../src/limits/check.ts';
import { tempDir } from '../helpers.ts';
import { receipts } from '../cli/run.ts';

const t = tempDir('receipts-limits-cli-');
afterAll(() => t.cleanup());

describe('receipts limits', () => {
  it('creates, lists and deletes limits, with --json, refusing bad flags by name', async () => {
    const db = `${t.dir}/ledger.db`;
    expect(receipts(['keys', 'create', '--db', db, '--owner', 'acme', '--namespace', 'acme/*']).code).toBe(0);
    const base = ['limits', 'create', 'chat-month', '--db', db, '--owner', 'acme', '--namespace', 'acme/prod'];
    const bad = receipts([...base, '--action', 'chat', '--measure', 'units', '--period', 'month', '--tz', 'Mars/Base', '--hard', '10']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--tz: .*iana_time_zone/);
    const noHard = receipts([...base, '--measure', 'events', '--period', 'day', '--soft', '50']);
    expect(noHard.code).toBe(2);
    expect(noHard.stderr).toMatch(/--soft: .*requires:hard/);
    expect(JSON.parse(receipts(['limits', 'list', '--db', db, '--owner', 'acme', '--json']).stdout)).toEqual([]);

    const made = receipts([
      ...base,
      '--action',
      'chat',
      '--measure',
      'units',
      '--period',
      'month',
      '--hard',
      '10',
      '--soft',
      '80',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ id: 'chat-month', version: 1, actions: ['chat'], hard: 10, soft: [80], created: true });
    const listed = receipts(['limits', 'list', '--db', db, '--owner', 'acme']);
    expect(listed.stdout).toMatch(/^chat-month {2}v1 {2}acme\/prod {2}units of chat {2}per month \(UTC\) {2}hard 10 {2}soft 80%/);

    const ledger = await openLedger(db);
    try {
      const refused = await checkLimits(ledger, 'acme', [{ namespace: 'acme/prod', action: 'chat', units: 11 }], Date.now());
      expect(refused[0]).toMatchObject({ allowed: false, limit_id: 'chat-month' });
      const del = receipts(['limits', 'delete', 'chat-month', '--db', db, '--owner', 'acme', '--json']);
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toMatchObject({ version: 2, deleted: true });
      const after = await checkLimits(ledger, 'acme', [{ namespace: 'acme/prod', action: 'chat', units: 11 }], Date.now() + 1);
      expect(after[0]).toMatchObject({ allowed: true, limit_id: null });
    } finally {
      await ledger.close();
    }
    const again = receipts(['limits', 'delete', 'chat-month', '--db', db, '--owner', 'acme']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/has no limit chat-month/);
  });
});
