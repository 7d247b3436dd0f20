#!/usr/bin/env -S node --max-semi-space-size=4 --max-old-space-size=256
// The `receipts` bin. Plain JavaScript that any Node parses: the command itself is TypeScript
// (run by Node's type stripping, Node ≥ 22.18) over a SQLite binding that crashes an older Node
// with a bare segmentation fault. So the Node is checked here, before anything else is loaded.
// (V8 flags as in main.ts: see there.)
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const version = process.versions.node;
const major = Number(version.split('.')[0]);
// process.features.typescript: 'strip' or 'transform' where Node runs .ts files (22.18+, 23.6+).
const runsTypeScript = Boolean(process.features?.typescript);

if (major < 22 || !runsTypeScript) {
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const pinned = `${root}node_modules/.bin/node`;
  const how = existsSync(pinned)
    ? `Run it on the Node that npm ci installed (node_modules/.bin/node):\n` +
      `  npm run -s receipts -- <command>          (in ${root})\n` +
      `  npx node ${main} <command>   (in ${root}; npx puts node_modules/.bin first)\n` +
      `  ${pinned} ${main} <command>`
    : `Install Node 22.18 or newer (e.g. nvm install 24), or run npm ci in ${root}: it installs the pinned Node 24 into node_modules/.bin, then use npm run -s receipts -- <command>`;
  process.stderr.write(
    `error: receipts needs Node.js 22.18 or newer (it runs its TypeScript sources directly, and its SQLite binding needs Node 22); ` +
      (major < 22
        ? `this is Node ${version} (${process.execPath}).\n`
        : `this Node ${version} (${process.execPath}) does not run TypeScript (older than 22.18, or started with --no-experimental-strip-types).\n`) +
      `${how}\n`,
  );
  process.exitCode = 1;
} else {
  await import('./main.ts');
}
