// The web page in a real browser (Debian's Chromium through playwright-core). When the browser
// cannot start, these tests fail: they are never skipped.
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealAll } from '../../src/seal/sealer.ts';
import { buildWeb, WEB_DIST, webBuilt } from '../../src/web/build.ts';
import { FakeChain } from '../anchor/fake-chain.ts';
import { event, testServer, type TestServer } from '../helpers.ts';

const SHOTS = 'test-output/screenshots';
let s: TestServer;
let browser: Browser;
let origin: string;
const ids: number[] = [];
const consoleErrors: string[] = [];
const foreignRequests: string[] = [];

beforeAll(async () => {
  if (!webBuilt()) await buildWeb();
  mkdirSync(SHOTS, { recursive: true });
  s = await testServer({ web: { dir: WEB_DIST }, anchoring: { chain: new FakeChain(), pollMs: 5 } });
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
  const now = Date.now();
  const posted = await s.post({
    events: [
      ...Array.from({ length: 6 }, (_, i) => event({ namespace: 'acme/web', action: 'recall', caller: `user-${i % 2}`, units: i + 1, ts: now - (6 - i) * 3_600_000 })),
      ...Array.from({ length: 3 }, (_, i) => event({ namespace: 'acme/web', action: 'extract', caller: 'user-9', units: 10, ts: now - i * 60_000 })),
    ],
  });
  ids.push(...posted.json().results.map((r: { id: number }) => r.id));
  await sealAll(s.ledger, { maxEvents: 4 });
  // Wait until the anchorer has put every epoch on the (fake) chain.
  for (let i = 0; i < 500 && (s.db().prepare('SELECT count(*) AS n FROM anchors').get() as { n: number }).n < 3; i++) await new Promise((r) => setTimeout(r, 10));
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

afterAll(async () => {
  await browser?.close();
  await s?.close();
});

async function open(path: string, viewport = { width: 1200, height: 900 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(`${path}: ${m.text()}`));
  page.on('pageerror', (e) => consoleErrors.push(`${path}: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreignRequests.push(r.url());
  });
  await page.goto(`${origin}/verify`);
  await page.fill('#api-key', s.key);
  await page.dispatchEvent('#api-key', 'change');
  if (path !== '/verify') await page.goto(`${origin}${path}`);
  return page;
}

describe('verify page', () => {
  it('verifies a receipt in the browser, shows every step and level green, and checks it against the chain', async () => {
    const page = await open(`/verify?event=${ids[4]}`);
    await page.waitForSelector('#verdict[data-ok="true"]');
    expect(await page.textContent('#verdict')).toMatch(/^Valid: leaf \d+ of \d+ in epoch \d+/);
    const steps = await page.$$eval('#steps > li', (lis) => lis.map((li) => [li.getAttribute('data-step'), li.className]));
    expect(steps).toEqual([['format', 'ok'], ['leaf', 'ok'], ['path', 'ok'], ['root', 'ok']]);
    expect(await page.$$eval('#steps .levels li', (lis) => lis.length)).toBeGreaterThan(0);
    await page.waitForSelector('#chain-check p.ok');
    expect(await page.textContent('#chain-check')).toMatch(/Matches the root and size the registry holds[\s\S]*read from the chain by this service/);
    expect(await page.textContent('#chain-check')).toMatch(/transaction Digest1, checkpoint 1000/);
    await page.screenshot({ path: `${SHOTS}/verify-valid.png`, fullPage: true });
    await page.close();
  });

  it('shows a tampered receipt in red, naming the failing step', async () => {
    const page = await open('/verify');
    const receipt = (await s.get(`/v1/events/${ids[2]}/receipt`)).json();
    receipt.event.units = 1000;
    await page.fill('#receipt-input', JSON.stringify(receipt, null, 2));
    await page.click('#verify-button');
    await page.waitForSelector('#verdict[data-ok="false"]');
    expect(await page.getAttribute('#verdict', 'data-failed-step')).toBe('leaf');
    expect(await page.textContent('#verdict')).toMatch(/^Invalid at step "Leaf rebuilt from the event fields, leaf hash compared": the leaf hash does not match the event fields/);
    expect(await page.getAttribute('#verdict', 'class')).toBe('bad');
    await page.screenshot({ path: `${SHOTS}/verify-tampered.png`, fullPage: true });
    await page.close();
  });

  it('works by keyboard alone, every control has a label, and it fits a phone', async () => {
    const page = await open('/verify', { width: 390, height: 844 });
    expect(await page.$$eval('input, textarea', (els) => els.filter((e) => (e as HTMLInputElement).labels?.length === 0).map((e) => e.id))).toEqual([]);
    await page.focus('#event-id');
    await page.keyboard.type(String(ids[0]));
    await page.keyboard.press('Tab'); // to Fetch
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('fetch-receipt');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#verdict[data-ok="true"]');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: `${SHOTS}/verify-phone.png`, fullPage: true });
    await page.close();
  });
});

describe('usage page', () => {
  it('shows the totals posted, the chart, epochs with their status, and events linked to receipts', async () => {
    const page = await open('/usage');
    await page.fill('#namespace', 'acme/web');
    await page.click('#usage-form button[type="submit"]');
    await page.waitForSelector('#totals tbody tr');
    const totals = await page.$$eval('#totals tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
    expect(totals).toEqual([['extract', '3', '30'], ['recall', '6', '21'], ['Total', '9', '51']]);
    expect(await page.$('#chart canvas')).not.toBeNull();
    const epochs = await page.$$eval('#epochs tbody tr', (rows) => rows.map((r) => r.querySelectorAll('td')[2]!.textContent));
    expect(epochs).toEqual(['anchored', 'anchored', 'anchored']);
    const links = await page.$$eval('#events tbody a', (as) => as.map((a) => a.getAttribute('href')));
    expect(links).toHaveLength(9);
    expect(links).toContain(`/verify?event=${ids[0]}`);
    expect(await page.textContent('#usage-status')).toMatch(/^9 events, 51 units in acme\/web/);
    await page.screenshot({ path: `${SHOTS}/usage.png`, fullPage: true });

    // Live refresh: a new event shows up without reloading.
    await s.post(event({ namespace: 'acme/web', action: 'recall', units: 100 }));
    await page.waitForFunction(() => document.querySelector('#usage-status')?.textContent?.startsWith('10 events, 151 units'), undefined, { timeout: 10_000 });
    await page.close();
  });
});

describe('the whole session', () => {
  it('had no console errors and made no request outside the service', () => {
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
