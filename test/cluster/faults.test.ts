// The failures that happen more often than kill -9, caused for real on PostgreSQL with two
// service processes: a backend terminated mid-seal and mid-ingest, the database stopped and
// started under load, a leader paused (SIGSTOP) for longer than its lease, a leader paused in the
// middle of its seal's write. Each time: no process exits, nothing answers 500 (503 with
// Retry-After while the database is away), another instance takes over within 5 s, ingest does not
// wait on the paused leader, and afterwards every acknowledged event is sealed exactly once.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/index.ts';
import { findPostgresBin, freshDatabase, postgresRequired } from '../support/postgres.ts';
import { clusterFixture, leaderOf, role, start, type Instance } from './harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as T[];
  } finally {
    await c.end();
  }
}

async function until(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Posts batches of 10 through the instances in turn, retrying a failed batch (same ids) elsewhere. */
function poster(targets: () => Instance[], headers: Record<string, string>, prefix: string) {
  const acknowledged = new Set<string>();
  const statuses = new Map<number, number>();
  let posting = true;
  let batch = 0;
  const done = (async () => {
    let turn = 0;
    while (posting) {
      const ids = Array.from({ length: 10 }, (_, e) => `${prefix}${batch}-${e}`);
      batch++;
      const body = JSON.stringify({
        events: ids.map((request_id, e) => ({ request_id, namespace: 'acme/faults', action: 'recall', caller: `u${e % 3}`, units: 1 })),
      });
      for (let attempt = 0; ; attempt++) {
        const all = targets();
        const target = all[turn++ % all.length]!;
        try {
          const res = await fetch(`${target.url}/v1/events`, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const out = (await res.json()) as { results?: Array<{ status: string; request_id: string }> };
          if (res.status !== 200) throw new Error(JSON.stringify(out));
          for (const r of out.results!) if (r.status === 'created' || r.status === 'duplicate') acknowledged.add(r.request_id);
          break;
        } catch {
          if (attempt > 400) throw new Error('ingest never resumed');
          await sleep(50);
        }
      }
    }
  })();
  return {
    acknowledged,
    statuses,
    async stop() {
      posting = false;
      await done;
    },
  };
}

/** Waits until everything is sealed, then checks each acknowledged event is there once, in one epoch. */
async function settled(db: string, acknowledged: Set<string>): Promise<void> {
  await until(
    async () => (await sql<{ n: number }>(db, 'SELECT count(*)::int AS n FROM events WHERE seq IS NULL'))[0]!.n === 0,
    60_000,
    'every event sealed',
  );
  const rows = await sql<{ seq: number; request_id: string }>(
    db,
    "SELECT seq, request_id FROM events WHERE namespace = 'acme/faults' ORDER BY seq",
  );
  const ids = new Set(rows.map((r) => r.request_id));
  expect(ids.size).toBe(rows.length);
  const lost = [...acknowledged].filter((id) => !ids.has(id));
  expect(lost).toEqual([]);
  const all = await sql<{ seq: number }>(db, 'SELECT seq::int FROM events ORDER BY seq');
  expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
  const epochs = await sql<{ epoch: number; first_seq: number; last_seq: number }>(
    db,
    'SELECT epoch::int, first_seq::int, last_seq::int FROM epochs ORDER BY epoch',
  );
  epochs.forEach((e, i) => {
    expect(e.epoch).toBe(i);
    expect(e.first_seq).toBe(i === 0 ? 1 : epochs[i - 1]!.last_seq + 1);
  });
  expect(epochs.at(-1)!.last_seq).toBe(all.length);
}

const alive = (i: Instance) => i.proc.exitCode === null && i.proc.signalCode === null;

describe.skipIf(!findPostgresBin() && !postgresRequired())('faults on PostgreSQL', () => {
  const { cluster, chain, instances } = clusterFixture();

  const setUp = async (names: string[], env: Record<string, string> = {}) => {
    const db = await freshDatabase(cluster().url);
    const setup = await openLedger(db);
    const key = (await setup.keys.create('acme', ['acme/*'])).key;
    await setup.close();
    const started: Instance[] = [];
    for (const name of names) {
      const i = await start(db, chain.url, name, env);
      instances.push(i);
      started.push(i);
    }
    return { db, started, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } };
  };

  it('a backend terminated mid-seal or mid-ingest fails that operation only: the processes stay up and resume', {
    timeout: 120_000,
  }, async () => {
    const { db, started, headers } = await setUp(['a', 'b']);
    const post = poster(() => started, headers, 't');
    const leader = await leaderOf(started);
    await until(async () => (await sql<{ n: number }>(db, 'SELECT count(*)::int AS n FROM epochs'))[0]!.n > 0, 15_000, 'a first epoch');

    // Hold the lowest unsealed event so the leader's next seal stops inside its write, then end
    // that backend from the server side.
    const blocker = new pg.Client({ connectionString: db });
    await blocker.connect();
    await blocker.query('BEGIN');
    await until(
      async () => (await blocker.query('SELECT id FROM events WHERE seq IS NULL ORDER BY id LIMIT 1 FOR UPDATE')).rowCount === 1,
      10_000,
      'an unsealed event',
    );
    let terminated = 0;
    await until(
      async () => {
        const r = await sql<{ ok: boolean }>(
          db,
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = $1 AND query LIKE 'UPDATE events SET seq%' AND wait_event_type = 'Lock'`,
          [`sui-receipts ${leader.name}`],
        );
        terminated += r.length;
        return r.length > 0;
      },
      15_000,
      "the leader's seal waiting inside its write",
    );
    await blocker.query('COMMIT');
    await blocker.end();

    // Every connection of both instances, ended under ingest, three times.
    for (let round = 0; round < 3; round++) {
      await sleep(300);
      const r = await sql(
        db,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sui-receipts %'`,
      );
      terminated += r.length;
    }
    await sleep(1_500);
    await post.stop();

    expect(terminated).toBeGreaterThan(3);
    for (const i of started) expect(alive(i), `${i.name} is still running:\n${i.out()}`).toBe(true);
    expect(i500(post.statuses), JSON.stringify([...post.statuses])).toBe(0);
    await settled(db, post.acknowledged);
    for (const i of started) expect((await fetch(`${i.url}/healthz`)).status).toBe(200);
    expect(started.map((i) => i.out()).join('')).not.toMatch(/Unhandled|Connection terminated unexpectedly\n\s+at/);
  });

  it('PostgreSQL stopped and started under load: 503 with Retry-After meanwhile (never 500), then ingest resumes; nothing lost', {
    timeout: 120_000,
  }, async () => {
    const { db, started, headers } = await setUp(['c', 'd']);
    const post = poster(() => started, headers, 'r');
    await leaderOf(started);
    await sleep(1_000);

    await cluster().ctl('stop');
    try {
      const [i] = started;
      const asked = [
        await fetch(`${i!.url}/v1/events`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ request_id: 'while-down', namespace: 'acme/faults', action: 'recall', caller: 'u0' }),
        }),
        await fetch(`${i!.url}/v1/usage?namespace=acme/faults&from=0&to=9999999999999`, { headers }),
        await fetch(`${i!.url}/v1/events/1/receipt`, { headers }),
        // A key no cache holds: its lookup needs the database.
        await fetch(`${i!.url}/v1/usage?namespace=acme/faults`, { headers: { authorization: `Bearer sr_abcdefghijkl_${'x'.repeat(43)}` } }),
      ];
      for (const res of asked) {
        const body = (await res.json()) as { error?: { code: string } };
        expect(res.status, `${res.url}: ${JSON.stringify(body)}`).toBe(503);
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      }
      expect((await fetch(`${i!.url}/healthz`)).status).toBe(503);
      await sleep(1_000);
    } finally {
      await cluster().ctl('start');
    }
    // Ingest resumes: a new batch is acknowledged on each instance.
    for (const i of started) {
      await until(
        async () =>
          (
            await fetch(`${i.url}/v1/events`, {
              method: 'POST',
              headers,
              body: JSON.stringify({ request_id: `after-${i.name}`, namespace: 'acme/faults', action: 'recall', caller: 'u0' }),
            })
          ).status === 200,
        20_000,
        `${i.name} to take events again`,
      );
      post.acknowledged.add(`after-${i.name}`);
    }
    await sleep(500);
    await post.stop();
    for (const i of started) expect(alive(i), `${i.name} is still running:\n${i.out()}`).toBe(true);
    expect(i500(post.statuses), JSON.stringify([...post.statuses])).toBe(0);
    expect(post.statuses.get(503) ?? 0).toBeGreaterThan(0);
    await settled(db, post.acknowledged);
  });

  it('a leader paused for 8 s (SIGSTOP) is replaced within 5 s; /healthz names the new one; resumed, the old one follows and writes nothing', {
    timeout: 120_000,
  }, async () => {
    const { db, started, headers } = await setUp(['e', 'f']);
    const paused = new Set<Instance>();
    const post = poster(() => started.filter((i) => !paused.has(i)), headers, 's');
    const old = await leaderOf(started);
    const other = started.find((i) => i !== old)!;
    await sleep(1_000);

    paused.add(old);
    old.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    await until(async () => (await role(other)) === 'leader', 10_000, `${other.name} to lead`);
    const takeover = Date.now() - stoppedAt;
    const health = (await (await fetch(`${other.url}/healthz`)).json()) as { ledger: { leader: string | null } };
    expect(health.ledger.leader).toBe(other.name);
    // The new leader seals while the old one is still paused.
    const before = (await sql<{ n: number }>(db, 'SELECT count(*)::int AS n FROM epochs'))[0]!.n;
    await until(
      async () => (await sql<{ n: number }>(db, 'SELECT count(*)::int AS n FROM epochs'))[0]!.n > before,
      10_000,
      'a seal by the new leader',
    );
    await sleep(Math.max(0, 8_000 - (Date.now() - stoppedAt)));

    old.proc.kill('SIGCONT');
    paused.delete(old);
    await until(async () => (await role(old)) === 'follower', 10_000, `${old.name} to follow`);
    await sleep(1_000);
    await post.stop();

    console.log(`pause: takeover ${takeover} ms after SIGSTOP (lease 3,000 ms)`);
    expect(takeover).toBeLessThan(5_000);
    expect(alive(old)).toBe(true);
    const [lead] = await sql<{ holder: string }>(db, 'SELECT holder FROM leadership');
    expect(lead!.holder).toBe(other.name);
    expect(i500(post.statuses)).toBe(0);
    await settled(db, post.acknowledged);
  });

  it("a leader paused inside its seal's write holds up no ingest: a retry of the events it is numbering and a usage snapshot answer at once elsewhere", {
    timeout: 120_000,
  }, async () => {
    // g seals with a 6 s stall right after numbering (its row locks held, its transaction open).
    const {
      db,
      started: [g],
      headers,
    } = await setUp(['g'], { STALL_AT: 'numbered', STALL_MS: '6000', MAX_EVENTS: '1000' });
    await leaderOf([g!]);
    const h = await start(db, chain.url, 'h');
    instances.push(h);
    const batch = JSON.stringify({
      events: Array.from({ length: 50 }, (_, e) => ({
        request_id: `p-${e}`,
        namespace: 'acme/faults',
        action: 'recall',
        caller: 'u0',
        units: 1,
      })),
    });
    expect((await fetch(`${g!.url}/v1/events`, { method: 'POST', headers, body: batch })).status).toBe(200);
    await g!.next(/^seal numbered /);
    await sleep(200); // g is now blocked inside its write

    const t0 = Date.now();
    const retry = JSON.stringify({
      events: [
        ...(JSON.parse(batch) as { events: unknown[] }).events,
        { request_id: 'p-new', namespace: 'acme/faults', action: 'recall', caller: 'u0', units: 1 },
      ],
    });
    const res = await fetch(`${h.url}/v1/events`, { method: 'POST', headers, body: retry, signal: AbortSignal.timeout(10_000) });
    const answered = Date.now() - t0;
    const out = (await res.json()) as { results: Array<{ status: string }> };
    expect(res.status).toBe(200);
    expect(out.results.slice(0, 50).every((r) => r.status === 'duplicate')).toBe(true);
    expect(out.results[50]!.status).toBe('created');

    const t1 = Date.now();
    const usage = await fetch(`${h.url}/v1/usage?namespace=acme/faults&from=0&to=9999999999999&receipts=true`, {
      headers,
      signal: AbortSignal.timeout(10_000),
    });
    const snapshot = Date.now() - t1;
    expect(usage.status).toBe(200);
    console.log(`stalled seal: retry answered in ${answered} ms, usage snapshot in ${snapshot} ms (the leader stalls 6,000 ms)`);
    expect(answered).toBeLessThan(1_500);
    expect(snapshot).toBeLessThan(1_500);

    // h takes over within the lease; g, back, follows; everything is sealed once.
    await until(async () => (await role(h)) === 'leader', 10_000, 'h to lead');
    await until(async () => (await role(g!)) === 'follower', 15_000, 'g to follow');
    expect(alive(g!)).toBe(true);
    await settled(db, new Set([...Array.from({ length: 50 }, (_, e) => `p-${e}`), 'p-new']));
  });
});

function i500(statuses: Map<number, number>): number {
  let n = 0;
  for (const [status, count] of statuses) if (status >= 500 && status !== 503) n += count;
  return n;
}
