// The tree-hashing threads never keep a process alive once its seals are done (a CLI or a bench
// ends by itself), and a build in progress is not cut short by the process running out of work.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

it('a process that built a tree on the threads exits by itself, after the build', () => {
  const script = fileURLToPath(new URL('./fixtures/build-and-exit.ts', import.meta.url));
  // The bound only stops a hung child (the bug this guards against); nothing here is timed.
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
  expect(run.stdout.trim(), run.stderr).toBe('built 18');
  expect(run.status).toBe(0);
});
