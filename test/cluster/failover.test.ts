// Two service instances on one PostgreSQL, a client posting batches through both, and the leader
// killed with SIGKILL mid-seal, then again mid-anchor (the transaction executed on the shared
// fake chain, its answer never delivered). Afterwards: every acknowledged event is there exactly
// once and in exactly one epoch, epochs are numbered without gaps, every receipt verifies, no
// epoch went on chain twice, and ingest never stopped for longer than a takeover.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/index.ts';
import { pgTypes } from '../../src/ledger/postgres/db.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { findPostgresBin, freshDatabase, postgresRequired } from '../support/postgres.ts';
import { clusterFixture, leaderOf, start, type Instance } from './harness.ts';

describe.skipIf(!findPostgresBin() && !postgresRequired())('failover on PostgreSQL', () => {
  const { cluster, chain, instances } = clusterFixture();

  it('keeps every acknowledged event exactly once, in one epoch each, anchored once, through two leader kills', {
    timeout: 180_000,
  }, async () => {
    const db = await freshDatabase(cluster().url);
    const setup = await openLedger(db);
    const key = (await setup.keys.create('acme', ['acme/*'])).key;
    await setup.close();
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    const live = new Set<Instance>();
    const launch = async (name: string) => {
      const i = await start(db, chain.url, name);
      instances.push(i);
      live.add(i);
      return i;
    };
    await launch('a');
    await launch('b');

    // The client: batches of 20 through the instances in turn; a failed request is retried, with
    // the same request ids, on the next instance. Acknowledged = answered created or duplicate.
    const acknowledged = new Set<string>();
    let posting = true;
    let lastAck = Date.now();
    let longestGap = 0;
    let batch = 0;
    const client = (async () => {
      let turn = 0;
      while (posting) {
        const ids = Array.from({ length: 20 }, (_, e) => `b${batch}-e${e}`);
        batch++;
        const body = JSON.stringify({
          events: ids.map((request_id, e) => ({ request_id, namespace: 'acme/fail', action: 'recall', caller: `u${e % 5}`, units: e + 1 })),
        });
        for (let attempt = 0; ; attempt++) {
          const targets = [...live];
          const target = targets[turn++ % targets.length]!;
          try {
            const res = await fetch(`${target.url}/v1/events`, { method: 'POST', headers, body, signal: AbortSignal.timeout(5_000) });
            const out = (await res.json()) as { results: Array<{ status: string; request_id: string }> };
            if (res.status !== 200) throw new Error(JSON.stringify(out));
            for (const r of out.results) {
              expect(['created', 'duplicate']).toContain(r.status);
              acknowledged.add(r.request_id);
            }
            const now = Date.now();
            longestGap = Math.max(longestGap, now - lastAck);
            lastAck = now;
            break;
          } catch {
            if (attempt > 50) throw new Error('ingest stopped');
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }
    })();

    const takeovers: number[] = [];
    const killLeader = async (when: (leader: Instance) => Promise<unknown>) => {
      const leader = await leaderOf([...live]);
      await when(leader);
      leader.proc.kill('SIGKILL');
      const killedAt = Date.now();
      live.delete(leader);
      await leader.exited;
      const next = await leaderOf([...live]);
      takeovers.push(Date.now() - killedAt);
      return next;
    };

    // 1. Kill the leader in the middle of a seal: right after it read the run it is numbering.
    await new Promise((r) => setTimeout(r, 1_500));
    await killLeader((leader) => leader.next(/^seal read /));
    await launch('c');
    await new Promise((r) => setTimeout(r, 1_500));

    // 2. Kill the leader in the middle of anchoring: the chain has executed its transaction and
    //    holds the answer back; the next leader must record it from the chain, not send it again.
    chain.holdAnchorMs = 5_000;
    const executed = new Promise<void>((resolve) => (chain.onExecuted = () => resolve()));
    await killLeader(() => executed);
    chain.holdAnchorMs = 0;
    await new Promise((r) => setTimeout(r, 1_500));

    posting = false;
    await client;
    const survivor = [...live][0]!;

    // Everything gets sealed and anchored.
    const client2 = new pg.Client({ connectionString: db, types: pgTypes });
    await client2.connect();
    try {
      const q = async <T>(sql: string) => (await client2.query(sql)).rows as T[];
      const end = Date.now() + 60_000;
      for (;;) {
        const [w] = await q<{ unsealed: number; epochs: number; anchored: number }>(
          'SELECT (SELECT count(*) FROM events WHERE seq IS NULL) AS unsealed, (SELECT count(*) FROM epochs) AS epochs, (SELECT count(*) FROM anchors) AS anchored',
        );
        if (w!.unsealed === 0 && w!.epochs > 0 && w!.anchored === w!.epochs) break;
        if (Date.now() > end) throw new Error(`not settled: ${JSON.stringify(w)}`);
        await new Promise((r) => setTimeout(r, 100));
      }

      // Every acknowledged event exactly once; nothing else.
      const rows = await q<{ id: number; seq: number; request_id: string }>(
        "SELECT id, seq, request_id FROM events WHERE namespace = 'acme/fail' ORDER BY seq",
      );
      expect(new Set(rows.map((r) => r.request_id)).size).toBe(rows.length);
      for (const id of acknowledged) expect(rows.some((r) => r.request_id === id) || false, id).toBe(true);
      // Every event in exactly one epoch: seq dense from 1, epochs gapless and contiguous.
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      const epochs = await q<{ epoch: number; first_seq: number; last_seq: number; size: number }>(
        'SELECT epoch, first_seq, last_seq, size FROM epochs ORDER BY epoch',
      );
      epochs.forEach((e, i) => {
        expect(e.epoch).toBe(i);
        expect(e.first_seq).toBe(i === 0 ? 1 : epochs[i - 1]!.last_seq + 1);
      });
      expect(epochs.at(-1)!.last_seq).toBe(rows.length);
      // No epoch went on chain twice, and the chain holds exactly the ledger's epochs.
      const sent = chain.chain.executed.flatMap((t) => t.epochs);
      expect(new Set(sent).size).toBe(sent.length);
      expect(sent.sort((a, b) => a - b)).toEqual(epochs.map((e) => e.epoch));
      // Every receipt verifies against the root the chain holds.
      const check = async (id: number) => {
        const receipt = (await (await fetch(`${survivor.url}/v1/events/${id}/receipt`, { headers })).json()) as Parameters<
          typeof verifyReceipt
        >[0] & { epoch: number; status: string };
        expect(receipt.status).toBe('anchored');
        const onChain = (await chain.chain.readEpoch(receipt.epoch))!;
        expect(verifyReceipt(receipt, { root: onChain.root, size: onChain.size }).ok, `event ${id}`).toBe(true);
      };
      for (let i = 0; i < rows.length; i += 50) await Promise.all(rows.slice(i, i + 50).map((r) => check(r.id)));
      console.log(
        `failover: ${rows.length} events in ${epochs.length} epochs through 2 leader kills; takeover ${takeovers.map((t) => `${t} ms`).join(', ')}; ` +
          `longest ingest gap ${longestGap} ms; ${chain.chain.executed.length} anchoring transactions`,
      );
      // Ingest never stopped for longer than a takeover (the other instance kept taking events).
      expect(longestGap).toBeLessThan(Math.max(...takeovers) + 2_000);
    } finally {
      await client2.end();
    }
  });
});
