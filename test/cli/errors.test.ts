// What the `receipts` executable says when something is off: each answer names the problem and
// what to do, with its own exit code.
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { bytesToHex, leafHash } from '../../src/event/leaf.ts';
import { tempDir, until } from '../helpers.ts';
import { receipts, serve } from './run.ts';

const t = tempDir('receipts-cli-errors-');
afterAll(() => t.cleanup());

describe('receipts --version', () => {
  it.each([['--version'], ['-V']])('%s prints the package version', (flag) => {
    expect(receipts([flag])).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });
});

describe('--db of a ledger that is not there', () => {
  it.each([[['keys', 'list']], [['keys', 'list', '--json']], [['keys', 'revoke', 'abc']], [['seal']]])(
    'receipts %j refuses a missing file, names it and creates nothing',
    (args) => {
      const file = join(t.dir, 'typo.db');
      const r = receipts([...args, '--db', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no ledger at ${file}`);
      expect(r.stderr).toMatch(
        /check --db or RECEIPTS_DB; `receipts serve --db FILE` or `receipts keys create --db FILE …` creates a new one/,
      );
      expect(existsSync(file)).toBe(false);
    },
  );

  it('also through RECEIPTS_DB', () => {
    const file = join(t.dir, 'env-typo.db');
    const r = receipts(['keys', 'list'], { RECEIPTS_DB: file });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no ledger at ${file}`);
    expect(existsSync(file)).toBe(false);
  });

  it('keys create on a new file says it created one, on standard error (JSON stays clean)', () => {
    const file = join(t.dir, 'new.db');
    const r = receipts(['keys', 'create', '--db', file, '--owner', 'acme', '--namespace', 'acme/*', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).owner).toBe('acme');
    expect(r.stderr).toContain(`created a new ledger at ${file}`);
    const again = receipts(['keys', 'create', '--db', file, '--owner', 'acme', '--namespace', 'acme/*']);
    expect(again.stderr).not.toContain('created a new ledger');
    expect(receipts(['keys', 'list', '--db', file, '--json']).code).toBe(0);
  });

  it('a refused keys create leaves no empty ledger behind', () => {
    const file = join(t.dir, 'refused.db');
    const r = receipts(['keys', 'create', '--db', file, '--owner', 'x', '--namespace', 'Bad Pattern']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('created a new ledger');
    expect(existsSync(file)).toBe(false);
  });
});

describe('serve --host', () => {
  it('999.1.1.1 is not a valid address (a usage error, before anything starts)', () => {
    const r = receipts(['serve', '--db', join(t.dir, 'host.db'), '--host', '999.1.1.1', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--host <host>' argument '999.1.1.1' is invalid. must be an address of this machine: 999.1.1.1 is not a valid IPv4 address/,
    );
    expect(r.stderr).not.toMatch(/choose another --port/);
    expect(existsSync(join(t.dir, 'host.db'))).toBe(false);
  });

  it('an address that is not this machine says so, not "choose another --port"', () => {
    const r = receipts(['serve', '--db', join(t.dir, 'host2.db'), '--host', '192.0.2.1', '--port', '0', '--log-level', 'silent']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine; choose a local --host such as 127.0.0.1/,
    );
    expect(r.stderr).not.toMatch(/choose another --port/);
  });
});

describe('one receipts serve per ledger', () => {
  it('refuses a second serve on the same file (naming the first), and takes over after kill -9', async () => {
    const file = join(t.dir, 'locked.db');
    const first = await serve(['--db', file, '--log-level', 'info']);
    const port = new URL(first.url).port;
    try {
      const second = receipts(['serve', '--db', file, '--port', '0']);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(
        `another receipts serve already runs on the ledger ${file}: receipts serve pid ${first.proc.pid} listening on 127.0.0.1:${port}`,
      );
      expect(second.stderr).toMatch(/Use the running one, stop it first, or point --db at another file/);
      expect(second.stderr).not.toMatch(/Server listening/);

      // The same file under another name (a symlink) is the same ledger.
      const alias = join(t.dir, 'alias.db');
      symlinkSync(file, alias);
      const third = receipts(['serve', '--db', alias, '--port', '0']);
      expect(third.code).toBe(1);
      expect(third.stderr).toContain(`pid ${first.proc.pid}`);

      // Other commands still share the file with the running server.
      expect(receipts(['keys', 'list', '--db', file]).code).toBe(0);
    } finally {
      first.proc.kill('SIGKILL'); // no clean stop: the OS drops the lock with the process
      await first.exited;
    }
    const next = await serve(['--db', file]);
    const holder = () => JSON.parse(readFileSync(`${file}.serve.json`, 'utf8'));
    await until(() => holder().port !== null); // recorded just after the listen log line
    expect(holder()).toMatchObject({ pid: next.proc.pid, port: Number(new URL(next.url).port) });
    next.proc.kill('SIGTERM');
    expect(await next.exited).toEqual({ code: 0, signal: null });
    // A clean stop releases it too.
    const after = await serve(['--db', file]);
    after.proc.kill('SIGTERM');
    await after.exited;
  }, 180_000); // five servers one after another: slow on a loaded 2-core machine
});

describe('receipts verify: exit codes 0 valid, 1 invalid, 2 unreadable, 3 not verifiable yet', () => {
  const event = {
    namespace: 'acme/prod',
    request_id: 'r1',
    caller: 'c',
    action: 'recall',
    units: 3,
    artifact_digest: '',
    ts_ms: 1_763_800_000_000,
  };
  const leaf = bytesToHex(leafHash(event));
  const sealed = {
    version: 1,
    id: 1,
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
  const write = (name: string, content: unknown) => {
    const f = join(t.dir, name);
    writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
    return f;
  };

  it('a one-leaf receipt is valid (exit 0)', () => {
    expect(receipts(['verify', write('one.json', sealed)])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^valid: epoch 0, leaf 0 of 1/),
    });
  });

  it.each([
    ['JSON that is not a receipt', { a: 1 }, /not a receipt: the version field is missing/],
    ['status anchored with a null anchor', { ...sealed, status: 'anchored' }, /status says anchored but anchor is null/],
    ['an unknown field', { ...sealed, note: 'x' }, /unknown field "note"/],
    ['an array', [sealed], /not a JSON object/],
    ['a proof of 10,000 entries', { ...sealed, proof: Array(10_000).fill(leaf) }, /proof has 10000 entries; an audit path has at most 64/],
  ])('%s is unreadable (exit 2), not invalid', (_n, content, reason) => {
    const f = write('malformed.json', content);
    const r = receipts(['verify', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`unreadable: ${f} is not a well-formed receipt v1 \\(malformed\\): `));
    expect(r.stderr).toMatch(reason);
    expect(r.stdout).not.toMatch(/invalid/);
    const json = receipts(['verify', f, '--json']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, kind: 'malformed', code: 'malformed' });
  });

  it('a file over 1 MiB is refused before it is parsed (exit 2)', () => {
    const f = write('huge.json', JSON.stringify({ ...sealed, proof: Array(3_000_000 / 100).fill(leaf) }).padEnd(2 * 1024 * 1024, ' '));
    const r = receipts(['verify', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unreadable: .*huge.json is larger than 1024 KiB; a receipt is a few KiB/);
  });

  it('a pending receipt is not verifiable yet (exit 3)', () => {
    const pending = { ...sealed, status: 'pending', epoch: null, leaf_index: null, tree_size: null, proof: null, root: null };
    const r = receipts(['verify', write('pending.json', pending)]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(
      /^not verifiable yet: the receipt is pending: its epoch is not sealed yet.*fetch it again after the next seal/,
    );
    const json = receipts(['verify', write('pending.json', pending), '--json']);
    expect(json).toMatchObject({ code: 3 });
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, kind: 'pending', code: 'not_sealed' });
  });

  it('a tampered receipt is invalid (exit 1)', () => {
    expect(receipts(['verify', write('tampered.json', { ...sealed, event: { ...event, units: 4 } })])).toMatchObject({
      code: 1,
      stdout: expect.stringMatching(/^invalid: the leaf hash/),
    });
    // The stable code beside the sentence: in the text, and in --json for programs.
    expect(receipts(['verify', write('tampered.json', { ...sealed, event: { ...event, units: 4 } })]).stdout).toMatch(
      /\[leaf_mismatch\]$/m,
    );
    const json = receipts(['verify', write('tampered.json', { ...sealed, event: { ...event, units: 4 } }), '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      kind: 'invalid',
      code: 'leaf_mismatch',
      reason: expect.stringMatching(/^the leaf hash/),
    });
  });

  it('--help lists the exit codes', () => {
    const r = receipts(['verify', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Exit codes:\n {2}0 {2}valid\n {2}1 {2}invalid.*\n {2}2 {2}unreadable.*\n {2}3 {2}not verifiable yet/);
  });
});

describe('serve --sui-config with a bad file', () => {
  it('names each field and rule in sentences, never zod wording', () => {
    const f = join(t.dir, 'bad.sui.json');
    writeFileSync(
      f,
      JSON.stringify({
        network: 'moonnet',
        registry_id: 7,
        cap_id: '0x1',
        registry_initial_shared_version: 'x',
        rpc_url: 'nope',
        extra: 1,
      }),
    );
    const r = receipts(['serve', '--db', join(t.dir, 'cfg.db'), '--port', '0', '--sui-config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the Sui config ${f} is not valid:`);
    for (const part of [
      'unknown field extra (known: network, rpc_url, package_id',
      'network must be one of localnet, devnet, testnet, mainnet',
      'package_id is required',
      'registry_id: must be a 0x-prefixed object id',
      'rpc_url must be a URL',
      'registry_initial_shared_version must be a non-negative integer',
    ])
      expect(r.stderr).toContain(part);
    expect(r.stderr).not.toMatch(/Invalid input|Invalid option|expected string|received|Unrecognized key/);
  });
});
