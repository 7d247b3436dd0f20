import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Anchorer, ReconcileError } from '../../src/anchor/anchorer.ts';
import { MoveAbortError } from '../../src/chain/chain.ts';
import { hexToBytes } from '../../src/event/leaf.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { event, testServerOn, type TestServer, until } from '../helpers.ts';
import { CrashAfterExecution, FakeChain } from './fake-chain.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, _engine) => {
  let s: TestServer;
  let chain: FakeChain;
  beforeEach(async () => {
    s = await testServerOn(fresh);
    chain = new FakeChain();
  });
  afterEach(async () => {
    await s.close();
  });

  /** `n` sealed epochs of 2 events each; returns the event ids. */
  async function sealEpochs(n: number): Promise<number[]> {
    const res = await s.post({ events: Array.from({ length: 2 * n }, () => event()) });
    await sealAll(s.ledger, { maxEvents: 2 });
    return res.json().results.map((r: { id: number }) => r.id);
  }

  const anchorer = (extra: Partial<ConstructorParameters<typeof Anchorer>[0]> = {}) =>
    // sleep yields a turn of the event loop (no real waiting), so the loop cannot starve the test
    new Anchorer({
      ledger: s.ledger,
      chain,
      sleep: () => new Promise((r) => setImmediate(r)),
      random: () => 1,
      backoff: { baseMs: 100, maxMs: 1000 },
      ...extra,
    });

  const anchoredEpochs = () =>
    s.sql<{ epoch: number; tx_digest: string | null; checkpoint: string | null }>(
      'SELECT epoch, tx_digest, checkpoint FROM anchors ORDER BY epoch',
    );

  describe('anchorer', () => {
    it('anchors sealed epochs in order in one PTB, records digest and checkpoint, and receipts become anchored', async () => {
      const ids = await sealEpochs(3);
      expect(await anchorer().step()).toBe(3);
      expect(chain.executed).toEqual([{ digest: 'Digest1', epochs: [0, 1, 2] }]);
      expect(await anchoredEpochs()).toEqual([0, 1, 2].map((epoch) => ({ epoch, tx_digest: 'Digest1', checkpoint: '1000' })));

      const receipt = (await s.get(`/v1/events/${ids[3]}/receipt`)).json();
      expect(receipt).toMatchObject({
        status: 'anchored',
        epoch: 1,
        anchor: {
          network: 'localnet',
          package_id: chain.packageId,
          registry_id: chain.registryId,
          tx_digest: 'Digest1',
          checkpoint: '1000',
        },
      });
      // Verified against the root the chain holds, not the server's.
      const onChain = chain.model.epochs.get(1)!;
      expect(verifyReceipt(receipt, { root: onChain.root, size: onChain.size }).ok).toBe(true);
      expect((await s.get('/v1/epochs/1')).json().anchor.tx_digest).toBe('Digest1');
    });

    it('sends at most 50 epochs a PTB, in order', async () => {
      await sealEpochs(120);
      const a = anchorer();
      while ((await a.step()) > 0);
      expect(chain.executed.map((t) => [t.epochs[0], t.epochs.at(-1)])).toEqual([
        [0, 49],
        [50, 99],
        [100, 119],
      ]);
      expect(chain.model.nextEpoch).toBe(120);
    });

    it('retries timeouts and failed transactions with exponential backoff and jitter, and anchors each epoch once', async () => {
      await sealEpochs(2);
      chain.faults.push('timeout-before', 'failed-tx', 'timeout-before');
      chain.readTimeouts = 1;
      const delays: number[] = [];
      const a = anchorer({ onRetry: (_e, _n, ms) => delays.push(ms), random: () => 0.5 });
      a.start();
      await until(async () => (await a.state()).anchoredThrough === 1);
      await a.stop();
      expect(delays).toEqual([50, 100, 200, 400]); // 0.5 × 100·2^k: full jitter under an exponential cap
      expect(chain.executed).toHaveLength(1);
      expect((await anchoredEpochs()).map((e) => e.epoch)).toEqual([0, 1]);
    });

    it('caps the backoff', async () => {
      await sealEpochs(1);
      chain.faults.push(...Array.from({ length: 6 }, () => 'timeout-before' as const));
      const delays: number[] = [];
      const a = anchorer({ onRetry: (_e, _n, ms) => delays.push(ms) });
      a.start();
      await until(async () => (await a.state()).anchoredThrough === 0);
      await a.stop();
      expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    });

    it('does not resend when the transaction executed but the answer was lost (timeout after execution)', async () => {
      await sealEpochs(2);
      chain.faults.push('timeout-after');
      const a = anchorer();
      a.start();
      await until(async () => (await a.state()).anchoredThrough === 1);
      await a.stop();
      expect(chain.executed).toHaveLength(1); // executed once; the retry found it on chain
      expect(chain.calls).toBe(1);
      expect(await anchoredEpochs()).toEqual([0, 1].map((epoch) => ({ epoch, tx_digest: 'Digest1', checkpoint: '1000' })));
    });

    it('after a crash between execution and recording, a restarted anchorer records it without sending again', async () => {
      await sealEpochs(3);
      chain.faults.push('crash-after');
      await expect(anchorer().step()).rejects.toThrow(CrashAfterExecution);
      expect(await anchoredEpochs()).toEqual([]); // the process died before recording

      const restarted = anchorer();
      expect(await restarted.step()).toBe(0);
      expect(chain.calls).toBe(1);
      expect(await anchoredEpochs()).toEqual([0, 1, 2].map((epoch) => ({ epoch, tx_digest: 'Digest1', checkpoint: '1000' })));
      await sealEpochs(1);
      expect(await restarted.step()).toBe(1);
      expect(chain.executed.map((t) => t.epochs)).toEqual([[0, 1, 2], [3]]);
    });

    it('stops on a Move abort, reports it, and never skips the epoch', async () => {
      await sealEpochs(2);
      // The anchorer reads the registry first, so the chain's own checks should never refuse it;
      // if one does (a cap for another registry, a bug), it must stop, not retry or skip.
      const failures: Error[] = [];
      chain.anchor = async () => {
        chain.calls++;
        throw new MoveAbortError('EEpochOutOfOrder', 'MoveAbort in registry::anchor: EEpochOutOfOrder');
      };
      const a = anchorer({ onFailed: (e) => failures.push(e) });
      a.start();
      await until(async () => (await a.state()).status === 'failed');
      await a.stop();
      expect((await a.state()).error).toMatch(/anchoring epochs 0–1 aborted on chain with EEpochOutOfOrder/);
      expect(failures[0]).toBeInstanceOf(MoveAbortError);
      expect(chain.calls).toBe(1); // not retried
      expect(await anchoredEpochs()).toEqual([]);
    });

    it('refuses to go on when the chain holds a different root for an epoch, naming it', async () => {
      await sealEpochs(2);
      chain.model.anchor(chain.registryId, 0, hexToBytes('ee'.repeat(32)), 2, 1, 2, 1);
      const a = anchorer();
      await expect(a.step()).rejects.toThrow(ReconcileError);
      await expect(a.step()).rejects.toThrow(/epoch 0 is on chain with root e{64} \(size 2\) but this ledger sealed root [0-9a-f]{64}/);
      a.start();
      await until(async () => (await a.state()).status === 'failed');
      expect(chain.calls).toBe(0);
    });

    it('refuses a registry that has epochs this ledger never sealed', async () => {
      await sealEpochs(1);
      chain.model.anchor(
        chain.registryId,
        0,
        hexToBytes(Buffer.from((await s.get('/v1/epochs/0')).json().root, 'hex').toString('hex')),
        2,
        1,
        2,
        1,
      );
      chain.model.anchor(chain.registryId, 1, hexToBytes('01'.repeat(32)), 2, 1, 2, 1);
      await expect(anchorer().step()).rejects.toThrow(/epoch 1 on chain but this ledger never sealed it/);
    });
  });
});
