// npm run localnet: a fresh Sui localnet with the registry published, and a config for serve.
// Stops the network on Ctrl-C.
import { join } from 'node:path';
import { createRegistry, findSui, fundedKey, publish, ROOT, startLocalnet, writeConfig } from './localnet/lib.ts';

if (!findSui()) {
  console.error(
    'sui binary not found on PATH: install the Sui CLI (https://docs.sui.io/guides/developer/getting-started/sui-install), then run npm run localnet again',
  );
  process.exit(1);
}
const net = await startLocalnet();
const stop = async () => {
  console.error('\nlocalnet: stopping …');
  await net.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
try {
  const key = await fundedKey(net.client);
  const published = await publish(net.client, key);
  const deployment = await createRegistry(net.client, key, published.packageId);
  const file = join(ROOT, 'data', 'localnet.sui.json');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(ROOT, 'data'), { recursive: true });
  writeConfig(file, deployment, key);
  console.log(`
localnet is up (full node ${'http://127.0.0.1:9000'}, faucet http://127.0.0.1:9123)
  package   ${deployment.packageId}
  registry  ${deployment.registryId} (initial shared version ${deployment.registryInitialSharedVersion})
  cap       ${deployment.capId}, held by ${key.toSuiAddress()}
  config    ${file}   (holds the localnet key: never reuse it)

In another terminal:
  npm start -- --sui-config ${file}
  npm run -s receipts -- verify receipt.json --rpc http://127.0.0.1:9000 --onchain

Ctrl-C stops the network (every start is a new chain: new package and object ids).`);
} catch (err) {
  console.error(`localnet: ${(err as Error).message}`);
  await net.stop();
  process.exit(1);
}
