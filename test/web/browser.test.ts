// The web page in a real browser (Chromium through playwright-core). The browser is found the
// way a user has one (test/browser.ts); without one these tests are skipped with one warning,
// or fail when RECEIPTS_REQUIRE_BROWSER=1 (as in CI).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { toBase58 } from '@mysten/sui/utils';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EpochToAnchor } from '../../src/chain/ptb.ts';
import { configureClassification } from '../../src/ledger/classification-periods.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { buildWeb } from '../../src/web/build.ts';
import { FakeChain } from '../anchor/fake-chain.ts';
import { browserForTests } from '../browser.ts';
import { event, testServer, until, type TestServer } from '../helpers.ts';

const browserPath = browserForTests();
const SHOTS = 'test-output/screenshots';
// Built from the current source for every run (esbuild takes well under a second): a web-dist/
// left from an older checkout would test the old page.
const WEB = resolve('test-output/web-dist');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const hex = (label: string) => createHash('sha256').update(label).digest('hex');

/**
 * The fake chain with ids shaped like Sui's (32-byte object ids, base58 transaction digests,
 * checkpoint numbers of a live network) so the screenshots show what a user sees. Network
 * stays "localnet": it is a test chain, and the page says so.
 */
class SuiLikeChain extends FakeChain {
  override readonly packageId = `0x${hex('sui-receipts package')}`;
  override readonly registryId = `0x${hex('sui-receipts registry')}`;
  private readonly toReal = new Map<string, string>();
  private readonly toFake = new Map<string, string>();

  constructor() {
    super();
    // The same registry model, for this registry id (its class taken from the parent's instance).
    const Model = this.model.constructor as new (id: string) => FakeChain['model'];
    Object.defineProperty(this, 'model', { value: new Model(this.registryId) });
  }

  private real(digest: string): string {
    let r = this.toReal.get(digest);
    if (!r) {
      r = toBase58(createHash('sha256').update(`tx ${digest}`).digest());
      this.toReal.set(digest, r);
      this.toFake.set(r, digest);
    }
    return r;
  }

  override async anchor(epochs: EpochToAnchor[], hooks?: { beforeSend?: (digest: string) => void }) {
    const res = await super.anchor(epochs, { beforeSend: (d) => hooks?.beforeSend?.(this.real(d)) });
    return { digest: this.real(res.digest), checkpoint: res.checkpoint && String(231_480_000 + Number(res.checkpoint)) };
  }

  override async checkpointOf(digest: string) {
    const c = await super.checkpointOf(this.toFake.get(digest) ?? digest);
    return c && String(231_480_000 + Number(c));
  }
}

let s: TestServer;
let browser: Browser;
let origin: string;
const ids: number[] = [];
const consoleErrors: string[] = [];
const foreignRequests: string[] = [];

async function listen(server: TestServer): Promise<string> {
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  if (!browserPath) return;
  await buildWeb(WEB);
  mkdirSync(SHOTS, { recursive: true });
  s = await testServer({ web: { dir: WEB }, anchoring: { chain: new SuiLikeChain(), pollMs: 5 } });
  origin = await listen(s);
  const now = Date.now();
  // extract is recorded but not billable, from before every event posted here.
  await configureClassification(s.ledger, { billable: ['recall'], non_billable: ['extract'], other: 'info' }, { fromMs: now - DAY, now });
  const posted = await s.post({
    events: [
      ...Array.from({ length: 6 }, (_, i) =>
        event({ namespace: 'acme/web', action: 'recall', caller: `user-${i % 2}`, units: i + 1, ts: now - (6 - i) * HOUR }),
      ),
      ...Array.from({ length: 3 }, (_, i) =>
        event({ namespace: 'acme/web', action: 'extract', caller: 'user-9', units: 10, ts: now - i * 60_000 }),
      ),
    ],
  });
  ids.push(...posted.json().results.map((r: { id: number }) => r.id));
  await sealAll(s.ledger, { maxEvents: 4 });
  // Wait until the anchorer has put every epoch on the (fake) chain.
  await until(async () => ((await s.ledger.anchors.anchoredThrough()) ?? -1) >= 2);
  browser = await chromium.launch({
    executablePath: browserPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await s?.close();
});

interface OpenOptions {
  viewport?: { width: number; height: number };
  timezoneId?: string;
  /** Type the API key into the page first (default true). */
  key?: boolean;
  server?: { origin: string; key: string };
}

async function open(path: string, o: OpenOptions = {}): Promise<Page> {
  const at = o.server ?? { origin, key: s.key };
  const context = await browser.newContext({
    viewport: o.viewport ?? { width: 1200, height: 900 },
    ...(o.timezoneId && { timezoneId: o.timezoneId }),
  });
  const page = await context.newPage();
  // While afterAll closes the browser, this close races it and may reject: not a test failure.
  page.on('close', () => void context.close().catch(() => {}));
  page.on(
    'console',
    (m) => m.type() === 'error' && !(o.key === false && /401/.test(m.text())) && consoleErrors.push(`${path}: ${m.text()}`),
  );
  page.on('pageerror', (e) => consoleErrors.push(`${path}: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(at.origin) && !r.url().startsWith('data:')) foreignRequests.push(r.url());
  });
  if (o.key !== false) {
    await page.goto(`${at.origin}/verify`);
    await page.fill('#api-key', at.key);
    await page.dispatchEvent('#api-key', 'change');
  }
  await page.goto(`${at.origin}${path}`);
  return page;
}

async function showUsage(page: Page, namespace: string): Promise<void> {
  await page.fill('#namespace', namespace);
  await page.click('#usage-form button[type="submit"]');
  await page.waitForFunction((ns) => document.querySelector('#usage-status')?.textContent?.includes(`units in ${ns}`), namespace);
}

const cells = (page: Page, table: string) =>
  page.$$eval(`#${table} tbody tr`, (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));

describe.skipIf(!browserPath)('verify page', () => {
  it('verifies a receipt in the browser, shows every step and level green, and checks it against the chain', async () => {
    const page = await open(`/verify?event=${ids[4]}`);
    await page.waitForSelector('#verdict[data-ok="true"]');
    expect(await page.textContent('#verdict')).toMatch(/^Valid: leaf \d+ of \d+ in epoch \d+/);
    const steps = await page.$$eval('#steps > li', (lis) => lis.map((li) => [li.getAttribute('data-step'), li.className]));
    expect(steps).toEqual([
      ['format', 'ok'],
      ['leaf', 'ok'],
      ['path', 'ok'],
      ['root', 'ok'],
    ]);
    expect(await page.$$eval('#steps .levels li', (lis) => lis.length)).toBeGreaterThan(0);
    await page.waitForSelector('#chain-check p.ok');
    expect(await page.textContent('#chain-check')).toMatch(
      /Matches the root and size the registry holds[\s\S]*read from the chain by this service/,
    );
    // Sui-shaped ids: a 0x + 64 hex registry, a base58 transaction digest, a checkpoint number.
    expect(await page.textContent('#chain-check')).toMatch(
      /registry 0x[0-9a-f]{64}, transaction [1-9A-HJ-NP-Za-km-z]{43,44}, checkpoint 2314\d{5}\./,
    );
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
    expect(await page.textContent('#verdict')).toMatch(
      /^Invalid at step "Leaf rebuilt from the event fields, leaf hash compared": the leaf hash does not match the event fields/,
    );
    expect(await page.getAttribute('#verdict', 'class')).toBe('bad');
    // The stable code next to the sentence.
    expect(await page.getAttribute('#verdict', 'data-code')).toBe('leaf_mismatch');
    expect(await page.textContent('#verdict .failure-code')).toBe('leaf_mismatch');
    await page.screenshot({ path: `${SHOTS}/verify-tampered.png`, fullPage: true });
    await page.close();
  });

  it('verifies the golden receipt (test/vectors/golden-receipt.json) pasted in, and rejects it with one unit changed', async () => {
    const golden = JSON.parse(readFileSync(resolve('test/vectors/golden-receipt.json'), 'utf8')).receipt;
    const page = await open('/verify');
    await page.fill('#receipt-input', JSON.stringify(golden, null, 2));
    await page.click('#verify-button');
    await page.waitForSelector('#verdict[data-ok="true"]');
    expect(await page.textContent('#verdict')).toMatch(new RegExp(`^Valid: leaf 5 of 7 in epoch 3 [\\s\\S]*${golden.root}`));
    await page.fill('#receipt-input', JSON.stringify({ ...golden, event: { ...golden.event, units: golden.event.units + 1 } }));
    await page.click('#verify-button');
    await page.waitForSelector('#verdict[data-ok="false"]');
    expect(await page.getAttribute('#verdict', 'data-code')).toBe('leaf_mismatch');
    await page.close();
  });

  it('works by keyboard alone, every control has a label, and it fits a phone', async () => {
    const page = await open('/verify', { viewport: { width: 390, height: 844 } });
    expect(
      await page.$$eval('input, textarea', (els) => els.filter((e) => (e as HTMLInputElement).labels?.length === 0).map((e) => e.id)),
    ).toEqual([]);
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

  it('without a key, points at the key box on the page (not at HTTP headers), and retries once a key is typed', async () => {
    const page = await open(`/verify?event=${ids[1]}`, { key: false });
    await page.waitForSelector('#verdict[data-needs-key="true"]');
    const text = (await page.textContent('#verdict'))!;
    expect(text).toMatch(/Enter your API key in the "API key" box at the top of this page/);
    expect(text).not.toMatch(/authorization|header|bearer/i);
    expect(await page.getAttribute('#verdict', 'class')).not.toBe('bad'); // a missing key is not a forgery
    await page.click('#verdict button.link');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('api-key');
    await page.keyboard.type(s.key);
    await page.keyboard.press('Tab'); // commits the field: the page fetches again with the key
    await page.waitForSelector('#verdict[data-ok="true"]');

    // A wrong key says so, and where to fix it.
    await page.fill('#api-key', 'sr_wrong');
    await page.dispatchEvent('#api-key', 'change');
    await page.click('#fetch-receipt');
    await page.waitForFunction(() => /was not accepted/.test(document.querySelector('#verdict')?.textContent ?? ''));
    expect(await page.textContent('#verdict')).toMatch(/The API key in the "API key" box at the top of this page was not accepted/);

    const usage = await open('/usage', { key: false });
    await usage.fill('#namespace', 'acme/web');
    await usage.click('#usage-form button[type="submit"]');
    await usage.waitForSelector('#usage-status[data-needs-key="true"]');
    expect(await usage.textContent('#usage-status')).toMatch(
      /^Could not load usage: Enter your API key in the "API key" box at the top of this page/,
    );
    expect(await usage.textContent('#usage-status')).not.toMatch(/authorization/i);
    await usage.close();
    await page.close();
  });
});

describe.skipIf(!browserPath)('usage page', () => {
  it('shows the totals posted, the chart, epochs with their status, and events linked to receipts', async () => {
    const page = await open('/usage');
    await showUsage(page, 'acme/web');
    const totals = await cells(page, 'totals');
    // Billable columns: extract is classified non-billable, recall billable (configured above).
    expect(totals).toEqual([
      ['extract', '3', '30', '0', '0'],
      ['recall', '6', '21', '6', '21'],
      ['Total', '9', '51', '6', '21'],
    ]);
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
    await page.waitForFunction(() => document.querySelector('#usage-status')?.textContent?.startsWith('10 events, 151 units'), undefined, {
      timeout: 10_000,
    });
    await page.close();
  });

  it('lists the newest 50 events, newest first, not the oldest', async () => {
    const now = Date.now();
    const posted = await s.post({
      events: Array.from({ length: 70 }, (_, i) => event({ namespace: 'acme/many', units: i, ts: now - (70 - i) * 60_000 })),
    });
    const newest = (posted.json().results as Array<{ id: number }>)
      .map((r) => r.id)
      .reverse()
      .slice(0, 50);
    const page = await open('/usage');
    await showUsage(page, 'acme/many');
    const shown = (await cells(page, 'events')).map((r) => Number(r[0]));
    expect(shown).toEqual(newest);
    await page.close();
  });

  it('shows totals for several namespaces at once (comma list), and says events are listed one namespace at a time', async () => {
    const page = await open('/usage');
    await showUsage(page, 'acme/web,acme/many');
    expect((await cells(page, 'totals')).at(-1)![0]).toBe('Total');
    expect(await page.textContent('#events-note')).toMatch(/one namespace at a time/);
    expect(await cells(page, 'events')).toEqual([]);
    await showUsage(page, 'acme/many');
    expect(await page.textContent('#events-note')).toBe('');
    expect(await cells(page, 'events')).toHaveLength(50);
    await page.close();
  });

  it('shows the newest epochs, however many exist (past 1,000)', async () => {
    const big = await testServer({ web: { dir: WEB } });
    try {
      const at = { origin: await listen(big), key: big.key };
      await big.post({ events: Array.from({ length: 600 }, () => event({ namespace: 'acme/big' })) });
      await big.post({ events: Array.from({ length: 605 }, () => event({ namespace: 'acme/big' })) });
      await sealAll(big.ledger, { maxEvents: 1 }); // epochs 0 … 1204
      const page = await open('/usage', { server: at });
      await showUsage(page, 'acme/big');
      const epochs = (await cells(page, 'epochs')).map((r) => [Number(r[0]), r[2]]);
      expect(epochs).toEqual(Array.from({ length: 20 }, (_, i) => [1204 - i, 'sealed']));
      await page.close();
    } finally {
      await big.close();
    }
  });

  it.each([
    // US daylight saving starts 2026-03-08 02:00: 01:30 is EST (UTC-5), 03:30 is EDT (UTC-4).
    [
      'America/New_York',
      '2026-03-08T01:30',
      '2026-03-08T03:30',
      '2026-03-08T06:30:00Z',
      '2026-03-08T07:30:00Z',
      /America\/New_York \(UTC-0[45]:00 now\)/,
    ],
    // Adelaide is UTC+10:30 in January (daylight saving): a half-hour offset.
    [
      'Australia/Adelaide',
      '2026-01-10T00:00',
      '2026-01-11T00:00',
      '2026-01-09T13:30:00Z',
      '2026-01-10T13:30:00Z',
      /Australia\/Adelaide \(UTC\+(09|10):30 now\)/,
    ],
    ['UTC', '2026-01-10T00:00', '2026-01-10T12:00', '2026-01-10T00:00:00Z', '2026-01-10T12:00:00Z', /time zone: UTC \(UTC\+00:00 now\)/],
  ])(
    'in %s, a From/To range typed in the browser selects exactly that range, and the page names the zone',
    async (timezoneId, fromText, toText, fromUtc, toUtc, zoneLabel) => {
      const page = await open('/usage', { timezoneId });
      const sent: URL[] = [];
      page.on('request', (r) => r.url().includes('/v1/usage?') && sent.push(new URL(r.url())));
      await page.fill('#namespace', 'acme/web');
      await page.fill('#from', fromText);
      await page.fill('#to', toText);
      await page.click('#usage-form button[type="submit"]');
      await page.waitForFunction(() => /units in acme\/web/.test(document.querySelector('#usage-status')?.textContent ?? ''));
      expect(sent.length).toBeGreaterThanOrEqual(3);
      for (const url of sent) {
        expect(url.searchParams.get('from')).toBe(String(Date.parse(fromUtc)));
        expect(url.searchParams.get('to')).toBe(String(Date.parse(toUtc)));
      }
      expect(await page.textContent('#zone-note')).toMatch(zoneLabel);
      expect(await page.textContent('#events-time')).toBe(`Time (${timezoneId})`);
      // The chart spans the range chosen, to whole local hours, not years around it.
      const chart = await page.$eval('#chart', (e) => ({ ...(e as HTMLElement).dataset }));
      expect(chart.bucket).toBe('hour');
      expect(Date.parse(fromUtc) - Number(chart.xMin)).toBeGreaterThanOrEqual(0);
      expect(Date.parse(fromUtc) - Number(chart.xMin)).toBeLessThan(HOUR);
      expect(Number(chart.xMax) - Date.parse(toUtc)).toBeGreaterThanOrEqual(0);
      expect(Number(chart.xMax) - Date.parse(toUtc)).toBeLessThan(HOUR);
      await page.close();
    },
  );

  it('shows event times in the browser zone, the zone the page names', async () => {
    const ts = Math.floor(Date.now() / 1000) * 1000 - 5 * 60_000;
    const [r] = (await s.post(event({ namespace: 'acme/tz', ts }))).json().results;
    const page = await open('/usage', { timezoneId: 'Asia/Kolkata' });
    await showUsage(page, 'acme/tz');
    const [cellsRow] = await cells(page, 'events');
    const expected = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Kolkata', dateStyle: 'short', timeStyle: 'medium' }).format(ts);
    expect(cellsRow).toEqual([String(r.id), 'recall', 'user-1', '1', expected, 'pending receipt']);
    await page.close();
  });

  it.each([
    // [namespace, event offsets back from now (h), bucket, min and max span of the axis (h)]
    ['acme/chart-1', [1], 'hour', 24, 26],
    ['acme/chart-day', Array.from({ length: 24 }, (_, i) => i + 1), 'hour', 24, 26],
    ['acme/chart-30d', Array.from({ length: 30 }, (_, i) => i * 24 + 2), 'day', 30 * 24, 33 * 24],
  ] as const)('draws %s on a readable axis: sensible range and bucket size', async (ns, hoursAgo, bucket, minSpan, maxSpan) => {
    const now = Date.now();
    await s.post({ events: hoursAgo.map((h) => event({ namespace: ns, units: 5, ts: now - h * HOUR })) });
    const page = await open('/usage', { timezoneId: 'Europe/Berlin' });
    await showUsage(page, ns);
    const chart = await page.$eval('#chart', (e) => ({ ...(e as HTMLElement).dataset }));
    expect(chart.bucket).toBe(bucket);
    const span = (Number(chart.xMax) - Number(chart.xMin)) / HOUR;
    expect(span).toBeGreaterThanOrEqual(minSpan);
    expect(span).toBeLessThanOrEqual(maxSpan);
    expect(Number(chart.xMin)).toBeLessThanOrEqual(now - Math.max(...hoursAgo) * HOUR);
    expect(Number(chart.xMax)).toBeGreaterThanOrEqual(now);
    expect(Number(chart.bars)).toBeLessThanOrEqual(40);
    expect(await page.textContent('#chart-title')).toBe(bucket === 'hour' ? 'Units per hour' : 'Units per day');
    // uPlot drew that range: its x axis labels stay within it (no years for one point).
    const labels = await page.$$eval('#chart .u-axis', (axes) => axes[0]!.textContent);
    expect(labels).not.toMatch(/\b(19|20)\d\d\b.*\b(19|20)\d\d\b/);
    if (ns === 'acme/chart-30d') await page.screenshot({ path: `${SHOTS}/usage-30-days.png`, fullPage: true });
    await page.close();
  });

  it('stays readable on a phone (390 px): no word or number broken across lines, wide tables scroll', async () => {
    const page = await open('/usage', { viewport: { width: 390, height: 844 } });
    await showUsage(page, 'acme/web');
    const broken = await page.$$eval(':is(#totals, #epochs, #events) :is(th, td:not(.hash-cell))', (els) =>
      els
        .filter((e) => {
          const range = document.createRange();
          range.selectNodeContents(e);
          const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          return lines.size > 1;
        })
        .map((e) => e.textContent),
    );
    expect(broken).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // A root wraps inside a cell wide enough to read, not one character per line.
    const rootWidth = await page.$eval('#epochs td.hash-cell', (e) => e.getBoundingClientRect().width);
    expect(rootWidth).toBeGreaterThanOrEqual(150);
    await page.screenshot({ path: `${SHOTS}/usage-phone.png`, fullPage: true });
    await page.close();
  });
});

describe.skipIf(!browserPath)('a pending receipt', () => {
  it('is shown as not sealed yet, not as invalid, and turns valid by itself once sealed', async () => {
    const [r] = (await s.post(event({ namespace: 'acme/pending', units: 3 }))).json().results;
    const page = await open(`/verify?event=${r.id}`);
    await page.waitForSelector('#verdict[data-ok="pending"]');
    expect(await page.getAttribute('#verdict', 'class')).toBe('pending');
    expect(await page.textContent('#verdict')).toMatch(
      new RegExp(
        `^Not sealed yet: event ${r.id} is recorded, but the epoch that will hold it is not sealed yet[^]*not a failure[^]*checks again every 5 s`,
      ),
    );
    expect(await page.textContent('#verdict')).not.toMatch(/invalid/i);
    expect(await page.$$('#steps li')).toHaveLength(0);
    // "Check again" asks the service again: still pending.
    await page.click('#check-again');
    await page.waitForSelector('#verdict[data-ok="pending"]');
    await page.screenshot({ path: `${SHOTS}/verify-pending.png`, fullPage: true });
    await sealAll(s.ledger, { maxEvents: 1000 });
    await page.waitForSelector('#verdict[data-ok="true"]', { timeout: 15_000 });
    expect(await page.textContent('#verdict')).toMatch(/^Valid: leaf/);
    await page.close();
  });
});

describe.skipIf(!browserPath)('API reference page', () => {
  it('renders the OpenAPI document under the service CSP, from the service alone', async () => {
    const page = await open('/docs', { key: false });
    await page.waitForSelector('.swagger-ui .info .title');
    expect(await page.textContent('.swagger-ui .info .title')).toMatch(/sui-receipts/);
    await page.waitForSelector('.opblock-summary-path[data-path="/v1/events"]');
    expect(await page.$$eval('.opblock-summary-path', (els) => els.map((e) => e.getAttribute('data-path')))).toEqual(
      expect.arrayContaining(['/v1/events', '/v1/usage', '/v1/events/{id}/receipt', '/openapi.json']),
    );
    await page.screenshot({ path: `${SHOTS}/api-reference.png`, fullPage: false });
    await page.close();
  });
});

describe.skipIf(!browserPath)('the whole session', () => {
  it('had no console errors and made no request outside the service', () => {
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
