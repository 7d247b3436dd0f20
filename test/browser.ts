// Which Chromium the browser tests drive: found the way a user has one, or none. Without one
// the browser tests are skipped with one loud line, unless RECEIPTS_REQUIRE_BROWSER=1 (CI),
// which makes a missing browser a failure.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Names a Chromium-family browser goes by on PATH, in the order tried. */
export const BROWSER_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
export const DEFAULT_BROWSER = '/usr/bin/chromium';
export const HOW_TO_ENABLE = 'install Chromium (apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome executable';

export type BrowserLookup = { path: string; from: string } | { path: undefined; problem: string };

/**
 * Pure: where the browser is, given the environment and a test for "is an executable file".
 * An explicit CHROMIUM_PATH / CHROME_PATH that is not executable is reported, not passed over:
 * the user asked for that browser.
 */
export function findBrowser(env: Record<string, string | undefined>, isExecutable: (path: string) => boolean): BrowserLookup {
  for (const name of ['CHROMIUM_PATH', 'CHROME_PATH']) {
    const path = env[name];
    if (path) return isExecutable(path) ? { path, from: name } : { path: undefined, problem: `${name}=${path} is not an executable file` };
  }
  if (isExecutable(DEFAULT_BROWSER)) return { path: DEFAULT_BROWSER, from: 'default' };
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of BROWSER_NAMES) {
    for (const dir of dirs) {
      const path = join(dir, name);
      if (isExecutable(path)) return { path, from: 'PATH' };
    }
  }
  return {
    path: undefined,
    problem: `no Chromium found (CHROMIUM_PATH, CHROME_PATH, ${DEFAULT_BROWSER}, or ${BROWSER_NAMES.join(' / ')} on PATH)`,
  };
}

export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The message when no browser can be used; `required` says whether that fails the run. */
export function missingBrowserMessage(problem: string, required: boolean): string {
  return required
    ? `Browser tests: ${problem}, and RECEIPTS_REQUIRE_BROWSER=1 requires them: ${HOW_TO_ENABLE}.`
    : `⚠ Browser tests SKIPPED: ${problem}. To run them, ${HOW_TO_ENABLE}.`;
}

let warned = false;

/**
 * The browser for this test run. Undefined (after one console.warn) when there is none;
 * throws instead when RECEIPTS_REQUIRE_BROWSER=1.
 */
export function browserForTests(
  env: Record<string, string | undefined> = process.env,
  isExecutable = isExecutableFile,
): string | undefined {
  const found = findBrowser(env, isExecutable);
  if (found.path !== undefined) return found.path;
  const required = env.RECEIPTS_REQUIRE_BROWSER === '1';
  const message = missingBrowserMessage(found.problem, required);
  if (required) throw new Error(message);
  if (!warned) {
    warned = true;
    console.warn(message);
  }
  return undefined;
}
