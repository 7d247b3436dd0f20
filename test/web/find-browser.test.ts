// How the browser tests find Chromium, and what they do without one (test/browser.ts).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { browserForTests, findBrowser, isExecutableFile } from '../browser.ts';
import { tempDir } from '../helpers.ts';

const only =
  (...paths: string[]) =>
  (p: string) =>
    paths.includes(p);

describe('findBrowser', () => {
  it('prefers CHROMIUM_PATH, then CHROME_PATH, then /usr/bin/chromium, then PATH', () => {
    const all = only('/opt/c/chrome', '/opt/g/chrome', '/usr/bin/chromium', '/x/chromium', '/y/google-chrome');
    const PATH = '/x:/y';
    expect(findBrowser({ CHROMIUM_PATH: '/opt/c/chrome', CHROME_PATH: '/opt/g/chrome', PATH }, all)).toEqual({
      path: '/opt/c/chrome',
      from: 'CHROMIUM_PATH',
    });
    expect(findBrowser({ CHROME_PATH: '/opt/g/chrome', PATH }, all)).toEqual({ path: '/opt/g/chrome', from: 'CHROME_PATH' });
    expect(findBrowser({ PATH }, all)).toEqual({ path: '/usr/bin/chromium', from: 'default' });
    expect(findBrowser({ PATH }, only('/x/chromium', '/y/google-chrome'))).toEqual({ path: '/x/chromium', from: 'PATH' });
  });

  it('tries each name in the PATH order: chromium, chromium-browser, google-chrome', () => {
    expect(findBrowser({ PATH: '/a:/b' }, only('/b/chromium-browser'))).toEqual({ path: '/b/chromium-browser', from: 'PATH' });
    expect(findBrowser({ PATH: '/a:/b' }, only('/a/google-chrome', '/b/chromium-browser'))).toEqual({
      path: '/b/chromium-browser',
      from: 'PATH',
    });
    expect(findBrowser({ PATH: '/a::/b' }, only('/a/google-chrome-stable'))).toEqual({ path: '/a/google-chrome-stable', from: 'PATH' });
  });

  it('reports an explicit path that is not executable instead of passing over it', () => {
    const found = findBrowser({ CHROMIUM_PATH: '/nope/chromium', PATH: '/x' }, only('/usr/bin/chromium'));
    expect(found).toEqual({ path: undefined, problem: 'CHROMIUM_PATH=/nope/chromium is not an executable file' });
  });

  it('finds none on a machine without a browser', () => {
    const found = findBrowser({ PATH: '/usr/bin:/bin' }, () => false);
    expect(found.path).toBeUndefined();
    expect(found).toMatchObject({ problem: expect.stringMatching(/^no Chromium found/) });
  });

  it('counts only executable files', () => {
    const { dir, cleanup } = tempDir();
    try {
      const exe = join(dir, 'chromium');
      writeFileSync(exe, '#!/bin/sh\n');
      expect(isExecutableFile(exe)).toBe(false);
      chmodSync(exe, 0o755);
      expect(isExecutableFile(exe)).toBe(true);
      mkdirSync(join(dir, 'google-chrome'));
      chmodSync(join(dir, 'google-chrome'), 0o755);
      expect(isExecutableFile(join(dir, 'google-chrome'))).toBe(false); // a directory
      expect(isExecutableFile(join(dir, 'missing'))).toBe(false);
    } finally {
      cleanup();
    }
  });
});

describe('browserForTests', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('without a browser: skips with one warning that says how to enable the tests', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(browserForTests({ PATH: '/none' }, () => false)).toBeUndefined();
    expect(browserForTests({ PATH: '/none' }, () => false)).toBeUndefined();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/SKIPPED.*apt-get install chromium.*CHROMIUM_PATH/);
  });

  it('with RECEIPTS_REQUIRE_BROWSER=1 a missing browser is a failure, not a skip', () => {
    expect(() => browserForTests({ PATH: '/none', RECEIPTS_REQUIRE_BROWSER: '1' }, () => false)).toThrow(
      /RECEIPTS_REQUIRE_BROWSER=1 requires them: install Chromium/,
    );
    expect(browserForTests({ RECEIPTS_REQUIRE_BROWSER: '1', CHROME_PATH: '/c' }, only('/c'))).toBe('/c');
  });
});
