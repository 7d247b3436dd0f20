// On a Node older than the package needs, the `receipts` bin and the built package say which Node
// is needed and how to run on it, instead of dying in the SQLite binding with "Segmentation fault".
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { tempDir } from '../helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, pkg.bin.receipts);

/** A real Node older than 22 on PATH (the machine's own, outside node_modules), if there is one. */
function oldNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const node = join(dir, 'node');
    if (dir.includes('node_modules') || !existsSync(node)) continue;
    const v = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout?.trim();
    if (v && Number(v.split('.')[0]) < 22) return node;
  }
  return undefined;
}
const OLD = oldNode();

// Also on a machine with no old Node: the pinned Node, told it is Node 20 before anything loads.
const PRETEND_20 = ['--import', `data:text/javascript,Object.defineProperty(process.versions, 'node', { value: '20.11.1' })`];

const script = (db: string) => `
  const { createSqliteSpool } = await import('sui-receipts/spool');
  const { createUsageClient } = await import('sui-receipts');
  for (const [name, make] of [['spool', () => createSqliteSpool(${JSON.stringify(db)})], ['client', () => createUsageClient({ url: 'http://127.0.0.1:1', apiKey: 'k' })]]) {
    try { make(); console.log(name + ': created'); } catch (e) { console.log(name + ': ' + e.message); }
  }
`;

describe.each([
  ...(OLD ? [['a real old Node', OLD, []] as const] : []),
  ['the pinned Node pretending to be 20.11.1', process.execPath, PRETEND_20] as const,
])('on %s', (_name, node, flags) => {
  it('the receipts bin says which Node it needs and how to run on the pinned one (exit 1, no crash)', () => {
    const r = spawnSync(node, [...flags, BIN, '--version'], { encoding: 'utf8' });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: receipts needs Node\.js 22\.18 or newer .*; this is Node 20\.\d+\.\d+ /);
    expect(r.stderr).toContain('npm run -s receipts -- <command>');
    expect(r.stderr).toContain(`npx node ${join(ROOT, 'src/cli/main.ts')} <command>`);
    expect(r.stderr).not.toMatch(/Segmentation fault|ERR_UNKNOWN_FILE_EXTENSION/);
  });

  it('the built package refuses the spool and the client with the same kind of sentence (no segmentation fault)', () => {
    expect(existsSync(join(ROOT, 'dist/index.js')), 'dist/ is missing: run npm run build').toBe(true);
    const t = tempDir('receipts-node-');
    try {
      const db = join(t.dir, 'spool.db');
      const r = spawnSync(node, [...flags, '--input-type=module', '-e', script(db)], { cwd: ROOT, encoding: 'utf8' });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        /^spool: the SQLite spool of sui-receipts needs Node\.js 22 or newer; this is Node 20\.\d+\.\d+\. .*`npx node your-script\.ts`/m,
      );
      expect(r.stdout).toMatch(/^client: the sui-receipts client needs Node\.js 22 or newer/m);
      expect(existsSync(db)).toBe(false); // refused before anything was opened
    } finally {
      t.cleanup();
    }
  });
});

it('on the pinned Node, the bin runs the command', () => {
  const r = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
  expect(r).toMatchObject({ status: 0, stdout: `${pkg.version}\n` });
});
