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

const objectId = z.string('must be a 0x-prefixed object id').regex(/^0x[0-9a-fA-F]{1,64}$/, 'must be a 0x-prefixed object id');

const configSchema = z.strictObject({
  network: z.enum(NETWORKS),
  rpc_url: z.url().optional(),
  package_id: objectId,
  registry_id: objectId,
  registry_initial_shared_version: z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform(String),
  cap_id: objectId,
  private_key: z
    .string('must be a Bech32 Sui private key (suiprivkey1…)')
    .startsWith('suiprivkey1', 'must be a Bech32 Sui private key (suiprivkey1…)')
    .optional(),
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
    throw new ConfigError(
      `cannot read the Sui config ${file}: ${(err as Error).message}; create it with \`npm run localnet\` or by hand (see README, "Anchoring on Sui")`,
    );
  }
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    // Sentences naming the field and the rule, never zod's own wording.
    const problems = parsed.error.issues.map((i) => {
      const field = i.path.join('.');
      if (i.code === 'unrecognized_keys')
        return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')} (known: ${Object.keys(configSchema.shape).join(', ')})`;
      if (!field) return 'the file must hold a JSON object';
      if (i.input === undefined) return `${field} is required`;
      if (i.code === 'invalid_value') return `${field} must be one of ${i.values.join(', ')}`;
      if (field === 'rpc_url') return 'rpc_url must be a URL, e.g. https://fullnode.testnet.sui.io:443';
      if (field === 'registry_initial_shared_version')
        return 'registry_initial_shared_version must be a non-negative integer (a number or a string of digits)';
      if (field === 'gas_budget') return 'gas_budget must be a positive integer (MIST)';
      return `${field}: ${i.message}`; // our own messages: "must be a 0x-prefixed object id", "must be a Bech32 Sui private key …"
    });
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
