// `receipts signing-key create|show` as a real process: the key file is owner-only, never
// overwritten, readable by Go's sumdb/note format; only the verifier key is printed, never the
// private key; bad names, missing and malformed files are refused with a clear message.
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ed25519Signer, openNote, parseSignerKey, parseVerifierKey, signNote } from '../../src/checkpoint/index.ts';
import { tempDir } from '../helpers.ts';
import { receipts } from './run.ts';

const tmp = tempDir('receipts-signing-key-');
afterAll(() => tmp.cleanup());

const VKEY = /^receipts\.example\.com\/acme\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$/;
const posix = process.platform !== 'win32';

describe('receipts signing-key', () => {
  it('create writes an owner-only key file and prints its verifier key; show prints it again', () => {
    const file = join(tmp.dir, 'log.key');
    const r = receipts(['signing-key', 'create', '--name', 'receipts.example.com/acme', '--out', file]);
    expect(r.code, r.stderr).toBe(0);
    const vkey = r.stdout.trim();
    expect(vkey).toMatch(VKEY);
    expect(r.stderr).toContain('0600');
    if (posix) expect(statSync(file).mode & 0o777).toBe(0o600);

    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^PRIVATE\+KEY\+receipts\.example\.com\/acme\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}\n$/);
    // The key is everything after PRIVATE+KEY+name+hash: its base64 may itself hold a '+'.
    const secret = text.trim().split('+').slice(4).join('+');
    // The private key never reaches the terminal.
    expect(r.stdout + r.stderr).not.toContain(secret);

    // The file's key signs what the printed vkey verifies.
    const note = signNote('hello\n', [ed25519Signer(parseSignerKey(text.trim()))]);
    expect(openNote(note, [parseVerifierKey(vkey)]).verified).toHaveLength(1);

    const shown = receipts(['signing-key', 'show', file]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toBe(`${vkey}\n`);
    expect(shown.stderr).toBe('');
    expect(shown.stdout + shown.stderr).not.toContain(secret);

    const json = receipts(['signing-key', 'show', file, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ vkey });
  });

  it('create --json prints { "vkey" } alone', () => {
    const file = join(tmp.dir, 'witness.key');
    const r = receipts(['signing-key', 'create', '--name', 'witness.example.com/w1', '--out', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(JSON.parse(r.stdout))).toEqual(['vkey']);
    expect(JSON.parse(r.stdout).vkey).toMatch(/^witness\.example\.com\/w1\+[0-9a-f]{8}\+A/);
  });

  it('never overwrites an existing file, and leaves it as it was', () => {
    const file = join(tmp.dir, 'taken.key');
    writeFileSync(file, 'precious\n');
    const r = receipts(['signing-key', 'create', '--name', 'a.example', '--out', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already exists.*never overwrites/);
    expect(r.stdout).toBe('');
    expect(readFileSync(file, 'utf8')).toBe('precious\n');
  });

  it.each([
    ['with a space', 'my log', 'spaces'],
    ['with a plus', 'a+b', '"+"'],
    ['empty', '', 'empty'],
  ])('refuses a key name %s, naming the rule, and writes nothing', (_, name, rule) => {
    const file = join(tmp.dir, `bad-${rule.replace(/\W/g, '')}.key`);
    const r = receipts(['signing-key', 'create', '--name', name, '--out', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--name');
    expect(r.stderr).toContain(rule);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses an --out in a directory that does not exist', () => {
    const r = receipts(['signing-key', 'create', '--name', 'a.example', '--out', join(tmp.dir, 'nope', 'k.key')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('directory does not exist');
  });

  it('show: a missing file, a file that is not a key (never quoted back), a key with a wrong key ID', () => {
    const missing = receipts(['signing-key', 'show', join(tmp.dir, 'absent.key')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no key file at .*signing-key create/);

    const junk = join(tmp.dir, 'junk.key');
    writeFileSync(junk, 'PRIVATE+KEY+name+00000000+not-base64-SECRETISH\n', { mode: 0o600 });
    const r = receipts(['signing-key', 'show', junk]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a signing key file');
    expect(r.stderr).not.toContain('SECRETISH');

    const file = join(tmp.dir, 'log.key');
    const wrongId = join(tmp.dir, 'wrong-id.key');
    writeFileSync(wrongId, readFileSync(file, 'utf8').replace(/\+[0-9a-f]{8}\+/, '+00000000+'), { mode: 0o600 });
    const w = receipts(['signing-key', 'show', wrongId]);
    expect(w.code).toBe(2);
    expect(w.stderr).toContain('key ID');
  });

  it.skipIf(!posix)('show warns when the key file is readable by others, and still prints the verifier key', () => {
    const file = join(tmp.dir, 'log.key');
    chmodSync(file, 0o644);
    try {
      const r = receipts(['signing-key', 'show', file]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toMatch(VKEY);
      expect(r.stderr).toMatch(/warning: .* readable by others \(mode 0644\).*chmod 600/);
    } finally {
      chmodSync(file, 0o600);
    }
  });
});
