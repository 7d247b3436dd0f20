// The spool's storage failing under a running client, for real: a full disk (a tiny tmpfs) and
// rows that are not events (garbage written into the SQLite file with better-sqlite3).
import { execFileSync } from 'node:child_process';
import { mkdirSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createUsageClient, type QueuedEvent, type Spool, type UsageClient } from '../../src/index.ts';
import { createSqliteSpool } from '../../src/client/spool.ts';
import { tempDir, testServer, type TestServer } from '../helpers.ts';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
const t = tempDir('receipts-spool-faults-');

/** Mounts a tmpfs of `size` at a fresh directory; null where mounting is not permitted (not root). */
const mounts: string[] = [];
function tinyDisk(size: string): string | null {
  const dir = join(t.dir, `disk-${mounts.length}`);
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return null;
  }
  mounts.push(dir);
  return dir;
}
const canMount = (() => {
  const dir = tinyDisk('64k');
  return dir !== null;
})();
if (!canMount) console.warn('spool-faults: SKIPPING the full-disk tests: mounting a tmpfs is not permitted here (run as root)');

/** Fills what is left of the disk; returns the filler to delete for room. */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
  } finally {
    closeSync(fd);
  }
  // The last partial blocks too.
  const small = openSync(join(dir, 'filler-tail'), 'w');
  try {
    for (;;) writeSync(small, Buffer.alloc(1));
  } catch {}
  closeSync(small);
  return file;
}

let s: TestServer | undefined;
let client: UsageClient | undefined;
afterEach(async () => {
  await client?.close({ timeoutMs: 0 });
  client = undefined;
  await s?.close();
  s = undefined;
});
afterAll(() => {
  for (const dir of mounts) execFileSync('umount', [dir]);
  t.cleanup();
});

async function service(): Promise<string> {
  s = await testServer();
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
}
const stored = (ns: string) => s!.db().prepare('SELECT units FROM events WHERE namespace = ? ORDER BY units').pluck().all(ns) as number[];
const ev = (ns: string, i: number) => ({ namespace: ns, action: 'recall', caller: 'c', units: i });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const spoolRows = (file: string, like: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM spool WHERE event LIKE ?').pluck().get(`%${like}%`) as number;
  } finally {
    db.close();
  }
};
const spoolErrors = (errors: Error[]) => errors.filter((e) => /spool/.test(e.message));

describe.skipIf(!canMount)('a full spool disk (tmpfs)', () => {
  it('delivers every event from memory, reports the failure once, and spools again once there is room', async () => {
    const url = await service();
    const disk = tinyDisk('256k')!;
    const file = join(disk, 'spool.db');
    const spool = createSqliteSpool(file);
    const filler = fill(disk);
    const errors: Error[] = [];
    const dropped: QueuedEvent[] = [];
    client = createUsageClient({
      url,
      apiKey: s!.key,
      spool,
      batchSize: 200,
      flushIntervalMs: 60_000,
      retry: { baseMs: 5, maxMs: 50 },
      onError: (e) => errors.push(e),
      onDropped: (d) => dropped.push(...d),
    });
    for (let i = 1; i <= 2000; i++) client.record(ev('acme/full', i));
    await client.flush();
    expect(stored('acme/full')).toEqual(range(1, 2000));
    expect(client.stats()).toMatchObject({ queued: 0, inFlight: 0, sent: 2000, dropped: 0, rejected: 0 });
    expect(dropped).toEqual([]);
    expect(spoolErrors(errors)).toHaveLength(1);
    expect(spoolErrors(errors)[0]!.message).toMatch(/spool could not write.*(full|SQLITE_FULL)/i);

    // Room again: after the retry interval the next event is spooled before record() returns.
    rmSync(filler);
    rmSync(join(disk, 'filler-tail'));
    await new Promise((r) => setTimeout(r, 1100));
    for (let i = 1; i <= 5; i++) client.record(ev('acme/again', i));
    expect(spoolRows(file, 'acme/again')).toBe(5);
    expect(spoolErrors(errors).map((e) => e.message)).toEqual([
      expect.stringMatching(/could not write/),
      expect.stringMatching(/spool works again/),
    ]);
    await client.flush();
    expect(stored('acme/again')).toEqual(range(1, 5));
    expect(spoolRows(file, 'acme/again')).toBe(0);
  });

  it('service down and disk full: the memory bound drops and reports; close() spools the rest once there is room', async () => {
    const disk = tinyDisk('256k')!;
    const file = join(disk, 'spool.db');
    const spool = createSqliteSpool(file);
    const filler2 = fill(disk);
    const errors: Error[] = [];
    const dropped: QueuedEvent[] = [];
    client = createUsageClient({
      url: 'http://127.0.0.1:1',
      apiKey: 'x',
      spool,
      maxQueue: 50,
      batchSize: 10,
      flushIntervalMs: 5,
      retry: { baseMs: 5, maxMs: 20 },
      onError: (e) => errors.push(e),
      onDropped: (d) => dropped.push(...d),
    });
    for (let i = 1; i <= 200; i++) client.record(ev('acme/down', i));
    const held = client.stats().queued + client.stats().inFlight;
    expect(held).toBe(50);
    expect(client.stats().dropped).toBe(150);
    expect(dropped.map((e) => e.units)).toEqual(range(1, 150));
    expect(spoolErrors(errors)).toHaveLength(1);

    // The disk has room again by the time the app shuts down: the 50 held in memory go to the spool.
    rmSync(filler2);
    rmSync(join(disk, 'filler-tail'));
    await client.close({ timeoutMs: 0 });
    client = undefined;
    expect(dropped).toHaveLength(150);
    expect(spoolRows(file, 'acme/down')).toBe(50);

    // The next run delivers them.
    const url = await service();
    client = createUsageClient({ url, apiKey: s!.key, spool: createSqliteSpool(file), flushIntervalMs: 5 });
    await client.close();
    client = undefined;
    expect(stored('acme/down')).toEqual(range(151, 200));
  });

  it('service down: once the disk has room, the next record() spools what memory held meanwhile, in order', async () => {
    const disk = tinyDisk('256k')!;
    const file = join(disk, 'spool.db');
    const spool = createSqliteSpool(file);
    const filler = fill(disk);
    const errors: Error[] = [];
    client = createUsageClient({
      url: 'http://127.0.0.1:1',
      apiKey: 'x',
      spool,
      flushIntervalMs: 5,
      retry: { baseMs: 5, maxMs: 20 },
      onError: (e) => errors.push(e),
    });
    for (let i = 1; i <= 30; i++) client.record(ev('acme/held', i));
    expect(spoolRows(file, 'acme/held')).toBe(0);
    rmSync(filler);
    rmSync(join(disk, 'filler-tail'));
    client.record(ev('acme/held', 31)); // within the retry interval: still held in memory
    expect(spoolRows(file, 'acme/held')).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    client.record(ev('acme/held', 32));
    const db = new Database(file, { readonly: true });
    const units = (db.prepare("SELECT event FROM spool WHERE event LIKE '%acme/held%' ORDER BY seq").pluck().all() as string[]).map(
      (j) => JSON.parse(j).units,
    );
    db.close();
    expect(units).toEqual(range(1, 32));
    expect(spoolErrors(errors).map((e) => e.message)).toEqual([
      expect.stringMatching(/could not write/),
      expect.stringMatching(/spool works again/),
    ]);
  });

  it('service down, disk still full at close(): what memory held is dropped and reported, not lost silently', async () => {
    const disk = tinyDisk('256k')!;
    const file = join(disk, 'spool.db');
    const spool = createSqliteSpool(file);
    fill(disk);
    const dropped: QueuedEvent[] = [];
    const errors: Error[] = [];
    const c = createUsageClient({
      url: 'http://127.0.0.1:1',
      apiKey: 'x',
      spool,
      maxQueue: 50,
      flushIntervalMs: 5,
      retry: { baseMs: 5, maxMs: 20 },
      onError: (e) => errors.push(e),
      onDropped: (d) => dropped.push(...d),
    });
    for (let i = 1; i <= 80; i++) c.record(ev('acme/lost', i));
    await c.close({ timeoutMs: 0 });
    expect(c.stats().dropped).toBe(80);
    expect(dropped.map((e) => e.units).sort((a, b) => a! - b!)).toEqual(range(1, 80));
    expect(errors.some((e) => /close: 50 events.*dropped/.test(e.message))).toBe(true);
  });
});

describe('a spool that fails in other ways', () => {
  it('an I/O error on write (EIO): events go from memory, reported once', async () => {
    const url = await service();
    const failing: Spool = {
      load: () => [],
      add: () => {
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      },
      remove: () => {},
      close: () => {},
    };
    const errors: Error[] = [];
    client = createUsageClient({ url, apiKey: s!.key, spool: failing, flushIntervalMs: 5, onError: (e) => errors.push(e) });
    for (let i = 1; i <= 300; i++) client.record(ev('acme/eio', i));
    await client.flush();
    expect(stored('acme/eio')).toEqual(range(1, 300));
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/spool could not write.*EIO/)]);
  });
});

describe('corrupt spool rows', () => {
  it('are moved to spool_quarantine, reported once and counted; the good rows are sent', async () => {
    const file = join(t.dir, 'corrupt', 'spool.db');
    const spool = createSqliteSpool(file);
    const good = (i: number) => ({ ...ev('acme/corrupt', i), request_id: `good-${i}` });
    const raw = new Database(file);
    const garbage = raw.prepare('INSERT INTO spool (request_id, event) VALUES (?, ?)');
    spool.add(good(1));
    garbage.run('bad-json', '{"namespace": "acme/corrupt", "uni');
    spool.add(good(2));
    garbage.run('bad-blob', Buffer.from([0xff, 0x00, 0xfe]));
    garbage.run('bad-number', '42');
    garbage.run('bad-null', 'null');
    garbage.run('bad-id', JSON.stringify({ ...good(9), request_id: 'someone-else' }));
    spool.add(good(3));
    spool.close();
    raw.close();

    const url = await service();
    const errors: Error[] = [];
    client = createUsageClient({ url, apiKey: s!.key, spool: createSqliteSpool(file), flushIntervalMs: 5, onError: (e) => errors.push(e) });
    await client.flush();
    expect(stored('acme/corrupt')).toEqual([1, 2, 3]);
    expect(client.stats()).toMatchObject({ sent: 3, quarantined: 5, dropped: 0, rejected: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/5 unreadable rows.*spool_quarantine/);
    await client.close();
    client = undefined;

    // Kept as they were, beside the spool, for an operator to look at; gone from the spool.
    const db = new Database(file, { readonly: true });
    const kept = db.prepare('SELECT request_id, event, reason FROM spool_quarantine ORDER BY spool_seq').all() as Array<{
      request_id: string;
      event: unknown;
      reason: string;
    }>;
    expect(kept.map((r) => r.request_id)).toEqual(['bad-json', 'bad-blob', 'bad-number', 'bad-null', 'bad-id']);
    expect(kept[1]!.event).toEqual(Buffer.from([0xff, 0x00, 0xfe]));
    expect(kept[0]!.event).toBe('{"namespace": "acme/corrupt", "uni');
    for (const r of kept) expect(r.reason).not.toBe('');
    expect(db.prepare('SELECT count(*) FROM spool').pluck().get()).toBe(0);
    db.close();

    // The next start does not report them again.
    const again: Error[] = [];
    client = createUsageClient({ url, apiKey: s!.key, spool: createSqliteSpool(file), onError: (e) => again.push(e) });
    expect(client.stats().quarantined).toBe(0);
    expect(again).toEqual([]);
  });

  it('a spool whose load() throws does not stop the app: reported, and new events are still sent', async () => {
    const url = await service();
    const errors: Error[] = [];
    const broken: Spool = {
      load: () => {
        throw new Error('database disk image is malformed');
      },
      add: () => {},
      remove: () => {},
      close: () => {},
    };
    client = createUsageClient({ url, apiKey: s!.key, spool: broken, flushIntervalMs: 5, onError: (e) => errors.push(e) });
    client.record(ev('acme/noload', 1));
    await client.flush();
    expect(stored('acme/noload')).toEqual([1]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/could not read the spool.*malformed/)]);
  });
});
