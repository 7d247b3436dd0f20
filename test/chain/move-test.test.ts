// npm run move:test (scripts/move-test.ts) as a child process: what it says and how it exits.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function moveTest(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['scripts/move-test.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 180_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('npm run move:test', () => {
  it('refuses a SUI_FRAMEWORK_DIR without the framework packages, saying what it must hold (exit 2)', () => {
    const r = moveTest({ SUI_FRAMEWORK_DIR: ROOT });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /SUI_FRAMEWORK_DIR=.* has no move-stdlib\/Move\.toml: point it at a copy of MystenLabs\/sui crates\/sui-framework\/packages/,
    );
    expect(r.stdout).not.toMatch(/Test result/);
  });

  // Runs the Move tests themselves only where a framework copy is named (about 15 s).
  it.skipIf(!process.env.SUI_FRAMEWORK_DIR)(
    'with SUI_FRAMEWORK_DIR: builds without warnings and passes every Move test',
    () => {
      const r = moveTest({});
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/build: 1 module\(s\), no warnings/);
      expect(r.stdout).toMatch(/^Test result: OK\. Total tests: (\d+); passed: \1; failed: 0$/m);
    },
    200_000,
  );
});
