// GET /v1/usage?group_by=caller answers in bounded memory, whatever the number of callers. Before
// groups were paged, 300,000 distinct callers made a server with a small heap run out of memory
// (every tenant down): here a real `receipts serve` with --max-old-space-size=64.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteLedger, type EventToWrite } from '../../src/ledger/index.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { tempDir } from '../helpers.ts';
import { serve, type Served } from '../cli/run.ts';

const CALLERS = 300_000;

describe('usage groups in bounded memory (a real server, 64 MB of heap)', () => {
  const t = tempDir();
  const file = join(t.dir, 'receipts.db');
  let key = '';
  let server: Served | undefined;

  beforeAll(async () => {
    const ledger = new SqliteLedger(file, { synchronous: 'normal' });
    key = (await ledger.keys.create('acme-inc', ['acme/*'])).key;
    const now = Date.now();
    for (let done = 0; done < CALLERS; done += 10_000) {
      const items: EventToWrite[] = [];
      for (let i = done; i < done + 10_000; i++) {
        const v = validateEvent(
          {
            request_id: `r-${i}`,
            namespace: 'acme/prod',
            action: 'recall',
            caller: `caller-${String(i).padStart(7, '0')}`,
            units: 2,
            ts: now - 1000,
          },
          { now, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
        );
        if (!v.ok) throw new Error(JSON.stringify(v.errors));
        items.push({ event: v.event, owner: 'acme-inc', keyId: 'abcdefabcdef' });
      }
      const results = await ledger.events.write(items);
      expect(results.every((r) => r.status === 'created')).toBe(true);
    }
    await ledger.close();
    server = await serve(['--db', file], { NODE_OPTIONS: '--max-old-space-size=64' });
  }, 300_000);

  afterAll(async () => {
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) {
      server.proc.kill('SIGTERM');
      await server.exited;
    }
    t.cleanup();
  });

  const get = async (q: string) => {
    const res = await fetch(`${server!.url}/v1/usage?${q}`, { headers: { authorization: `Bearer ${key}` } });
    const text = await res.text();
    return { status: res.status, bytes: text.length, body: JSON.parse(text) };
  };

  it(`answers group_by=caller over ${CALLERS.toLocaleString('en')} callers a page at a time, and all pages add up to the totals`, async () => {
    const first = await get('namespace=acme/prod&group_by=caller');
    expect(first.status).toBe(200);
    // The default page: 1,000 groups, exact totals of the whole range, and where to go on.
    expect(first.body.groups).toHaveLength(1000);
    expect(first.bytes).toBeLessThan(200_000);
    expect(first.body.totals).toEqual({ events: CALLERS, units: 2 * CALLERS, billable_events: CALLERS, billable_units: 2 * CALLERS });
    expect(first.body.next_cursor).toEqual(expect.any(String));

    // Every page, at the largest size: every caller once, in order, summing to the totals.
    let cursor: string | null = null;
    let groups = 0;
    let events = 0;
    let previous = '';
    do {
      const page = await get(`namespace=acme/prod&group_by=caller&limit=10000${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.groups.length).toBeLessThanOrEqual(10_000);
      expect(page.body.totals.events).toBe(CALLERS);
      for (const g of page.body.groups as Array<{ key: string; events: number }>) {
        expect(g.key > previous).toBe(true);
        previous = g.key;
        events += g.events;
      }
      groups += page.body.groups.length;
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(groups).toBe(CALLERS);
    expect(events).toBe(CALLERS);
    // The server is still there for every other tenant.
    expect(server!.proc.exitCode).toBeNull();
    expect(server!.proc.signalCode).toBeNull();
    expect((await fetch(`${server!.url}/healthz`)).status).toBe(200);
  }, 300_000);
});
