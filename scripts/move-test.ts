// npm run move:test — builds move/ and runs its Move unit tests without the Sui CLI, with the
// Move compiler and test runner of @zktx.io/sui-move-builder (WASM, Sui 1.71).
//
// The package needs the std and sui framework sources. With SUI_FRAMEWORK_DIR set, they are read
// from that folder (a copy of MystenLabs/sui crates/sui-framework/packages: it holds move-stdlib/
// and sui-framework/); without it the builder fetches them from GitHub. Offline with neither,
// this prints SKIPPED and exits 0: nothing ran, so nothing passed.
//
// Prints the compiler's warnings and the runner's output (its last line is the summary).
// Exit 1: a compile error, a warning, or a failing test. Exit 2: the tool itself failed.
// The builder reports the warnings of the package build only; those in tests/ (compiled in test
// mode) are not surfaced by it, and `sui move test` in .github/workflows/localnet.yml sees them.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import {
  dumpMovePackage,
  initMovePackageBuilder,
  MovePackageFetcher,
  testMovePackage,
  type MovePackageInput,
} from '@zktx.io/sui-move-builder/full';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGE_DIR = join(ROOT, 'move');
const FRAMEWORK_PREFIX = 'crates/sui-framework/packages/';

/** The files of a Move package folder (Move.toml, sources/, tests/), without build output. */
function readPackage(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of readdirSync(dir, { recursive: true }).map(String)) {
    if (f.split('/')[0] === 'build' || !/(^|\/)Move\.toml$|\.move$/.test(f)) continue;
    files[f] = readFileSync(join(dir, f), 'utf8');
  }
  return files;
}

/** Serves the framework packages (std, sui) from a local folder instead of GitHub. */
class LocalFrameworkFetcher extends MovePackageFetcher {
  readonly dir: string;
  constructor(dir: string) {
    super();
    this.dir = dir;
  }
  private packageDir(gitUrl: string, subdir = ''): string {
    if (!/github\.com\/MystenLabs\/sui(\.git)?$/i.test(gitUrl) || !subdir.startsWith(FRAMEWORK_PREFIX)) {
      throw new Error(
        `${gitUrl} ${subdir}: only the Sui framework packages are served from SUI_FRAMEWORK_DIR; move/ should depend on nothing else`,
      );
    }
    const dir = resolve(this.dir, subdir.slice(FRAMEWORK_PREFIX.length));
    if (!existsSync(join(dir, 'Move.toml')))
      throw new Error(`${join(dir, 'Move.toml')} not found: SUI_FRAMEWORK_DIR must be a copy of crates/sui-framework/packages`);
    return dir;
  }
  override async fetch(gitUrl: string, _rev: string, subdir?: string): Promise<Record<string, string>> {
    return readPackage(this.packageDir(gitUrl, subdir));
  }
  override async fetchFile(gitUrl: string, _rev: string, path: string): Promise<string | null> {
    const file = resolve(this.packageDir(gitUrl, path.slice(0, path.lastIndexOf('/'))), path.slice(path.lastIndexOf('/') + 1));
    return existsSync(file) ? readFileSync(file, 'utf8') : null;
  }
  override getResolvedSha(_gitUrl: string, rev: string): string {
    return rev;
  }
}

async function githubReachable(): Promise<boolean> {
  try {
    await fetch('https://raw.githubusercontent.com/', { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const frameworkDir = process.env.SUI_FRAMEWORK_DIR;
  let fetcher: MovePackageFetcher | undefined;
  if (frameworkDir) {
    const dir = resolve(frameworkDir);
    for (const p of ['move-stdlib', 'sui-framework']) {
      if (!existsSync(join(dir, p, 'Move.toml')) || !statSync(join(dir, p)).isDirectory()) {
        console.error(
          `SUI_FRAMEWORK_DIR=${frameworkDir} has no ${p}/Move.toml: point it at a copy of MystenLabs/sui crates/sui-framework/packages (README, "Move unit tests")`,
        );
        return 2;
      }
    }
    fetcher = new LocalFrameworkFetcher(dir);
    console.log(`framework: ${relative(process.cwd(), dir) || '.'} (SUI_FRAMEWORK_DIR)`);
  } else if (await githubReachable()) {
    console.log('framework: fetched from GitHub (MystenLabs/sui), as pinned by @zktx.io/sui-move-builder');
  } else {
    console.log(
      'SKIPPED: GitHub is unreachable and SUI_FRAMEWORK_DIR is not set, so the std and sui framework sources are missing; set SUI_FRAMEWORK_DIR to a copy of MystenLabs/sui crates/sui-framework/packages (README, "Move unit tests"). No Move test ran.',
    );
    return 0;
  }

  await initMovePackageBuilder();
  const input: MovePackageInput = {
    files: readPackage(PACKAGE_DIR),
    network: 'mainnet',
    ansiColor: process.stdout.isTTY === true,
    ...(fetcher ? { fetcher } : {}),
    // GitHub's API limits anonymous callers to 60 requests an hour.
    ...(process.env.GITHUB_TOKEN ? { githubToken: process.env.GITHUB_TOKEN } : {}),
  };

  // The build: what would be published (no test code), with the compiler's warnings.
  const build = await dumpMovePackage(input);
  if ('error' in build) {
    console.error(`move build failed (${build.category ?? 'unknown stage'}):\n${build.error}`);
    if (build.category === 'dependency_resolution' && !fetcher)
      console.error('The framework could not be fetched from GitHub: set GITHUB_TOKEN, or SUI_FRAMEWORK_DIR to a local copy.');
    return 1;
  }
  const warnings = build.warnings?.trim() ?? '';
  console.log(`build: ${build.modules.length} module(s), ${warnings ? 'WARNINGS:' : 'no warnings'}`);
  if (warnings) console.log(warnings);

  // The tests: compiled in test mode (its own warnings come first in the runner's output).
  const result = await testMovePackage(input);
  if ('error' in result) {
    console.error(`move test could not run (${result.category ?? 'unknown stage'}):\n${result.error}`);
    return 1;
  }
  const output = result.output.trimEnd();
  console.log(output);
  const summary = stripVTControlCharacters(output)
    .split('\n')
    .findLast((l) => l.startsWith('Test result:'));
  if (!result.passed || !summary?.startsWith('Test result: OK.')) {
    console.error(summary ? 'move:test FAILED' : 'move:test FAILED: the Move package did not compile (see above)');
    return 1;
  }
  if (warnings || /\bwarning\[/.test(stripVTControlCharacters(output))) {
    console.error('move:test FAILED: the compiler warned (see above); fix the warning');
    return 1;
  }
  return 0;
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(`move:test could not run: ${err instanceof Error ? err.stack : String(err)}`);
  return 2;
});
