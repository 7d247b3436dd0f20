// Builds the web page into web-dist/ (esbuild): at install (npm ci → prepare) or, when missing,
// when `receipts serve` starts.
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('.', import.meta.url));
export const WEB_DIST = fileURLToPath(new URL('../../web-dist/', import.meta.url));

export function webBuilt(dir = WEB_DIST): boolean {
  return ['index.html', 'app.js', 'app.css'].every((f) => existsSync(join(dir, f)));
}

export async function buildWeb(dir = WEB_DIST): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [join(SRC, 'app.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    outdir: dir,
    logLevel: 'warning',
  });
  // The page's own styles after the bundled library styles.
  writeFileSync(join(dir, 'app.css'), `${readFileSync(join(dir, 'app.css'), 'utf8')}\n${readFileSync(join(SRC, 'style.css'), 'utf8')}`);
  copyFileSync(join(SRC, 'index.html'), join(dir, 'index.html'));
}
