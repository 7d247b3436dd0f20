// Localnet helpers: start `sui start`, fund a key, build and publish the Move package, create a
// registry, write the config `receipts serve --sui-config` reads. Used by `npm run localnet`
// and `npm run test:localnet`. Everything here needs the `sui` binary on PATH.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requestSuiFromFaucetV2, getFaucetHost } from '@mysten/sui/faucet';
import { SuiGrpcClient } from '@mysten/sui/grpc';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Transaction } from '@mysten/sui/transactions';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RPC_URL = 'http://127.0.0.1:9000';
export const FAUCET_URL = 'http://127.0.0.1:9123';

/** The `sui` binary on PATH, or null. */
export function findSui(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'sui');
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

const log = (s: string) => process.stderr.write(`localnet: ${s}\n`);

export interface Localnet {
  client: SuiGrpcClient;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a fresh localnet (new chain every time) and waits until the node and faucet answer. */
export async function startLocalnet(timeoutMs = 180_000): Promise<Localnet> {
  const dir = mkdtempSync(join(tmpdir(), 'receipts-localnet-'));
  log(`starting sui start --with-faucet --force-regenesis (in ${dir}) …`);
  const proc = spawn('sui', ['start', '--with-faucet', '--force-regenesis'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'error' },
  });
  let output = '';
  proc.stdout!.on('data', (d) => (output = (output + d).slice(-4000)));
  proc.stderr!.on('data', (d) => (output = (output + d).slice(-4000)));
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGINT');
      await new Promise((r) => proc.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const client = new SuiGrpcClient({ network: 'localnet', baseUrl: RPC_URL });
  const started = Date.now();
  // No readiness signal: the faucet answering OK, then a cheap RPC call.
  for (let shown = 0; ; ) {
    if (proc.exitCode !== null) throw new Error(`sui start exited with ${proc.exitCode}:\n${output}`);
    if (Date.now() - started > timeoutMs) {
      await stop();
      throw new Error(`localnet not ready after ${timeoutMs / 1000} s:\n${output}`);
    }
    try {
      const faucet = await fetch(`${FAUCET_URL}/`);
      if (faucet.ok) {
        await client.core.getChainIdentifier();
        log(`ready after ${Math.round((Date.now() - started) / 1000)} s`);
        return { client, process: proc, stop };
      }
    } catch {}
    const waited = Math.floor((Date.now() - started) / 10_000);
    if (waited > shown) {
      shown = waited;
      log(`still waiting for the node and faucet (${waited * 10} s) …`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** A new key with SUI from the faucet (retried: the faucet is up before it can pay). */
export async function fundedKey(client: SuiGrpcClient): Promise<Ed25519Keypair> {
  const key = Ed25519Keypair.generate();
  const recipient = key.toSuiAddress();
  for (let attempt = 1; ; attempt++) {
    try {
      await requestSuiFromFaucetV2({ host: getFaucetHost('localnet'), recipient });
      break;
    } catch (err) {
      if (attempt >= 20) throw new Error(`faucet would not pay ${recipient}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 1500));
    }
  }
  for (let i = 0; i < 60; i++) {
    const { balance } = await client.getBalance({ owner: recipient });
    if (BigInt(balance.balance) > 0n) return key;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no SUI arrived for ${recipient}`);
}

/** `sui move build --dump-bytecode-as-base64`: the modules and dependencies to publish. */
export function buildPackage(): { modules: string[]; dependencies: string[] } {
  log('building move/ …');
  const r = spawnSync('sui', ['move', 'build', '--dump-bytecode-as-base64', '--build-env', 'testnet', '--path', join(ROOT, 'move')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`sui move build failed:\n${r.stdout}\n${r.stderr}`);
  const text = r.stdout.slice(r.stdout.indexOf('{'), r.stdout.lastIndexOf('}') + 1);
  return JSON.parse(text);
}

async function execute(client: SuiGrpcClient, signer: Ed25519Keypair, tx: Transaction) {
  const result = await client.signAndExecuteTransaction({ transaction: tx, signer, include: { effects: true, objectTypes: true } });
  if (result.$kind === 'FailedTransaction') throw new Error(`transaction failed: ${result.FailedTransaction.status.error?.message}`);
  await client.waitForTransaction({ result });
  return result.Transaction;
}

export interface Deployment {
  packageId: string;
  registryId: string;
  registryInitialSharedVersion: string;
  capId: string;
}

/** Publishes move/ and returns the package with the registry and cap its init made for the publisher. */
export async function publish(client: SuiGrpcClient, signer: Ed25519Keypair): Promise<Deployment> {
  const built = buildPackage();
  log('publishing …');
  const tx = new Transaction();
  const [upgradeCap] = tx.publish({ modules: built.modules, dependencies: built.dependencies });
  tx.transferObjects([upgradeCap!], signer.toSuiAddress());
  const done = await execute(client, signer, tx);
  const changed = done.effects!.changedObjects;
  const packageId = changed.find((o) => o.outputState === 'PackageWrite')!.objectId;
  return { packageId, ...registryFrom(done.effects!.changedObjects, done.objectTypes!) };
}

/** A further registry of the same package (`registry::create_registry`), its cap sent to the signer. */
export async function createRegistry(client: SuiGrpcClient, signer: Ed25519Keypair, packageId: string): Promise<Deployment> {
  const tx = new Transaction();
  const [cap] = tx.moveCall({ target: `${packageId}::registry::create_registry` });
  tx.transferObjects([cap!], signer.toSuiAddress());
  const done = await execute(client, signer, tx);
  return { packageId, ...registryFrom(done.effects!.changedObjects, done.objectTypes!) };
}

function registryFrom(changed: Array<{ objectId: string; idOperation: string; outputOwner: unknown }>, types: Record<string, string>) {
  const created = changed.filter((o) => o.idOperation === 'Created');
  const registry = created.find((o) => types[o.objectId]?.endsWith('::registry::Registry'));
  const cap = created.find((o) => types[o.objectId]?.endsWith('::registry::AnchorCap'));
  if (!registry || !cap) throw new Error('no Registry and AnchorCap among the created objects');
  const owner = registry.outputOwner as { $kind: string; Shared?: { initialSharedVersion: string } };
  if (owner.$kind !== 'Shared') throw new Error('the Registry is not shared');
  return { registryId: registry.objectId, registryInitialSharedVersion: owner.Shared!.initialSharedVersion, capId: cap.objectId };
}

/** The file `receipts serve --sui-config` reads. It holds a localnet key: never use this for real funds. */
export function writeConfig(file: string, d: Deployment, signer: Ed25519Keypair): void {
  const config = {
    network: 'localnet',
    rpc_url: RPC_URL,
    package_id: d.packageId,
    registry_id: d.registryId,
    registry_initial_shared_version: d.registryInitialSharedVersion,
    cap_id: d.capId,
    private_key: signer.getSecretKey(),
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}
