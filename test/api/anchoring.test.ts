// Anchoring inside the server, against the fake chain: receipts turn anchored over HTTP, and a
// stopped anchorer shows in /healthz and /metrics.
import { afterEach, expect, it } from 'vitest';
import { MoveAbortError } from '../../src/chain/chain.ts';
import { sealAll } from '../../src/seal/sealer.ts';
import { verifyReceipt } from '../../src/verify/index.ts';
import { FakeChain } from '../anchor/fake-chain.ts';
import { event, testServerOn, type TestServer } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh, _engine) => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.close();
  });

  async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await read();
      if (ok(v)) return v;
      if (Date.now() > end) throw new Error(`timed out; last value ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('anchors sealed epochs while serving; receipts verify against the root the chain holds', async () => {
    const chain = new FakeChain();
    s = await testServerOn(fresh, { anchoring: { chain, pollMs: 5 } });
    await s.app.ready();
    const [r] = (await s.post(event())).json().results;
    await sealAll(s.ledger, { maxEvents: 100 });
    const receipt = await until(
      async () => (await s!.get(`/v1/events/${r.id}/receipt`)).json(),
      (x) => x.status === 'anchored',
    );
    expect(receipt.anchor).toMatchObject({ network: 'localnet', registry_id: chain.registryId, tx_digest: 'Digest1', checkpoint: '1000' });
    const record = chain.model.epochs.get(receipt.epoch)!;
    expect(verifyReceipt(receipt, { root: record.root, size: record.size }).ok).toBe(true);
    const health = (await s.app.inject({ method: 'GET', url: '/healthz' })).json();
    expect(health).toMatchObject({
      status: 'ok',
      role: 'leader',
      checks: { database: 'ok', anchoring: 'ok' },
      ledger: { engine: s.engine },
    });
    expect((await s.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/receipts_epochs_anchored_total 1/);
  });

  it('reports a stopped anchorer as degraded in /healthz and in receipts_anchoring_failed, and keeps serving', async () => {
    const chain = new FakeChain();
    chain.anchor = async () => {
      throw new MoveAbortError('EWrongCap', 'MoveAbort in registry::anchor: EWrongCap');
    };
    s = await testServerOn(fresh, { anchoring: { chain, pollMs: 5 } });
    await s.app.ready();
    await s.post(event());
    await sealAll(s.ledger, { maxEvents: 100 });
    const res = await until(
      async () => s!.app.inject({ method: 'GET', url: '/healthz' }),
      (x) => x.json().status === 'degraded',
    );
    expect(res.statusCode).toBe(200); // ingest and receipts still work
    expect(res.json().checks.anchoring).toMatch(/^failed: anchoring epochs 0–0 aborted on chain with EWrongCap/);
    expect((await s.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/receipts_anchoring_failed 1/);
    expect((await s.post(event())).json().results[0].status).toBe('created');
    expect(s.logs.join('')).toMatch(/ANCHORING STOPPED/);
  });
});
