import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { SERVE_NODE_FLAGS } from '../../scripts/lib/servers.ts';

it('runs the service with the same V8 flags from npm start, npm run receipts, the bin and the benchmarks', () => {
  const flags = SERVE_NODE_FLAGS.join(' ');
  expect(pkg.scripts.start).toBe(`node ${flags} src/cli/main.ts serve`);
  expect(pkg.scripts.receipts).toBe(`node ${flags} src/cli/main.ts`);
  expect(readFileSync(new URL('../../src/cli/main.ts', import.meta.url), 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
  // The bin is the plain-JS shim that checks the Node version first, then runs main.ts.
  expect(pkg.bin.receipts).toBe('./src/cli/receipts.js');
  expect(readFileSync(new URL('../../src/cli/receipts.js', import.meta.url), 'utf8').split('\n')[0]).toBe(
    `#!/usr/bin/env -S node ${flags}`,
  );
});
