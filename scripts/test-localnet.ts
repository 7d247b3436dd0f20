// npm run test:localnet: the end-to-end tests on a fresh localnet. Without the `sui` binary they
// cannot run: say so and exit 0 without running any test, so nothing reports them as passed.
import { spawnSync } from 'node:child_process';
import { findSui, ROOT } from './localnet/lib.ts';

if (!findSui()) {
  console.log('SKIPPED: sui binary not found on PATH');
  console.log('The localnet tests (publish, anchor, verify on chain, sui move test) did not run. Install the Sui CLI to run them.');
  process.exit(0);
}
const r = spawnSync(process.execPath, [`${ROOT}node_modules/vitest/vitest.mjs`, 'run', '--config', 'vitest.localnet.config.ts'], {
  cwd: ROOT,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
