// kill -9 of a process whose client spools to SQLite: every event it recorded reaches the
// server exactly once after it restarts.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { tempDir, testServer } from '../helpers.ts';

const CHILD = fileURLToPath(new URL('./spool-child.ts', import.meta.url));
const t = tempDir('receipts-spool-');
afterAll(() => t.cleanup());

it('delivers every recorded event exactly once across a kill -9 of the recording process', async () => {
  const s = await testServer();
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
  const spool = join(t.dir, 'spool.db');
  const N = 400;
  const count = () => (s.db().prepare("SELECT count(*) AS n FROM events WHERE namespace = 'acme/spool'").get() as { n: number }).n;
  try {
    const child = spawn(process.execPath, [CHILD, 'record', url, s.key, spool, String(N)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('recorded') && resolve()));
    // Let some batches go out, then kill it mid-stream.
    while (count() < 30) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const before = count();
    expect(before).toBeLessThan(N); // it died with events still to send

    // Async: the server lives in this process and must keep answering.
    const resumed = await run(process.execPath, [CHILD, 'resume', url, s.key, spool]);
    expect(resumed.status, resumed.stderr).toBe(0);
    const units = s.db().prepare("SELECT units FROM events WHERE namespace = 'acme/spool' ORDER BY units").pluck().all() as number[];
    expect(units).toEqual(Array.from({ length: N }, (_, i) => i + 1)); // each event once
    const stats = JSON.parse(resumed.stdout);
    expect(stats.sent).toBeGreaterThanOrEqual(N - before); // resent what was left (some may come back as duplicates)
    expect(stats).toMatchObject({ queued: 0, rejected: 0, dropped: 0 });
  } finally {
    await s.close();
  }
});

function run(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
