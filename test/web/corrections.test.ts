// The verify page shows a corrected event's chain in a real browser (Chromium), every version's
// receipt verified there and each link checked: the correction's `corrects` is the leaf hash
// rebuilt from the version before. A version whose stored fields were altered breaks its link.
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealAll } from '../../src/seal/sealer.ts';
import { buildWeb } from '../../src/web/build.ts';
import { browserForTests } from '../browser.ts';
import { event, testServer, type TestServer } from '../helpers.ts';

const browserPath = browserForTests();
const WEB = resolve('test-output/web-dist-corrections');

let s: TestServer;
let browser: Browser;
let origin: string;
const errors: string[] = [];

async function correct(target: number, kind: 'void' | 'amend', requestId: string, changes?: { units?: number }) {
  const [r] = await s.ledger.events.correct([
    {
      kind,
      target: { id: target },
      request_id: requestId,
      ...(changes && { changes }),
      owner: 'acme-inc',
      keyId: s.keyId,
      notBeforeMs: 0,
      receivedAtMs: Date.now(),
    },
  ]);
  if (r?.status !== 'created') throw new Error(JSON.stringify(r));
  return r.id;
}

beforeAll(async () => {
  if (!browserPath) return;
  await buildWeb(WEB);
  s = await testServer({ web: { dir: WEB } });
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
  browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
});

afterAll(async () => {
  await browser?.close();
  await s?.close();
});

async function open(path: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${origin}/verify`);
  await page.fill('#api-key', s.key);
  await page.dispatchEvent('#api-key', 'change');
  await page.goto(`${origin}${path}`);
  return page;
}

const versions = (page: Page) =>
  page.$$eval('#chain-versions > li', (lis) =>
    lis.map((li) => ({ id: Number(li.getAttribute('data-version-id')), proof: li.dataset.proof, link: li.dataset.link ?? null })),
  );

describe.skipIf(!browserPath)('the verify page and corrections', () => {
  it("shows a corrected event's chain, each version verified and each link checked, a pending void included", async () => {
    const [a] = (await s.post(event({ namespace: 'acme/web', units: 3 }))).json().results;
    const b = await correct(a.id, 'amend', `${a.request_id}-amend`, { units: 5 });
    await sealAll(s.ledger, { maxEvents: 100 });
    const c = await correct(b, 'void', `${a.request_id}-void`); // not sealed yet

    for (const from of [a.id, b, c]) {
      const page = await open(`/verify?event=${from}`);
      await page.waitForSelector('#correction-chain[data-ok]');
      expect(await page.getAttribute('#correction-chain', 'data-ok')).toBe('true');
      expect(await versions(page)).toEqual([
        { id: a.id, proof: 'ok', link: null },
        { id: b, proof: 'ok', link: 'ok' },
        { id: c, proof: 'pending', link: 'ok' },
      ]);
      const text = await page.textContent('#correction-chain');
      expect(text).toMatch(new RegExp(`Event ${a.id} has 3 versions; the current one is ${c}, a void: it counts nothing in totals`));
      expect(text).toContain(`✓ corrects ${a.id}: its corrects is the leaf hash rebuilt from that version's fields`);
      await page.close();
    }
    // A receipt of an event never corrected shows no chain.
    const [plain] = (await s.post(event({ namespace: 'acme/web' }))).json().results;
    const page = await open(`/verify?event=${plain.id}`);
    await page.waitForSelector('#verdict[data-ok]');
    expect(await page.textContent('#correction-chain')).toBe('');
    await page.close();
    expect(errors).toEqual([]);
  });

  it('the usage view marks corrections and corrected versions among the latest events', async () => {
    const [a] = (await s.post(event({ namespace: 'acme/marks', units: 2 }))).json().results;
    const b = await correct(a.id, 'amend', `${a.request_id}-amend`, { units: 6 });
    const page = await open('/usage');
    await page.fill('#namespace', 'acme/marks');
    await page.click('#usage-form button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#usage-status')?.textContent?.includes('units in acme/marks'));
    const rows = await page.$$eval('#events tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    const byId = new Map(rows.map((r) => [Number(r[0]), r]));
    expect(byId.get(a.id)?.[1]).toBe(`recall (amended by ${b})`);
    expect(byId.get(b)?.[1]).toBe('recall (amend)');
    expect(byId.get(b)?.[3]).toBe('6');
    await page.close();
  });

  it('a version altered in storage breaks its own proof and the link of the correction after it', async () => {
    const [a] = (await s.post(event({ namespace: 'acme/web', units: 4 }))).json().results;
    const b = await correct(a.id, 'amend', `${a.request_id}-amend`, { units: 1 });
    await sealAll(s.ledger, { maxEvents: 100 });
    s.db().prepare('UPDATE events SET units = 40 WHERE seq = ?').run(a.id);
    const page = await open(`/verify?event=${b}`);
    await page.waitForSelector('#correction-chain[data-ok]');
    expect(await page.getAttribute('#correction-chain', 'data-ok')).toBe('false');
    expect(await versions(page)).toEqual([
      { id: a.id, proof: 'bad', link: null },
      { id: b, proof: 'ok', link: 'bad' },
    ]);
    expect(await page.textContent(`#chain-versions > li[data-version-id="${b}"]`)).toMatch(
      new RegExp(`✗ does not correct ${a.id}: corrects is [0-9a-f]{64}, but the corrected receipt's event hashes to [0-9a-f]{64}`),
    );
    await page.close();
  });
});
