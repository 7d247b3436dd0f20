// End to end on a fresh localnet: ingest → seal → anchor → receipts verified offline, against
// the on-chain root, and on chain (verify_event); an out-of-order anchor fails with the named
// Move error; gas of anchor PTBs; `sui move test`. Run with `npm run test:localnet`.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MoveAbortError } from '../src/chain/chain.ts';
import { loadSuiConfig } from '../src/chain/config.ts';
import type { EpochToAnchor } from '../src/chain/ptb.ts';
import { SuiChain } from '../src/chain/sui.ts';
import type { Receipt } from '../src/receipt/format.ts';
import { verifyReceipt } from '../src/verify/index.ts';
import { createRegistry, fundedKey, publish, ROOT, startLocalnet, writeConfig, type Localnet } from '../scripts/localnet/lib.ts';
import { receipts, serve, type Served } from '../test/cli/run.ts';
import { tempDir } from '../test/helpers.ts';

let net: Localnet;
let served: Served | undefined;
const t = tempDir('receipts-e2e-');
let configFile: string;
let publisherConfig: string;

beforeAll(async () => {
  net = await startLocalnet();
  const key = await fundedKey(net.client);
  const published = await publish(net.client, key);
  const deployment = await createRegistry(net.client, key, published.packageId);
  configFile = join(t.dir, 'sui.json');
  writeConfig(configFile, deployment, key);
  publisherConfig = join(t.dir, 'publisher.json'); // the registry init made, used for abort and gas checks
  writeConfig(publisherConfig, published, key);
});

afterAll(async () => {
  served?.proc.kill('SIGTERM');
  await served?.exited;
  await net?.stop();
  t.cleanup();
});

it('sui move test passes', () => {
  const r = spawnSync('sui', ['move', 'test', '--path', join(ROOT, 'move')], { encoding: 'utf8' });
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
});

it('ingests, seals, anchors, and every receipt verifies offline, against the on-chain root, and on chain', async () => {
  const db = join(t.dir, 'ledger.db');
  served = await serve(['--db', db, '--epoch-ms', '300', '--sui-config', configFile]);
  const key = JSON.parse(receipts(['keys', 'create', '--db', db, '--owner', 'acme', '--namespace', 'acme/*', '--json']).stdout).key;
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const ids: number[] = [];
  for (let batch = 0; batch < 3; batch++) {
    const events = Array.from({ length: 7 }, (_, i) => ({
      request_id: `e2e-${batch}-${i}`,
      namespace: 'acme/e2e',
      action: 'recall',
      caller: `u${i}`,
      units: i + 1,
    }));
    const res = (await (await fetch(`${served.url}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) })).json()) as {
      results: Array<{ id: number }>;
    };
    ids.push(...res.results.map((r) => r.id));
    await new Promise((r) => setTimeout(r, 600)); // let each batch seal as its own epoch
  }

  const chain = new SuiChain(loadSuiConfig(configFile, {}));
  for (const id of ids) {
    let receipt: Receipt | undefined;
    for (let i = 0; i < 240 && receipt?.status !== 'anchored'; i++) {
      receipt = (await (await fetch(`${served.url}/v1/events/${id}/receipt`, { headers })).json()) as Receipt;
      if (receipt.status !== 'anchored') await new Promise((r) => setTimeout(r, 500));
    }
    expect(receipt!.status, `event ${id}`).toBe('anchored');
    expect(verifyReceipt(receipt).ok).toBe(true);
    const onChain = (await chain.readEpoch(receipt!.epoch!))!;
    expect(onChain.root).toBe(receipt!.root);
    expect(verifyReceipt(receipt, { root: onChain.root, size: onChain.size }).ok).toBe(true);
    expect(await chain.verifyEventOnChain(receipt!)).toBe(true);
    expect(await chain.verifyEventOnChain({ ...receipt!, event: { ...receipt!.event, units: receipt!.event.units + 1 } })).toBe(false);

    if (id === ids[0]) {
      const file = join(t.dir, 'receipt.json');
      writeFileSync(file, JSON.stringify(receipt));
      const cli = receipts(['verify', file, '--rpc', 'http://127.0.0.1:9000', '--onchain']);
      expect(cli.code, cli.stdout + cli.stderr).toBe(0);
      expect(cli.stdout).toMatch(/^valid: .*read from registry/);
      expect(cli.stdout).toMatch(/on chain: registry::verify_event returned true/);
    }
  }
  const health = (await (await fetch(`${served.url}/healthz`)).json()) as { checks: { anchoring: string } };
  expect(health.checks.anchoring).toBe('ok');
});

const epochs = (from: number, n: number): EpochToAnchor[] =>
  Array.from({ length: n }, (_, i) => ({ epoch: from + i, root: 'ab'.repeat(32), size: 10, first_ts_ms: 1, last_ts_ms: 2 }));

it('refuses an out-of-order anchor with the named Move error', async () => {
  const chain = new SuiChain(loadSuiConfig(publisherConfig, {}));
  const next = await chain.nextEpoch();
  const err = await chain.anchor(epochs(next + 5, 1)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MoveAbortError);
  expect((err as MoveAbortError).constantName).toBe('EEpochOutOfOrder');
  expect(await chain.nextEpoch()).toBe(next);
});

it('reports the gas of an anchor PTB of 1 epoch and of 10 epochs', async () => {
  const chain = new SuiChain(loadSuiConfig(publisherConfig, {}));
  const next = await chain.nextEpoch();
  const one = await chain.anchor(epochs(next, 1));
  const ten = await chain.anchor(epochs(next + 1, 10));
  const sui = (mist: bigint | undefined) => `${mist} MIST (${Number(mist) / 1e9} SUI)`;
  console.log(
    `gas: anchor PTB of 1 epoch: ${sui(one.gasMist)}; of 10 epochs: ${sui(ten.gasMist)}; per epoch in the batch: ${Number(ten.gasMist) / 10} MIST`,
  );
  expect(one.gasMist).toBeGreaterThan(0n);
  expect(ten.gasMist! / 10n).toBeLessThan(one.gasMist!);
  expect(await chain.nextEpoch()).toBe(next + 11);
});
