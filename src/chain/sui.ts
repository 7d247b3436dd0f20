// The AnchorChain over Sui's gRPC full-node API (@mysten/sui 2.x). Reads go straight to the
// registry object and its table; the anchor PTB is built and signed here, its digest handed
// to the anchorer before it is sent, and success means final (waitForTransaction).
import { bcs } from '@mysten/sui/bcs';
import { SuiGrpcClient } from '@mysten/sui/grpc';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { normalizeSuiAddress } from '@mysten/sui/utils';
import type { AnyReceipt } from '../receipt/format.ts';
import { MoveAbortError, type AnchorChain, type AnchoredEpoch, type AnchorSubmission } from './chain.ts';
import type { SuiConfig } from './config.ts';

/** What the adapter needs: a full SuiConfig to anchor; network, URL, package and registry to read. */
export type SuiTarget = Pick<SuiConfig, 'network' | 'rpcUrl' | 'packageId' | 'registryId'> & Partial<SuiConfig>;
import { buildAnchorTransaction, buildVerifyEventTransaction, type EpochToAnchor, verifyFunctionOf } from './ptb.ts';

/** move/sources/registry.move `Registry`: UID, Table { UID, size }, next_epoch, version. */
export const RegistryBcs = bcs.struct('Registry', {
  id: bcs.Address,
  epochs: bcs.struct('Table', { id: bcs.Address, size: bcs.u64() }),
  next_epoch: bcs.u64(),
  version: bcs.u64(),
});

/** move/sources/registry.move `EpochRecord`. */
export const EpochRecordBcs = bcs.struct('EpochRecord', {
  root: bcs.vector(bcs.u8()),
  size: bcs.u64(),
  first_ts_ms: bcs.u64(),
  last_ts_ms: bcs.u64(),
  anchored_at_ms: bcs.u64(),
});

export class SuiChain implements AnchorChain {
  readonly network: string;
  readonly packageId: string;
  readonly registryId: string;
  readonly client: SuiGrpcClient;
  private readonly config: SuiTarget;
  private readonly signer: Ed25519Keypair | undefined;
  private sharedVersion: string | undefined;

  constructor(config: SuiTarget) {
    this.config = config;
    this.network = config.network;
    this.packageId = normalizeSuiAddress(config.packageId);
    this.registryId = normalizeSuiAddress(config.registryId);
    this.client = new SuiGrpcClient({ network: config.network, baseUrl: config.rpcUrl });
    this.signer = config.privateKey ? Ed25519Keypair.fromSecretKey(config.privateKey) : undefined;
    this.sharedVersion = config.registryInitialSharedVersion;
  }

  /** The registry as a shared input: its initial shared version from the config, or from the chain. */
  private async registryRef() {
    if (!this.sharedVersion) {
      const { object } = await this.client.getObject({ objectId: this.registryId });
      if (object.owner.$kind !== 'Shared') throw new Error(`${this.registryId} is not a shared object: is it a sui-receipts registry?`);
      this.sharedVersion = object.owner.Shared.initialSharedVersion;
    }
    return { objectId: this.registryId, initialSharedVersion: this.sharedVersion };
  }

  get address(): string | undefined {
    return this.signer?.toSuiAddress();
  }

  private async registry() {
    const { object } = await this.client.getObject({ objectId: this.registryId, include: { content: true } });
    return RegistryBcs.parse(object.content);
  }

  async nextEpoch(): Promise<number> {
    return Number((await this.registry()).next_epoch);
  }

  async readEpoch(epoch: number): Promise<AnchoredEpoch | null> {
    const registry = await this.registry();
    if (epoch >= Number(registry.next_epoch)) return null;
    const { dynamicField } = await this.client.getDynamicField({
      parentId: registry.epochs.id,
      name: { type: 'u64', bcs: bcs.u64().serialize(epoch).toBytes() },
    });
    const record = EpochRecordBcs.parse(dynamicField.value.bcs);
    return { root: Buffer.from(record.root).toString('hex'), size: Number(record.size) };
  }

  async checkpointOf(digest: string): Promise<string | null> {
    try {
      const result = await this.client.getTransaction({ digest });
      return (result.Transaction ?? result.FailedTransaction)?.checkpoint ?? null;
    } catch (err) {
      if (/not ?found/i.test((err as Error).message)) return null;
      throw err;
    }
  }

  async anchor(epochs: EpochToAnchor[], hooks?: { beforeSend?: (digest: string) => void | Promise<void> }): Promise<AnchorSubmission> {
    if (!this.signer || !this.config.capId) {
      throw new MoveAbortError(
        'NotConfigured',
        'anchoring needs cap_id and a signing key (private_key in the Sui config, or RECEIPTS_SUI_PRIVATE_KEY)',
      );
    }
    const tx = buildAnchorTransaction({ packageId: this.packageId, registry: await this.registryRef(), cap: this.config.capId, epochs });
    tx.setSender(this.signer.toSuiAddress());
    if (this.config.gasBudget) tx.setGasBudget(this.config.gasBudget);
    const bytes = await tx.build({ client: this.client });
    const digest = await tx.getDigest({ client: this.client });
    const { signature } = await this.signer.signTransaction(bytes);
    await hooks?.beforeSend?.(digest);
    const result = await this.client.executeTransaction({ transaction: bytes, signatures: [signature], include: { effects: true } });
    if (result.$kind === 'FailedTransaction') {
      const error = result.FailedTransaction.status.error!;
      if (error.$kind === 'MoveAbort') {
        const name = error.MoveAbort.cleverError?.constantName ?? `abort code ${error.MoveAbort.abortCode}`;
        throw new MoveAbortError(name, error.message, digest);
      }
      throw new Error(`transaction ${digest} failed: ${error.message}`);
    }
    const final = await this.client.waitForTransaction({ digest, include: { effects: true } });
    const done = final.Transaction ?? final.FailedTransaction!;
    const gas = done.effects?.gasUsed;
    return {
      digest,
      checkpoint: done.checkpoint,
      ...(gas && { gasMist: BigInt(gas.computationCost) + BigInt(gas.storageCost) - BigInt(gas.storageRebate) }),
    };
  }

  /** Runs `registry::verify_event` (verify_correction for a receipt v2) without executing anything; returns its answer. */
  async verifyEventOnChain(receipt: AnyReceipt): Promise<boolean> {
    const tx = buildVerifyEventTransaction({
      packageId: this.packageId,
      registry: await this.registryRef(),
      receipt,
      sender: this.signer?.toSuiAddress() ?? normalizeSuiAddress('0x0'),
    });
    const result = await this.client.simulateTransaction({ transaction: tx, checksEnabled: false, include: { commandResults: true } });
    if (result.$kind === 'FailedTransaction')
      throw new Error(`${verifyFunctionOf(receipt)} could not run: ${result.FailedTransaction.status.error?.message}`);
    return bcs.bool().parse(result.commandResults![0]!.returnValues[0]!.bcs);
  }
}
