// A failover neither loses nor duplicates a webhook-id (issue 25). Two service instances on one
// PostgreSQL, each in its own process; the leader is killed (SIGKILL) while its receiver holds the
// request unanswered. The message was never recorded as attempted, so the new leader sends it
// again, with the same webhook-id (the receiver deduplicates on it), and records it delivered:
// one message, one recorded attempt, one id, two requests seen.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresLedger, type PostgresLedger } from '../../src/ledger/postgres/index.ts';
import { alertOf } from '../../src/webhooks/payload.ts';
import { until } from '../helpers.ts';
import { findPostgresBin, freshDatabase, type PostgresCluster, postgresRequired, startPostgres } from '../support/postgres.ts';
import { crossing, startReceiver } from './receiver.ts';

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));

function launch(db: string, name: string): Promise<{ proc: ChildProcess; url: string; out: () => string }> {
  const proc = spawn(process.execPath, [INSTANCE, db, name], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${out}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening (\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1]!, out: () => out });
      }
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', () => reject(new Error(`${name} exited:\n${out}`)));
  });
}
const procs: ChildProcess[] = [];
const role = async (url: string) => {
  try {
    return ((await (await fetch(`${url}/healthz`)).json()) as { role: string }).role;
  } catch {
    return null;
  }
};

describe.skipIf(!findPostgresBin() && !postgresRequired())('webhooks through a failover on PostgreSQL', () => {
  let cluster: PostgresCluster | null = null;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await cluster?.stop();
  });

  it('a leader killed mid-delivery: the next leader sends the same webhook-id, recorded once', { timeout: 90_000 }, async () => {
    const db = await freshDatabase(cluster!.url);
    const ledger: PostgresLedger = await openPostgresLedger(db, { leaseMs: 600 }); // the test's own view: never leads
    const r = await startReceiver((n) => (n === 1 ? 'hang' : 200));
    try {
      const a = await launch(db, 'a');
      await until(async () => (await role(a.url)) === 'leader', 15_000);
      const b = await launch(db, 'b');
      await until(async () => (await role(b.url)) === 'follower', 15_000);

      const { webhook, secret } = await ledger.webhooks.create('acme-inc', { url: r.url, namespaces: ['acme/*'] }, Date.now());
      const { messages } = await ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));
      await until(() => r.received.length === 1, 15_000); // a sent it; the receiver holds it
      await new Promise((done) => setTimeout(done, 300)); // b polls every 20 ms, but only the leader sends
      expect(r.received).toHaveLength(1);
      a.proc.kill('SIGKILL');
      await until(() => r.received.length === 2, 30_000); // b took over and sent it again
      await until(async () => (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!.messages[0]!.state === 'delivered', 15_000);
      expect(await role(b.url)).toBe('leader');

      expect(r.received.map((x) => x.headers['webhook-id'])).toEqual([messages[0], messages[0]]);
      for (const x of r.received) expect(() => new Webhook(secret).verify(x.body, x.headers as Record<string, string>)).not.toThrow();
      expect(r.received[1]!.body).toBe(r.received[0]!.body); // byte for byte: the stored body
      const log = (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!;
      expect(log.messages).toEqual([expect.objectContaining({ id: messages[0], state: 'delivered', attempts: 1 })]);
      expect(log.attempts).toEqual([expect.objectContaining({ attempt: 1, status: 200, outcome: 'delivered' })]);
      await new Promise((done) => setTimeout(done, 200));
      expect(r.received).toHaveLength(2);
    } finally {
      await r.close();
      await ledger.close();
    }
  });
});
