// The Move package cannot be compiled here (no `sui` binary): its only local check is syntax,
// with the tree-sitter grammar of @mysten/prettier-plugin-move. Exit codes: 0 parsed and
// formatted, 1 parsed but not formatted, 2 a syntax error.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PRETTIER = join(ROOT, 'node_modules/prettier/bin/prettier.cjs');

function check(file: string) {
  const r = spawnSync(process.execPath, [PRETTIER, '--plugin', '@mysten/prettier-plugin-move', '--check', file], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { code: r.status, output: r.stdout + r.stderr };
}

const moveFiles = readdirSync(join(ROOT, 'move'), { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.move'));

describe('Move sources', () => {
  it('has the package layout a Move build needs', () => {
    expect(moveFiles.sort()).toEqual([
      'sources/registry.move',
      'tests/golden_tests.move',
      'tests/registry_tests.move',
      'tests/vectors_tests.move',
    ]);
  });

  it.each(moveFiles)('move/%s parses and is formatted', (f) => {
    const r = check(join('move', f));
    expect(r.code, r.output).toBe(0);
  });

  it('the gate catches a syntax error (exit 2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'move-'));
    const bad = join(dir, 'bad.move');
    writeFileSync(bad, 'module receipts::bad;\n\npublic fun f(: u64 { 1 }\n');
    expect(check(bad).code).toBe(2);
  });
});
