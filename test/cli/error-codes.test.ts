// A program that runs the CLI's commands in-process switches on CliError's `code` (a closed
// list, src/cli/errors.ts), not on the sentence; each code carries its exit status. And a program
// that verifies receipts switches on VerificationError's `code` the same way.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CLI_ERROR_CODES, CLI_EXIT, CliError, toCliError, type CliErrorCode } from '../../src/cli/errors.ts';
import { addKeysCommands } from '../../src/cli/keys.ts';
import { addSealCommand } from '../../src/cli/seal.ts';
import { addVerifyCommand } from '../../src/cli/verify.ts';
import { bytesToHex, leafHash } from '../../src/event/leaf.ts';
import { assertReceipt, VerificationError, VERIFY_CODES, type VerifyCode } from '../../src/index.ts';
import { tempDir } from '../helpers.ts';

const t = tempDir('receipts-cli-codes-');
afterAll(() => t.cleanup());

/** The commands in-process, as a program would embed them; resolves to the CliError's code or 'ok'. */
async function outcome(argv: string[]): Promise<CliErrorCode | 'ok'> {
  const program = new Command('receipts').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  addKeysCommands(program);
  addSealCommand(program);
  addVerifyCommand(program);
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 'ok';
  } catch (e) {
    const failure = toCliError(e);
    if (!failure) return 'ok';
    expect(failure).toBeInstanceOf(CliError);
    expect(failure.exitCode).toBe(CLI_EXIT[failure.code]);
    return failure.code;
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

function receipt() {
  const event = {
    namespace: 'acme',
    request_id: 'r1',
    caller: 'c',
    action: 'recall',
    units: 1,
    artifact_digest: '',
    ts_ms: 1_763_800_000_000,
  };
  const leaf = bytesToHex(leafHash(event));
  return {
    version: 1,
    status: 'sealed',
    event,
    leaf_hash: leaf,
    epoch: 0,
    leaf_index: 0,
    tree_size: 1,
    proof: [],
    root: leaf,
    anchor: null,
  };
}

describe('CliError: one class, a closed list of codes', () => {
  const db = join(t.dir, 'ledger.db');
  const file = (name: string, value: unknown) => {
    const f = join(t.dir, name);
    writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
    return f;
  };

  it.each<[string, () => string[], CliErrorCode | 'ok']>([
    ['a valid receipt', () => ['verify', file('ok.json', receipt())], 'ok'],
    ['--root without --size', () => ['verify', file('ok2.json', receipt()), '--root', 'ab'.repeat(32)], 'usage'],
    ['an unknown flag (commander)', () => ['verify', '--nope', 'x'], 'usage'],
    ['a file that is not JSON', () => ['verify', file('junk.json', 'not json')], 'unreadable'],
    ['a receipt with an unknown field', () => ['verify', file('extra.json', { ...receipt(), extra: 1 })], 'unreadable'],
    [
      'a receipt whose event was altered',
      () => ['verify', file('altered.json', { ...receipt(), event: { ...receipt().event, units: 2 } })],
      'invalid',
    ],
    [
      'a pending receipt',
      () => [
        'verify',
        file('pending.json', { ...receipt(), status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null }),
      ],
      'not_yet',
    ],
    ['a --db with no ledger', () => ['keys', 'list', '--db', join(t.dir, 'typo.db')], 'no_ledger'],
    ['creating a key', () => ['keys', 'create', '--db', db, '--owner', 'acme', '--namespace', 'acme/*'], 'ok'],
    ['revoking a key that is not there', () => ['keys', 'revoke', 'nope', '--db', db], 'not_found'],
  ])('%s → %s', async (_name, argv, code) => {
    expect(await outcome(argv())).toBe(code);
  });

  it('every code has its exit status: 2 for usage and unreadable input, 3 for not yet, else 1', () => {
    expect(Object.fromEntries(CLI_ERROR_CODES.map((c) => [c, new CliError(c, 'x').exitCode]))).toEqual({
      usage: 2,
      unreadable: 2,
      chain_unreachable: 2,
      invalid: 1,
      not_yet: 3,
      bad_config: 1,
      no_ledger: 1,
      ledger_busy: 1,
      not_leader: 1,
      not_found: 1,
      listen_failed: 1,
      migrate_refused: 1,
      failed: 1,
    });
  });

  it('anything unforeseen is `failed`, keeps its cause, and its message loses any URL credentials', () => {
    const cause = new Error('connect ECONNREFUSED for postgres://app:hunter2@db/ledger');
    const e = toCliError(cause)!;
    expect(e.code).toBe('failed');
    expect(e.cause).toBe(cause);
    expect(e.message).toBe('connect ECONNREFUSED for postgres://app:***@db/ledger');
  });
});

describe('VerificationError: the verifier throws one class, with the code of verifyReceipt', () => {
  it.each<[string, (r: ReturnType<typeof receipt>) => unknown, VerifyCode]>([
    ['not a receipt', () => 'x', 'malformed'],
    [
      'pending',
      (r) => ({ ...r, status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null }),
      'not_sealed',
    ],
    ['an altered event', (r) => ({ ...r, event: { ...r.event, units: 2 } }), 'leaf_mismatch'],
    ['an index past the size', (r) => ({ ...r, leaf_index: 1 }), 'index_out_of_range'],
    ['another root', (r) => ({ ...r, root: 'cd'.repeat(32) }), 'root_mismatch'],
  ])('%s → %s', (_name, change, code) => {
    let caught: unknown;
    try {
      assertReceipt(change(receipt()));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(VerificationError);
    expect(VERIFY_CODES).toContain((caught as VerificationError).code);
    expect((caught as VerificationError).code).toBe(code);
  });

  it('returns the verified receipt when it checks out', () => {
    expect(assertReceipt(receipt())).toMatchObject({ ok: true, epoch: 0, leaf_index: 0, tree_size: 1 });
  });
});
