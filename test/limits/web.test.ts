// The usage page shows each limit of a namespace with its usage in the period and the thresholds
// reached (GET /v1/limits/usage), in a real browser (Chromium); a namespace without limits shows
// no limits section. Skipped without a browser, as the other browser tests.
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../src/web/build.ts';
import { browserForTests } from '../browser.ts';
import { event, testServer, type TestServer } from '../helpers.ts';

const browserPath = browserForTests();
const WEB = resolve('test-output/web-dist-limits');

let s: TestServer;
let browser: Browser;
let origin: string;
const errors: string[] = [];

beforeAll(async () => {
  if (!browserPath) return;
  await buildWeb(WEB);
  s = await testServer({ web: { dir: WEB } });
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
  const admin = await s.ledger.keys.create('acme-inc', ['acme/*'], undefined, ['admin']);
  const put = (id: string, body: unknown) =>
    s.app.inject({
      method: 'PUT',
      url: `/v1/limits/${id}`,
      headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  expect(
    (await put('chat-month', { namespace: 'acme/web', actions: ['chat'], measure: 'units', period: 'month', hard: 10, soft: [50, 80] }))
      .statusCode,
  ).toBe(201);
  expect((await put('all-events', { namespace: 'acme/web', measure: 'events', period: 'total', soft_units: [100] })).statusCode).toBe(201);
  await s.post({
    events: [event({ namespace: 'acme/web', action: 'chat', units: 6 }), event({ namespace: 'acme/plain', action: 'chat' })],
  });
  browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await s?.close();
});

async function usage(namespace: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${origin}/verify`);
  await page.fill('#api-key', s.key);
  await page.dispatchEvent('#api-key', 'change');
  await page.goto(`${origin}/usage`);
  await page.fill('#namespace', namespace);
  await page.click('#usage-form button[type="submit"]');
  await page.waitForFunction((ns) => document.querySelector('#usage-status')?.textContent?.includes(`units in ${ns}`), namespace);
  return page;
}

describe.skipIf(!browserPath)('limits on the usage page', () => {
  it('lists each limit with what it counts, its period, used, hard, left and the thresholds reached', async () => {
    const page = await usage('acme/web');
    await page.waitForSelector('#limits:not([hidden]) #limits-table tbody tr');
    const rows = await page.$$eval('#limits-table tbody tr', (trs) =>
      trs.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows).toEqual([
      ['all-events', 'events of every action', 'all time', '1', '—', '—', 'none'],
      [
        'chat-month',
        'units of chat',
        expect.stringMatching(/^this month \(UTC\), until /),
        '6',
        '10',
        '4',
        expect.stringMatching(/^50 %( at .+, no webhook)?$/),
      ],
    ]);
    expect(await page.textContent('#limits-note')).toMatch(/^Exact as of ledger position \d+\.$/);
    await page.close();
  });

  it('shows no limits section for a namespace without limits', async () => {
    const page = await usage('acme/plain');
    await page.waitForSelector('#limits[data-loaded="acme/plain"]', { state: 'attached' });
    expect(await page.$eval('#limits', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
