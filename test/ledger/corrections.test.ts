// Corrections in the ledger (docs/design.md "Leaf (version 2)"), on both engines: a void or an
// amendment is a new event with a leaf v2 pointing at the exact version it replaces; only the head
// of a chain may be corrected, once, within the window, by its owner; a retry is idempotent.
import { afterEach, describe, expect, it } from 'vitest';
import { leafHash, leafHashV2 } from '../../src/event/leaf.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { openPostgresLedger } from '../../src/ledger/postgres/index.ts';
import type { CorrectionToWrite, Ledger } from '../../src/ledger/index.ts';
import { forEachEngine } from '../support/engines.ts';
import { findPostgresBin, freshDatabase, postgresRequired, startPostgres } from '../support/postgres.ts';

const NOW = Date.now();
const DAY = 86_400_000;
const digest = 'ab'.repeat(32);

async function record(ledger: Ledger, fields: Record<string, unknown>, owner = 'acme') {
  const v = validateEvent(
    { namespace: 'acme/prod', caller: 'u1', action: 'chat', units: 10, ...fields },
    { now: NOW, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
  );
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  const [r] = await ledger.events.write([{ event: v.event, owner, keyId: 'abcdefabcdef' }]);
  if (r!.status !== 'created') throw new Error(JSON.stringify(r));
  return { id: r!.id, leaf_hash: r!.leaf_hash, event: v.event };
}

const correction = (fields: Partial<CorrectionToWrite> & Pick<CorrectionToWrite, 'kind' | 'target' | 'request_id'>): CorrectionToWrite => ({
  owner: 'acme',
  keyId: 'abcdefabcdef',
  notBeforeMs: NOW - DEFAULT_MAX_AGE_MS,
  receivedAtMs: NOW,
  ...fields,
});

forEachEngine((fresh, engine) => {
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  afterEach(async () => {
    await ledger?.close();
    await cleanup?.();
  });

  describe('corrections', () => {
    it('amends then voids: each a leaf v2 over the exact version it replaces, the chain in order', async () => {
      ({ ledger, cleanup } = await fresh());
      const ts = NOW - DAY;
      const original = await record(ledger, { request_id: 'r-1', ts, artifact_digest: digest });
      expect(original.leaf_hash).toBe(Buffer.from(leafHash(original.event)).toString('hex'));

      const [amend] = await ledger.events.correct([
        correction({
          kind: 'amend',
          target: { id: original.id },
          request_id: 'fix-1',
          changes: { units: 7, action: 'recall' },
          reason: 'double count',
        }),
      ]);
      expect(amend).toMatchObject({ status: 'created', corrects_id: original.id, chain_id: original.id });
      const amendId = (amend as { id: number }).id;
      const wantAmend = leafHashV2({
        namespace: 'acme/prod',
        request_id: 'fix-1',
        caller: 'u1',
        action: 'recall',
        units: 7,
        artifact_digest: digest,
        ts_ms: ts,
        kind: 'amend',
        corrects: original.leaf_hash,
      });
      expect((amend as { leaf_hash: string }).leaf_hash).toBe(Buffer.from(wantAmend).toString('hex'));

      // The original is no longer the head: correcting it names the head.
      const [stale] = await ledger.events.correct([correction({ kind: 'void', target: { id: original.id }, request_id: 'fix-2' })]);
      expect(stale).toEqual({ status: 'already_corrected', id: original.id, head_id: amendId, head_kind: 'amend' });

      // Void the head, by the original's request id (the namespace's idempotency key).
      const [v] = await ledger.events.correct([
        correction({ kind: 'void', target: { namespace: 'acme/prod', request_id: 'fix-1' }, request_id: 'fix-3' }),
      ]);
      expect(v).toMatchObject({ status: 'created', corrects_id: amendId, chain_id: original.id });
      const voidId = (v as { id: number }).id;
      const wantVoid = leafHashV2({
        namespace: 'acme/prod',
        request_id: 'fix-3',
        caller: 'u1',
        action: 'recall',
        units: 0,
        artifact_digest: digest,
        ts_ms: ts,
        kind: 'void',
        corrects: (amend as { leaf_hash: string }).leaf_hash,
      });
      expect((v as { leaf_hash: string }).leaf_hash).toBe(Buffer.from(wantVoid).toString('hex'));

      // A void ends the chain: nothing after it, whichever version is named.
      for (const id of [original.id, amendId, voidId]) {
        const [r] = await ledger.events.correct([
          correction({ kind: 'amend', target: { id }, request_id: `late-${id}`, changes: { units: 1 } }),
        ]);
        expect(r).toEqual({ status: 'already_corrected', id, head_id: voidId, head_kind: 'void' });
      }

      const chain = await ledger.events.chainOf(amendId);
      expect(chain.map((e) => e.id)).toEqual([original.id, amendId, voidId]);
      expect(chain.map((e) => e.units)).toEqual([10, 7, 0]);
      expect((await ledger.events.chainOf(voidId)).map((e) => e.id)).toEqual([original.id, amendId, voidId]);
      expect(await ledger.events.chainOf(999_999)).toEqual([]);
      expect((await ledger.events.byRequestId('acme/prod', 'fix-1'))?.id).toBe(amendId);
      expect(await ledger.events.byRequestId('acme/prod', 'nope')).toBeUndefined();
    });

    it('answers a retry as a duplicate, a different body under the same request id as a conflict', async () => {
      ({ ledger, cleanup } = await fresh());
      const original = await record(ledger, { request_id: 'r-1' });
      const item = correction({ kind: 'amend', target: { id: original.id }, request_id: 'fix-1', changes: { units: 3 } });
      const [first] = await ledger.events.correct([item]);
      const [again] = await ledger.events.correct([item]);
      expect(again).toEqual({ ...first, status: 'duplicate' });
      const [other] = await ledger.events.correct([{ ...item, changes: { units: 4 } }]);
      expect(other).toEqual({ status: 'conflict', id: (first as { id: number }).id, differs: ['units'] });
      // A request id an ordinary event already has.
      const [taken] = await ledger.events.correct([
        correction({ kind: 'void', target: { id: (first as { id: number }).id }, request_id: 'r-1' }),
      ]);
      expect(taken).toMatchObject({ status: 'conflict', id: original.id });
      expect((taken as { differs: string[] }).differs).toContain('kind');
    });

    it('refuses past the window, another owner, an unknown id and a field that breaks an ingest rule, storing nothing', async () => {
      ({ ledger, cleanup } = await fresh());
      const old = await record(ledger, { request_id: 'r-old', ts: NOW - 30 * DAY });
      const before = await ledger.events.latestId();
      const [closed] = await ledger.events.correct([
        correction({ kind: 'void', target: { id: old.id }, request_id: 'fix-1', notBeforeMs: NOW - 7 * DAY }),
      ]);
      expect(closed).toEqual({ status: 'window_closed', id: old.id, ts_ms: NOW - 30 * DAY });
      const [foreign] = await ledger.events.correct([
        correction({ kind: 'void', target: { id: old.id }, request_id: 'fix-2', owner: 'globex' }),
      ]);
      expect(foreign).toEqual({ status: 'not_found' });
      const [missing] = await ledger.events.correct([correction({ kind: 'void', target: { id: 424242 }, request_id: 'fix-3' })]);
      expect(missing).toEqual({ status: 'not_found' });
      const [bad] = await ledger.events.correct([
        correction({ kind: 'amend', target: { id: old.id }, request_id: 'fix-4', changes: { action: 'no spaces allowed' } }),
      ]);
      expect(bad).toMatchObject({ status: 'invalid', errors: [{ path: 'action' }] });
      expect(await ledger.events.latestId()).toBe(before);
    });

    it('lets exactly one of many concurrent corrections of the same head win', async () => {
      ({ ledger, cleanup } = await fresh());
      const original = await record(ledger, { request_id: 'r-1' });
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          ledger.events.correct([
            correction({ kind: 'amend', target: { id: original.id }, request_id: `race-${i}`, changes: { units: 100 + i } }),
          ]),
        ),
      );
      const created = results.flat().filter((r) => r.status === 'created');
      expect(created, engine).toHaveLength(1);
      const winner = (created[0] as { id: number }).id;
      for (const r of results.flat().filter((x) => x.status !== 'created')) {
        expect(r).toMatchObject({ status: 'already_corrected', head_id: winner });
      }
      expect((await ledger.events.chainOf(original.id)).map((e) => e.id)).toEqual([original.id, winner]);
    });
  });
});

describe.skipIf(!findPostgresBin() && !postgresRequired())('postgres: corrections across instances', () => {
  it('two instances racing to correct the same head: one wins, the other is told the head', async () => {
    const cluster = (await startPostgres())!;
    const url = await freshDatabase(cluster.url);
    const a = await openPostgresLedger(url, { leaseMs: 600 });
    const b = await openPostgresLedger(url, { leaseMs: 600 });
    try {
      const original = await record(a, { request_id: 'r-1' });
      for (let round = 0; round < 5; round++) {
        const head = (await a.events.chainOf(original.id)).at(-1)!;
        const [ra, rb] = await Promise.all([
          a.events.correct([correction({ kind: 'amend', target: { id: head.id }, request_id: `a-${round}`, changes: { units: round } })]),
          b.events.correct([
            correction({ kind: 'amend', target: { id: head.id }, request_id: `b-${round}`, changes: { units: round + 100 } }),
          ]),
        ]);
        const both = [ra![0]!, rb![0]!];
        expect(both.filter((r) => r.status === 'created')).toHaveLength(1);
        const loser = both.find((r) => r.status !== 'created')!;
        const winner = both.find((r) => r.status === 'created') as { id: number };
        expect(loser).toEqual({ status: 'already_corrected', id: head.id, head_id: winner.id, head_kind: 'amend' });
      }
      expect(await a.events.chainOf(original.id)).toHaveLength(6);
    } finally {
      await a.close();
      await b.close();
      await cluster.stop();
    }
  }, 60_000);
});
