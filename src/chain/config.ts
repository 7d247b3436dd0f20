// The Sui configuration `receipts serve --sui-config FILE` reads (written by `npm run localnet`).
// The signing key may sit in the file (localnet) or come from RECEIPTS_SUI_PRIVATE_KEY; it is
// never logged and never stored in the ledger.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const NETWORKS = ['localnet', 'devnet', 'testnet', 'mainnet'] as const;
export type Network = (typeof NETWORKS)[number];

export const DEFAULT_RPC: Record<Network, string> = {
  localnet: 'http://127.0.0.1:9000',
  devnet: 'https://fullnode.devnet.sui.io:443',
  testnet: 'https://fullnode.testnet.sui.io:443',
  mainnet: 'https://fullnode.mainnet.sui.io:443',
};

const objectId = z.string().regex(/^0x[0-9a-fA-F]{1,64}$/, 'must be a 0x-prefixed object id');

const configSchema = z.strictObject({
  network: z.enum(NETWORKS),
  rpc_url: z.url().optional(),
  package_id: objectId,
  registry_id: objectId,
  registry_initial_shared_version: z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform(String),
  cap_id: objectId,
  private_key: z.string().startsWith('suiprivkey1', 'must be a Bech32 Sui private key (suiprivkey1…)').optional(),
  gas_budget: z.number().int().positive().optional(),
});

export interface SuiConfig {
  network: Network;
  rpcUrl: string;
  packageId: string;
  registryId: string;
  registryInitialSharedVersion: string;
  capId: string;
  /** Absent for read-only use (verify). */
  privateKey?: string;
  gasBudget?: number;
}

export class ConfigError extends Error {}

/** Reads and checks a config file; errors name the file, the field and the rule. */
export function loadSuiConfig(file: string, env: NodeJS.ProcessEnv = process.env): SuiConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read the Sui config ${file}: ${(err as Error).message}; create it with \`npm run localnet\` or by hand (see README, "Anchoring on Sui")`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) =>
      i.code === 'unrecognized_keys' ? `unknown field ${i.keys.join(', ')}` : `${i.path.join('.') || '(file)'}: ${i.message}`,
    );
    throw new ConfigError(`the Sui config ${file} is not valid: ${problems.join('; ')}`);
  }
  const c = parsed.data;
  const privateKey = env.RECEIPTS_SUI_PRIVATE_KEY ?? c.private_key;
  if (privateKey !== undefined && !privateKey.startsWith('suiprivkey1')) {
    throw new ConfigError('RECEIPTS_SUI_PRIVATE_KEY must be a Bech32 Sui private key (suiprivkey1…)');
  }
  return {
    network: c.network,
    rpcUrl: c.rpc_url ?? DEFAULT_RPC[c.network],
    packageId: c.package_id,
    registryId: c.registry_id,
    registryInitialSharedVersion: c.registry_initial_shared_version,
    capId: c.cap_id,
    ...(privateKey !== undefined && { privateKey }),
    ...(c.gas_budget !== undefined && { gasBudget: c.gas_budget }),
  };
}
