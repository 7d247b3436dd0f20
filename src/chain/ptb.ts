// Programmable Transaction Blocks for the registry. Pure: no client needed when every object is
// given as a full reference (offline build, tests); the adapter passes ids and lets the client
// resolve them.
import { Transaction } from '@mysten/sui/transactions';
import { hexToBytes, isHex64 } from '../encoding/hex.ts';
import { CORRECTION_KIND_CODE } from '../event/leaf.ts';
import type { AnyReceipt } from '../receipt/format.ts';

export interface OwnedRef {
  objectId: string;
  version: string;
  digest: string;
}

export interface SharedRef {
  objectId: string;
  initialSharedVersion: string;
}

export interface EpochToAnchor {
  epoch: number;
  /** 64 hex characters. */
  root: string;
  size: number;
  first_ts_ms: number;
  last_ts_ms: number;
}

export interface GasSettings {
  sender: string;
  price: number | bigint;
  budget: number | bigint;
  payment: OwnedRef[];
}

/**
 * Most epochs in one PTB when catching up. Each anchor adds one table entry (a dynamic field),
 * one event and one command, against protocol limits of 1,000 dynamic fields, 1,024 events,
 * 1,024 commands and 128 KiB a transaction (~150 bytes an anchor): 50 stays far inside all.
 */
export const MAX_EPOCHS_PER_PTB = 50;

export function anchorTarget(packageId: string): string {
  return `${packageId}::registry::anchor`;
}

/** One `registry::anchor` call per epoch, in order, sharing the registry, cap and clock inputs. */
export function buildAnchorTransaction(params: {
  packageId: string;
  registry: SharedRef;
  cap: OwnedRef | string;
  epochs: EpochToAnchor[];
  gas?: GasSettings;
}): Transaction {
  const { epochs } = params;
  if (epochs.length === 0) throw new RangeError('no epoch to anchor');
  if (epochs.length > MAX_EPOCHS_PER_PTB)
    throw new RangeError(`at most ${MAX_EPOCHS_PER_PTB} epochs in one transaction, got ${epochs.length}`);
  epochs.forEach((e, i) => {
    if (i > 0 && e.epoch !== epochs[i - 1]!.epoch + 1)
      throw new RangeError(`epochs must be consecutive: ${epochs[i - 1]!.epoch} then ${e.epoch}`);
    if (!isHex64(e.root)) throw new RangeError(`epoch ${e.epoch}: root must be 64 lowercase hex characters`);
  });

  const tx = new Transaction();
  const registry = tx.sharedObjectRef({ ...params.registry, mutable: true });
  const cap = typeof params.cap === 'string' ? tx.object(params.cap) : tx.objectRef(params.cap);
  const clock = tx.object.clock();
  for (const e of epochs) {
    tx.moveCall({
      target: anchorTarget(params.packageId),
      arguments: [
        registry,
        cap,
        tx.pure.u64(e.epoch),
        tx.pure.vector('u8', hexToBytes(e.root)),
        tx.pure.u64(e.size),
        tx.pure.u64(e.first_ts_ms),
        tx.pure.u64(e.last_ts_ms),
        clock,
      ],
    });
  }
  if (params.gas) applyGas(tx, params.gas);
  return tx;
}

/** The Move function that checks a receipt: verify_event (leaf v1) or verify_correction (leaf v2). */
export const verifyFunctionOf = (r: AnyReceipt): 'verify_event' | 'verify_correction' =>
  r.version === 2 ? 'verify_correction' : 'verify_event';

/**
 * A read-only call of `registry::verify_event` for a sealed receipt v1, or of
 * `registry::verify_correction` for a receipt v2 (a correction: its kind and `corrects` after the
 * event's fields). Run it with simulateTransaction.
 */
export function buildVerifyEventTransaction(params: {
  packageId: string;
  registry: SharedRef;
  receipt: AnyReceipt;
  sender?: string;
}): Transaction {
  const r = params.receipt;
  if (r.epoch === null || r.leaf_index === null || r.proof === null)
    throw new RangeError('the receipt is pending: nothing to verify on chain yet');
  const tx = new Transaction();
  const fields = [
    tx.sharedObjectRef({ ...params.registry, mutable: false }),
    tx.pure.u64(r.epoch),
    tx.pure.string(r.event.namespace),
    tx.pure.string(r.event.request_id),
    tx.pure.string(r.event.caller),
    tx.pure.string(r.event.action),
    tx.pure.u64(r.event.units),
    tx.pure.vector('u8', r.event.artifact_digest === '' ? [] : hexToBytes(r.event.artifact_digest)),
    tx.pure.u64(r.event.ts_ms),
  ];
  if (r.version === 2) {
    const kind = Object.hasOwn(CORRECTION_KIND_CODE, r.event.kind) ? CORRECTION_KIND_CODE[r.event.kind] : undefined;
    if (kind === undefined) throw new RangeError(`event.kind must be "void" or "amend", got ${JSON.stringify(r.event.kind)?.slice(0, 40)}`);
    const corrects = String(r.event.corrects).toLowerCase();
    if (!isHex64(corrects)) throw new RangeError('event.corrects must be 64 hex characters');
    fields.push(tx.pure.u8(kind), tx.pure.vector('u8', hexToBytes(corrects)));
  }
  tx.moveCall({
    target: `${params.packageId}::registry::${verifyFunctionOf(r)}`,
    arguments: [
      ...fields,
      tx.pure.u64(r.leaf_index),
      tx.pure(
        'vector<vector<u8>>',
        r.proof.map((p) => Array.from(hexToBytes(p))),
      ),
    ],
  });
  if (params.sender) tx.setSender(params.sender);
  return tx;
}

function applyGas(tx: Transaction, gas: GasSettings): void {
  tx.setSender(gas.sender);
  tx.setGasPrice(gas.price);
  tx.setGasBudget(gas.budget);
  tx.setGasPayment(gas.payment);
}
