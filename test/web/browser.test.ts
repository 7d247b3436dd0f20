// The web page in a real browser (Chromium through playwright-core). The browser is found the
// way a user has one (test/browser.ts); without one these tests are skipped with one warning,
// or fail when RECEIPTS_REQUIRE_BROWSER=1 (as in CI).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { toBase58 } from '@mysten/sui/utils';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EpochToAnchor } from '../../src/chain/ptb.ts';
import {
  cosigner,
  cosignerVerifierOf,
  formatVerifierKey,
  generateSigningKey,
  signNote,
  splitNote,
  verifierKeyOf,
  type SigningKey,
} from '../../src/checkpoint/index.ts';
import { logSigner } from '../../src/ledger/index.ts';
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

// The service's log key: every checkpoint of the main test server is signed with it.
const LOG_KEY = generateSigningKey('receipts.test/web');
const LOG_VKEY = verifierKeyOf(LOG_KEY);
const log = logSigner(LOG_KEY);

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
  s = await testServer({ web: { dir: WEB }, anchoring: { chain: new SuiLikeChain(), pollMs: 5 }, logKey: LOG_KEY });
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
  await sealAll(s.ledger, { maxEvents: 4, log });
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
  /** A browser context to open the page in (its localStorage: the pinned log key), else a new one. */
  context?: BrowserContext;
}

async function open(path: string, o: OpenOptions = {}): Promise<Page> {
  const at = o.server ?? { origin, key: s.key };
  const context =
    o.context ??
    (await browser.newContext({
      viewport: o.viewport ?? { width: 1200, height: 900 },
      ...(o.timezoneId && { timezoneId: o.timezoneId }),
    }));
  const page = await context.newPage();
  // While afterAll closes the browser, this close races it and may reject: not a test failure.
  if (!o.context) page.on('close', () => void context.close().catch(() => {}));
  page.on(
    'console',
    (m) =>
      m.type() === 'error' &&
      !(o.key === false && /401/.test(m.text())) &&
      // A server without a log key answers GET /v1/log with 404 log_off, which the browser logs.
      !(/status of 404/.test(m.text()) && new URL(m.location().url).pathname === '/v1/log') &&
      consoleErrors.push(`${path}: ${m.text()}`),
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

/** A string as a regular expression matching it literally (vkeys hold + and /). */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const cells = (page: Page, table: string) =>
  page.$$eval(`#${table} tbody tr`, (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));

describe.skipIf(!browserPath)('verify page', () => {
  it('verifies a proof bundle in the browser, shows every step and level green, signed by the pinned log key and anchored on Sui', async () => {
    const page = await open(`/verify?event=${ids[4]}`);
    await page.waitForSelector('#verdict[data-trust~="sui"]');
    expect(await page.getAttribute('#verdict', 'data-trust')).toBe('log-key sui');
    expect(await page.getAttribute('#verdict', 'class')).toBe('ok');
    expect(await page.textContent('#verdict')).toMatch(
      new RegExp(`^Signed by the log key ${literal(LOG_VKEY)}, and anchored on Sui: leaf \\d+ of \\d+ in epoch \\d+`),
    );
    const steps = await page.$$eval('#steps > li', (lis) => lis.map((li) => [li.getAttribute('data-step'), li.className]));
    expect(steps).toEqual([
      ['format', 'ok'],
      ['leaf', 'ok'],
      ['path', 'ok'],
      ['root', 'ok'],
      ['header', 'ok'],
      ['log', 'ok'],
      ['checkpoint', 'ok'],
    ]);
    expect(await page.textContent('#log-key-status')).toContain(LOG_VKEY);
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
    // A receipt alone is checked against its own root only: amber, never a green "valid".
    expect(await page.textContent('#verdict')).toMatch(
      new RegExp(`^Matches the server's own root only: leaf 5 of 7 in epoch 3 [\\s\\S]*${golden.root}`),
    );
    expect(await page.getAttribute('#verdict', 'data-trust')).toBe('server-root');
    expect(await page.getAttribute('#verdict', 'class')).toBe('server-only');
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
    // Epochs of 4, 4 and 1 events, all acme/web's (the first events of this server).
    expect((await cells(page, 'epochs')).map((r) => [r[1], r[2]])).toEqual([
      ['1', 'anchored'],
      ['4', 'anchored'],
      ['4', 'anchored'],
    ]);
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

  it('shows the epochs of the newest events, however many exist (past 1,000)', async () => {
    const big = await testServer({ web: { dir: WEB } });
    try {
      const at = { origin: await listen(big), key: big.key };
      await big.post({ events: Array.from({ length: 600 }, () => event({ namespace: 'acme/big' })) });
      await big.post({ events: Array.from({ length: 605 }, () => event({ namespace: 'acme/big' })) });
      await sealAll(big.ledger, { maxEvents: 1 }); // epochs 0 … 1204
      const page = await open('/usage', { server: at });
      await showUsage(page, 'acme/big');
      // The 50 newest events, one per epoch: epochs 1204 … 1155, one of the customer's events each.
      const epochs = (await cells(page, 'epochs')).map((r) => [Number(r[0]), r[1], r[2]]);
      expect(epochs).toEqual(Array.from({ length: 50 }, (_, i) => [1204 - i, '1', 'sealed']));
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
    // 30 local days in Berlin: 719 h when they hold the 23-hour day of the change to summer time
    ['acme/chart-30d', Array.from({ length: 30 }, (_, i) => i * 24 + 2), 'day', 30 * 24 - 1, 33 * 24],
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
    const broken = await page.$$eval(':is(#totals, #time-groups, #epochs, #events) :is(th, td:not(.hash-cell))', (els) =>
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

describe.skipIf(!browserPath)('usage page: time zones', () => {
  // Around the start of daylight saving in Los Angeles (2026-03-08 02:00 PST = 10:00Z): each
  // zone cuts these into different days. Units are powers of two, so a sum names its events.
  const DST_EVENTS = [
    ['2026-03-07T20:00:00Z', 1], // LA 03-07 12:00 · Kolkata 03-08 01:30
    ['2026-03-08T07:30:00Z', 2], // LA 03-07 23:30 · Kolkata 03-08 13:00
    ['2026-03-08T12:00:00Z', 4], // LA 03-08 05:00 PDT · Kolkata 03-08 17:30
    ['2026-03-09T06:30:00Z', 8], // LA 03-08 23:30 PDT · Kolkata 03-09 12:00
    ['2026-03-09T18:00:00Z', 16], // LA 03-09 11:00 · Kolkata 03-09 23:30
  ] as const;
  const groups = (page: Page) =>
    page.$$eval('#time-groups tbody tr', (rows) =>
      rows.map((r) => [(r as HTMLElement).dataset.key, ...[...r.querySelectorAll('td')].slice(0, 3).map((td) => td.textContent)]),
    );
  /** Types a zone into the Time zone field, as a user picking from its list does. */
  const pickZone = async (page: Page, zone: string) => {
    await page.fill('#tz', zone);
    await page.dispatchEvent('#tz', 'change');
  };
  /** Waits for the time groups of `zone` (the table title names it) and returns them. */
  const groupsIn = async (page: Page, zone: string) => {
    await page.waitForFunction((z) => document.querySelector('#groups-title')?.textContent?.includes(`(${z})`), zone);
    return groups(page);
  };

  // A server of its own, whose accepted event age reaches back to March 2026.
  let tzs: TestServer;
  let at: { origin: string; key: string };
  beforeAll(async () => {
    if (!browserPath) return;
    tzs = await testServer({ web: { dir: WEB }, maxEventAgeMs: Date.now() - Date.parse('2026-01-01T00:00:00Z') });
    at = { origin: await listen(tzs), key: tzs.key };
    const res = await tzs.post({ events: DST_EVENTS.map(([ts, units]) => event({ namespace: 'acme/dst', units, ts: Date.parse(ts) })) });
    expect(res.json().results.map((r: { status: string }) => r.status)).toEqual(DST_EVENTS.map(() => 'created'));
  });
  afterAll(async () => {
    await tzs?.close();
  });

  it('shows the days of the browser zone (a 23-hour DST day in Los Angeles), switches to Asia/Kolkata, and keeps that choice over a reload', async () => {
    const page = await open('/usage', { timezoneId: 'America/Los_Angeles', server: at });
    const sent: URL[] = [];
    page.on('request', (r) => r.url().includes('/v1/usage?') && sent.push(new URL(r.url())));
    expect(await page.inputValue('#tz')).toBe('America/Los_Angeles');
    expect(await page.inputValue('#group-by')).toBe('auto');
    await page.selectOption('#group-by', 'day');
    await page.fill('#from', '2026-03-07T00:00');
    await page.fill('#to', '2026-03-10T00:00');
    await showUsage(page, 'acme/dst');
    // No audit has run: its progress bar is not shown (the hidden attribute wins over its CSS).
    expect(await page.isVisible('#audit-run')).toBe(false);
    // The range typed is read in the zone: LA midnights.
    const timed = sent.filter((u) => u.searchParams.get('group_by') === 'day');
    expect(timed.length).toBeGreaterThanOrEqual(1);
    expect(timed[0]!.searchParams.get('tz')).toBe('America/Los_Angeles');
    expect(timed[0]!.searchParams.get('from')).toBe(String(Date.parse('2026-03-07T08:00:00Z')));
    expect(timed[0]!.searchParams.get('to')).toBe(String(Date.parse('2026-03-10T07:00:00Z')));
    expect(await groupsIn(page, 'America/Los_Angeles')).toEqual([
      ['2026-03-07T00:00:00-08:00', '2026-03-07 (UTC-08:00)', '2', '3'],
      ['2026-03-08T00:00:00-08:00', '2026-03-08 (UTC-08:00) · 23 h', '2', '12'],
      ['2026-03-09T00:00:00-07:00', '2026-03-09 (UTC-07:00)', '1', '16'],
    ]);
    expect(await page.textContent('#zone-note')).toMatch(/time zone: America\/Los_Angeles \(UTC-0[78]:00 now\), this browser's own/);
    expect(await page.textContent('#chart-title')).toBe('Units per day');
    const chart = await page.$eval('#chart', (e) => ({ ...(e as HTMLElement).dataset }));
    expect(chart).toMatchObject({ bucket: 'day', tz: 'America/Los_Angeles', bars: '3' });
    expect(Number(chart.xMin)).toBe(Date.parse('2026-03-07T08:00:00Z'));
    await page.screenshot({ path: `${SHOTS}/usage-los-angeles-dst.png`, fullPage: true });

    // Another zone: other days, other sums, labelled in that zone whatever the browser's is.
    await page.fill('#from', '');
    await page.fill('#to', '');
    await pickZone(page, 'Asia/Kolkata');
    expect(await groupsIn(page, 'Asia/Kolkata')).toEqual([
      ['2026-03-08T00:00:00+05:30', '2026-03-08 (UTC+05:30)', '3', '7'],
      ['2026-03-09T00:00:00+05:30', '2026-03-09 (UTC+05:30)', '2', '24'],
    ]);
    expect(
      sent
        .filter((u) => u.searchParams.get('group_by') === 'day')
        .at(-1)!
        .searchParams.get('tz'),
    ).toBe('Asia/Kolkata');
    expect(await page.textContent('#zone-note')).toMatch(
      /time zone: Asia\/Kolkata \(UTC\+05:30 now\); this browser's own is America\/Los_Angeles/,
    );

    // Remembered for this server: the page opened again (a new tab of this browser) is in Kolkata.
    const again = await open('/usage', { context: page.context(), server: at });
    expect(await again.inputValue('#tz')).toBe('Asia/Kolkata');
    await showUsage(again, 'acme/dst');
    expect(await groupsIn(again, 'Asia/Kolkata')).toEqual([
      ['2026-03-08T00:00:00+05:30', '2026-03-08 (UTC+05:30)', '3', '7'],
      ['2026-03-09T00:00:00+05:30', '2026-03-09 (UTC+05:30)', '2', '24'],
    ]);
    await again.selectOption('#group-by', 'month');
    await again.waitForFunction(() =>
      document.querySelector('#time-groups tbody tr')?.getAttribute('data-key')?.endsWith('-01T00:00:00+05:30'),
    );
    expect(await groups(again)).toEqual([['2026-03-01T00:00:00+05:30', '2026-03 (UTC+05:30)', '5', '31']]);
    await again.close();
    await page.close();
  });

  it('with hour groups, lists the local hours of the zone, and the events in its local time', async () => {
    const page = await open('/usage', { timezoneId: 'Europe/Berlin', server: at });
    await pickZone(page, 'America/Los_Angeles');
    await page.selectOption('#group-by', 'hour');
    await page.fill('#from', '2026-03-08T00:00');
    await page.fill('#to', '2026-03-08T06:00');
    await showUsage(page, 'acme/dst');
    // 02:00 does not exist that night: 00:00 to 06:00 is five hours, the one event at 05:00 PDT.
    expect(await groupsIn(page, 'America/Los_Angeles')).toEqual([['2026-03-08T05:00:00-07:00', '2026-03-08 05:00 (UTC-07:00)', '1', '4']]);
    const chart = await page.$eval('#chart', (e) => ({ ...(e as HTMLElement).dataset }));
    expect(chart).toMatchObject({ bucket: 'hour', bars: '5' });
    expect(await cells(page, 'events')).toContainEqual(expect.arrayContaining(['4', '2026-03-08 05:00:00']));
    await page.close();
  });

  it('falls back to UTC, and says so, when the zone saved for this server is not one the browser knows', async () => {
    const page = await open('/usage', { timezoneId: 'America/Los_Angeles', server: at });
    await page.evaluate((o) => localStorage.setItem(`receipts-tz ${o}`, 'Mars/Olympus_Mons'), at.origin);
    await page.reload();
    await page.selectOption('#group-by', 'day');
    await page.fill('#from', '2026-03-07T00:00');
    await page.fill('#to', '2026-03-10T00:00');
    await showUsage(page, 'acme/dst');
    expect(await page.isVisible('#zone-problem')).toBe(true);
    expect(await page.textContent('#zone-problem')).toMatch(/"Mars\/Olympus_Mons", is not one this browser knows: showing UTC/);
    expect(await page.inputValue('#tz')).toBe('UTC');
    // UTC keys exactly as the API has always given them.
    expect(await groupsIn(page, 'UTC')).toEqual([
      ['2026-03-07T00:00:00.000Z', '2026-03-07 (UTC+00:00)', '1', '1'],
      ['2026-03-08T00:00:00.000Z', '2026-03-08 (UTC+00:00)', '2', '6'],
      ['2026-03-09T00:00:00.000Z', '2026-03-09 (UTC+00:00)', '2', '24'],
    ]);
    // A name that is not a zone is refused beside the field; the page stays in UTC.
    await pickZone(page, 'Not/AZone');
    expect(await page.textContent('#zone-problem')).toMatch(/"Not\/AZone" is not a time zone this browser knows .*: still showing UTC/);
    expect(await page.getAttribute('#tz', 'aria-invalid')).toBe('true');
    // Choosing a zone replaces the bad one and the warning goes.
    await pickZone(page, 'Asia/Kolkata');
    await groupsIn(page, 'Asia/Kolkata');
    expect(await page.isVisible('#zone-problem')).toBe(false);
    expect(await page.evaluate((o) => localStorage.getItem(`receipts-tz ${o}`), at.origin)).toBe('Asia/Kolkata');
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
    await sealAll(s.ledger, { maxEvents: 1000, log });
    await page.waitForSelector('#verdict[data-ok="true"]', { timeout: 15_000 });
    expect(await page.textContent('#verdict')).toMatch(/^Signed by the log key .*: leaf/);
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

describe.skipIf(!browserPath)('what a result is checked against', () => {
  // A server with a log key and no anchoring, and one with neither (the default without flags).
  const KEY_A = generateSigningKey('receipts.test/signed');
  let signed: TestServer;
  let signedAt: { origin: string; key: string };
  let signedIds: number[];

  const serveSigned = async (key: SigningKey, port = 0) => {
    const server = await testServer({ web: { dir: WEB }, logKey: key });
    await server.app.listen({ host: '127.0.0.1', port });
    const at = { origin: `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`, key: server.key };
    const posted = await server.post({ events: Array.from({ length: 5 }, (_, i) => event({ namespace: 'acme/trust', units: i + 1 })) });
    await sealAll(server.ledger, { maxEvents: 2, log: logSigner(key) });
    return { server, at, ids: (posted.json().results as Array<{ id: number }>).map((r) => r.id) };
  };

  beforeAll(async () => {
    if (!browserPath) return;
    ({ server: signed, at: signedAt, ids: signedIds } = await serveSigned(KEY_A));
  });
  afterAll(async () => {
    await signed?.close();
  });

  /** The proof bundle of an event, with cosignature lines of `witnesses` added to its checkpoint. */
  async function cosignedBundle(id: number, witnesses: SigningKey[]) {
    const bundle = (await signed.get(`/v1/events/${id}/proof`)).json();
    const { text, signatures } = splitNote(bundle.checkpoint);
    return {
      ...bundle,
      checkpoint: signNote(
        text,
        witnesses.map((w) => cosigner(w)),
        signatures,
      ),
    };
  }

  const verdictLook = (page: Page) =>
    page.$eval('#verdict', (e) => ({
      trust: e.getAttribute('data-trust'),
      className: e.className,
      background: getComputedStyle(e).backgroundColor,
      border: getComputedStyle(e).borderStyle,
      text: e.textContent ?? '',
    }));

  it('says it in words and colours: the server’s own root only (amber), the log key, K witnesses, Sui — each different', async () => {
    const looks: Array<Awaited<ReturnType<typeof verdictLook>>> = [];

    // 1. A server that keeps no signed log: the receipt matches the server's own root only.
    const unsigned = await testServer({ web: { dir: WEB } });
    try {
      const at = { origin: await listen(unsigned), key: unsigned.key };
      const [r] = (await unsigned.post(event({ namespace: 'acme/trust' }))).json().results;
      await sealAll(unsigned.ledger, { maxEvents: 10 });
      const page = await open(`/verify?event=${r.id}`, { server: at });
      await page.waitForSelector('#verdict[data-ok="true"]');
      const look = await verdictLook(page);
      expect(look.trust).toBe('server-root');
      expect(look.className).toBe('server-only');
      expect(look.text).toMatch(
        /^Matches the server's own root only: leaf 0 of 1 in epoch 0 .* Nothing outside this server vouches for that root\./,
      );
      expect(look.text).not.toMatch(/valid/i);
      expect(await page.textContent('#log-key-status')).toMatch(/keeps no signed epoch log/);
      expect(
        await page.$$eval('#checked-against li', (lis) =>
          lis.map((li) => [li.getAttribute('data-basis'), li.getAttribute('data-checked')]),
        ),
      ).toEqual([
        ['server-root', 'true'],
        ['log-key', 'false'],
        ['witnesses', 'false'],
        ['sui', 'false'],
      ]);
      await page.screenshot({ path: `${SHOTS}/verify-server-root-only.png`, fullPage: true });
      looks.push(look);
      await page.close();
    } finally {
      await unsigned.close();
    }

    // 2. A proof bundle under a checkpoint signed by the log key pinned on first sight.
    const page = await open(`/verify?event=${signedIds[2]}`, { server: signedAt });
    await page.waitForSelector('#verdict[data-ok="true"]');
    const logSigned = await verdictLook(page);
    expect(logSigned.trust).toBe('log-key');
    expect(logSigned.className).toBe('ok');
    expect(logSigned.text).toMatch(new RegExp(`^Signed by the log key ${literal(verifierKeyOf(KEY_A))}: leaf 0 of 2 in epoch 1 `));
    expect(await page.textContent('#log-key-status')).toContain(verifierKeyOf(KEY_A));
    expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('receipts-log-key')))).toEqual([
      `receipts-log-key ${signedAt.origin}`,
    ]);
    looks.push(logSigned);

    // 3. Cosigned: two of the three witnesses given cosigned the checkpoint (one key given as
    // type 0x04, one as the 0x01 key `signing-key create` prints); a bad line is named.
    const [w1, w2, w3] = ['witness.one/w', 'witness.two/w', 'witness.three/w'].map((n) => generateSigningKey(n)) as [
      SigningKey,
      SigningKey,
      SigningKey,
    ];
    await page.click('#trust-settings summary');
    await page.fill(
      '#witness-keys',
      [formatVerifierKey(cosignerVerifierOf(w1)), verifierKeyOf(w2), verifierKeyOf(w3), 'not-a-key'].join('\n'),
    );
    await page.dispatchEvent('#witness-keys', 'change');
    expect(await page.textContent('#witness-problems')).toMatch(/^Not used: line 4: verifier key must be name\+hex8\+base64/);
    await page.fill('#receipt-input', JSON.stringify(await cosignedBundle(signedIds[2]!, [w1, w2])));
    await page.click('#verify-button');
    await page.waitForSelector('#verdict[data-trust="log-key witnesses"]');
    const witnessed = await verdictLook(page);
    expect(witnessed.className).toBe('ok');
    expect(witnessed.text).toMatch(
      new RegExp(
        `^Signed and cosigned by 2 witnesses \\(the log key ${literal(verifierKeyOf(KEY_A))} signed; witness.one/w, witness.two/w cosigned\\): leaf 0 of 2 in epoch 1 `,
      ),
    );
    expect(await page.textContent('#checked-against li[data-basis="witnesses"]')).toBe(
      '✓ Cosigned by 2 of the 3 witnesses given (witness.one/w, witness.two/w).',
    );
    await page.screenshot({ path: `${SHOTS}/verify-witnessed.png`, fullPage: true });
    looks.push(witnessed);

    // A cosignature line by a witness given that does not verify: the checkpoint is refused, in red.
    const forged = await cosignedBundle(signedIds[2]!, [w1]);
    forged.checkpoint = forged.checkpoint.replace(
      /(— witness\.one\/w \S{10})(\S)/,
      (_m: string, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`,
    );
    await page.fill('#receipt-input', JSON.stringify(forged));
    await page.click('#verify-button');
    await page.waitForSelector('#verdict[data-ok="false"]');
    expect(await page.getAttribute('#verdict', 'data-code')).toBe('bad_checkpoint');
    expect(await page.getAttribute('#verdict', 'data-failed-step')).toBe('checkpoint');
    await page.close();

    // 4. Anchored on Sui (the main server anchors on its test chain and signs its log too).
    const anchored = await open(`/verify?event=${ids[1]}`);
    await anchored.waitForSelector('#verdict[data-trust~="sui"]');
    looks.push(await verdictLook(anchored));
    await anchored.close();

    // Each state has its own words; the server's own root only looks different from all the others.
    const headlines = looks.map((l) =>
      l.text
        .split(':')[0]!
        .replace(/log key [^\s,]+/, 'log key K')
        .replace(/\(.*\)/, '(…)'),
    );
    expect(headlines).toEqual([
      "Matches the server's own root only",
      'Signed by the log key K',
      'Signed and cosigned by 2 witnesses (…)',
      'Signed by the log key K, and anchored on Sui',
    ]);
    expect(looks[3]!.text).toMatch(/^Signed by the log key \S+, and anchored on Sui: /);
    expect(new Set(looks.map((l) => l.trust)).size).toBe(4);
    expect(looks[0]!.background).not.toBe(looks[1]!.background);
    expect(looks[0]!.border).toBe('dashed');
    expect(looks.slice(1).map((l) => l.border)).toEqual(['solid', 'solid', 'solid']);
  });

  it('pins the log key on first sight and, when the server names another, warns in red and shows nothing as signed', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    try {
      // Seen once with key A: pinned.
      const first = await serveSigned(KEY_A);
      const port = Number(new URL(first.at.origin).port);
      let page = await open(`/verify?event=${first.ids[0]}`, { server: first.at, context });
      await page.waitForSelector('#verdict[data-trust="log-key"]');
      expect(await page.evaluate((k) => localStorage.getItem(k), `receipts-log-key ${first.at.origin}`)).toContain(verifierKeyOf(KEY_A));
      await page.close();
      await first.server.close();

      // The same server address now signs with key B.
      const KEY_B = generateSigningKey('receipts.test/signed');
      const second = await serveSigned(KEY_B, port);
      try {
        page = await open(`/verify?event=${second.ids[0]}`, { server: second.at, context });
        await page.waitForSelector('#key-warning:not([hidden])');
        await page.waitForSelector('#verdict[data-ok="true"]');
        const warning = (await page.textContent('#key-warning'))!;
        expect(warning).toMatch(/^Warning: this server's log key has changed\. Results are not shown as signed\./);
        expect(warning).toContain(verifierKeyOf(KEY_A));
        expect(warning).toContain(verifierKeyOf(KEY_B));
        expect(warning).toMatch(/ask the operator, through a channel other than this page/);
        expect(await page.$eval('#key-warning', (e) => getComputedStyle(e).backgroundColor)).toBe(
          await page.$eval('#verdict', () => {
            const probe = document.createElement('div');
            probe.className = 'bad';
            document.body.append(probe);
            const c = getComputedStyle(probe).backgroundColor;
            probe.remove();
            return c;
          }),
        );
        // Not shown as signed: the server's own root only, and why.
        expect(await page.getAttribute('#verdict', 'data-trust')).toBe('server-root');
        expect(await page.textContent('#checked-against li[data-basis="log-key"]')).toMatch(/the server's log key changed/);
        expect(await page.textContent('#log-key-status')).toContain(verifierKeyOf(KEY_A));
        await page.screenshot({ path: `${SHOTS}/verify-key-changed.png`, fullPage: true });

        // The pin stays across a reload until the user decides.
        await page.reload();
        await page.waitForSelector('#key-warning:not([hidden])');

        // Told out of band that B is the new key: trust it, and the result is signed by B.
        await page.fill('#event-id', String(second.ids[0]));
        await page.click('#fetch-receipt');
        await page.waitForSelector('#verdict[data-ok="true"]');
        await page.click('#trust-new-key');
        await page.waitForSelector('#key-warning[hidden]', { state: 'attached' });
        await page.waitForSelector('#verdict[data-trust="log-key"]');
        expect(await page.textContent('#verdict')).toMatch(new RegExp(`^Signed by the log key ${literal(verifierKeyOf(KEY_B))}: `));
        await page.close();
      } finally {
        await second.server.close();
      }
    } finally {
      await context.close();
    }
  });
});

describe.skipIf(!browserPath)('usage page: audit this period', () => {
  it('checks every receipt in the browser with a progress bar, shows the recomputed totals beside the server’s, and catches a tampered event', async () => {
    const key = generateSigningKey('receipts.test/audit');
    const server = await testServer({ web: { dir: WEB }, logKey: key });
    try {
      const at = { origin: await listen(server), key: server.key };
      const now = Date.now();
      const posted = await server.post({
        events: Array.from({ length: 7 }, (_, i) => event({ namespace: 'acme/audit', units: i + 1, ts: now - (7 - i) * 60_000 })),
      });
      await sealAll(server.ledger, { maxEvents: 3, log: logSigner(key) });
      const page = await open('/usage', { server: at });
      await showUsage(page, 'acme/audit');
      await page.click('#audit-button');
      await page.waitForSelector('#audit-result[data-state="backed"]');
      expect(await page.textContent('#audit-result')).toMatch(
        new RegExp(
          `^Every unit is backed: 7 events, 28 units \\(\\d+ billable\\) in 3 epochs, 1 checkpoint; checked against checkpoints signed by the log key ${literal(verifierKeyOf(key))}\\.`,
        ),
      );
      expect(await page.getAttribute('#audit-result', 'class')).toBe('ok');
      expect(await page.$eval('#audit-progress', (e) => [(e as HTMLProgressElement).value, (e as HTMLProgressElement).max])).toEqual([
        7, 7,
      ]);
      expect(await page.textContent('#audit-count')).toBe('7 receipts checked (1 page)');
      const totals = await cells(page, 'audit-totals');
      expect(totals.slice(0, 2)).toEqual([
        ['Events', '7', '7', '✓ matches'],
        ['Units', '28', '28', '✓ matches'],
      ]);
      expect(totals.every((r) => r[3] === '✓ matches')).toBe(true);
      await page.screenshot({ path: `${SHOTS}/usage-audit.png`, fullPage: true });

      // The server's stored event changes after it was sealed: the audit names it.
      const id = (posted.json().results as Array<{ id: number }>)[3]!.id;
      await server.sql('UPDATE events SET units = units + 100 WHERE id = ?', id);
      await page.click('#audit-button');
      await page.waitForSelector('#audit-result[data-state="problems"]');
      expect(await page.getAttribute('#audit-result', 'class')).toBe('bad');
      expect(await page.$$eval('#audit-problems li', (lis) => lis.map((li) => li.getAttribute('data-code')))).toContain('tampered_event');
      await page.screenshot({ path: `${SHOTS}/usage-audit-tampered.png`, fullPage: true });
      await page.close();
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(!browserPath)('usage page: audit without a signed log', () => {
  it("says in amber that only the server's own roots were checked, not that every unit is backed", async () => {
    const server = await testServer({ web: { dir: WEB } });
    try {
      const at = { origin: await listen(server), key: server.key };
      await server.post({ events: Array.from({ length: 3 }, () => event({ namespace: 'acme/nolog', units: 2 })) });
      await sealAll(server.ledger, { maxEvents: 10 });
      const page = await open('/usage', { server: at });
      await showUsage(page, 'acme/nolog');
      await page.click('#audit-button');
      await page.waitForSelector('#audit-result[data-state="server-only"]');
      expect(await page.getAttribute('#audit-result', 'class')).toBe('server-only');
      const text = (await page.textContent('#audit-result'))!;
      expect(text).toMatch(/^Every receipt matches the server's own roots only, and the totals add up: 3 events, 6 units/);
      expect(text).toMatch(/nothing outside the server was checked/);
      expect(text).not.toMatch(/backed/);
      await page.close();
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(!browserPath)('usage page: your events per epoch', () => {
  it("counts the customer's own events in each epoch, not the epoch's size, and marks an epoch counted in part", async () => {
    const own = await testServer({ web: { dir: WEB } });
    try {
      const at = { origin: await listen(own), key: own.key };
      const now = Date.now();
      // 90 events, every third another customer's: 60 of acme/mine, epochs of 4 (the last of 2).
      const mine = (i: number) => i % 3 !== 0;
      await own.post({
        events: Array.from({ length: 90 }, (_, i) =>
          event({ namespace: mine(i) ? 'acme/mine' : 'acme/theirs', ts: now - (90 - i) * 60_000 }),
        ),
      });
      await sealAll(own.ledger, { maxEvents: 4 });
      await own.post(event({ namespace: 'acme/mine', ts: now })); // not sealed yet
      const page = await open('/usage', { server: at });
      await showUsage(page, 'acme/mine');
      // The 50 newest of acme/mine: the pending one and 49 sealed, i = 17 … 89; epoch 4 (i = 16 … 19) is counted in part.
      const newest = Array.from({ length: 90 }, (_, i) => i)
        .filter(mine)
        .slice(-49);
      const perEpoch = new Map<number, number>();
      for (const i of newest) perEpoch.set(Math.floor(i / 4), (perEpoch.get(Math.floor(i / 4)) ?? 0) + 1);
      const oldest = Math.min(...perEpoch.keys());
      const expected = [
        ['–', '1', 'not sealed yet'],
        ...[...perEpoch].reverse().map(([epoch, n]) => [String(epoch), epoch === oldest ? `≥ ${n}` : String(n), 'sealed']),
      ];
      expect((await cells(page, 'epochs')).map((r) => r.slice(0, 3))).toEqual(expected);
      // Not the epoch's size: a full epoch of 4 holds 2 or 3 of acme/mine.
      expect(expected.slice(1, -1).map((r) => r[1])).not.toContain('4');
      expect(await page.textContent('#epochs-note')).toMatch(/counted from the 50 newest events of this range/);
      await page.screenshot({ path: `${SHOTS}/usage-own-epochs.png`, fullPage: true });
      await page.close();
    } finally {
      await own.close();
    }
  });
});

describe.skipIf(!browserPath)('the whole session', () => {
  it('had no console errors and made no request outside the service', () => {
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
