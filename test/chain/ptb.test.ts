// The anchor and verify PTBs, built offline to bytes and decoded back.
import { bcs } from '@mysten/sui/bcs';
import { Transaction } from '@mysten/sui/transactions';
import { fromBase64, normalizeSuiAddress } from '@mysten/sui/utils';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../../src/event/leaf.ts';
import { buildAnchorTransaction, buildVerifyEventTransaction, MAX_EPOCHS_PER_PTB, type EpochToAnchor } from '../../src/chain/ptb.ts';
import type { Receipt } from '../../src/receipt/format.ts';

const PKG = normalizeSuiAddress('0x5ee');
const REGISTRY = { objectId: normalizeSuiAddress('0xa11'), initialSharedVersion: '17' };
const CAP = { objectId: normalizeSuiAddress('0xca9'), version: '42', digest: '4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi' };
const GAS = {
  sender: normalizeSuiAddress('0x5e4d'),
  price: 1000,
  budget: 50_000_000,
  payment: [{ objectId: normalizeSuiAddress('0x9a5'), version: '3', digest: '4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi' }],
};

const epochs = (from: number, n: number): EpochToAnchor[] =>
  Array.from({ length: n }, (_, i) => ({
    epoch: from + i,
    root: (from + i).toString(16).padStart(2, '0').repeat(32),
    size: 100 + i,
    first_ts_ms: 1_763_800_000_000 + i,
    last_ts_ms: 1_763_800_000_500 + i,
  }));

async function decode(tx: Transaction) {
  const bytes = await tx.build();
  return { bytes, data: Transaction.from(bytes).getData() };
}

const u64 = (input: { Pure?: { bytes: string } | null }) => bcs.u64().parse(fromBase64(input.Pure!.bytes));

describe('anchor PTB', () => {
  it('has one registry::anchor call per epoch with the epoch values, the registry shared and mutable, and the clock', async () => {
    const list = epochs(7, 3);
    const { data } = await decode(buildAnchorTransaction({ packageId: PKG, registry: REGISTRY, cap: CAP, epochs: list, gas: GAS }));
    expect(data.commands).toHaveLength(3);
    data.commands.forEach((cmd, i) => {
      const call = cmd.MoveCall!;
      expect([call.package, call.module, call.function]).toEqual([PKG, 'registry', 'anchor']);
      const args = call.arguments.map((a) => data.inputs[(a as { Input: number }).Input]!);
      expect(args[0]!.Object!.SharedObject).toEqual({ objectId: REGISTRY.objectId, initialSharedVersion: '17', mutable: true });
      expect(args[1]!.Object!.ImmOrOwnedObject).toEqual(CAP);
      expect(u64(args[2]!)).toBe(String(list[i]!.epoch));
      expect(bytesToHex(Uint8Array.from(bcs.vector(bcs.u8()).parse(fromBase64(args[3]!.Pure!.bytes))))).toBe(list[i]!.root);
      expect([u64(args[4]!), u64(args[5]!), u64(args[6]!)]).toEqual([
        String(list[i]!.size),
        String(list[i]!.first_ts_ms),
        String(list[i]!.last_ts_ms),
      ]);
      expect(args[7]!.Object!.SharedObject).toEqual({ objectId: normalizeSuiAddress('0x6'), initialSharedVersion: '1', mutable: false });
    });
    // The registry, cap and clock are one input each, shared by every call.
    expect(data.inputs.filter((i) => i.Object)).toHaveLength(3);
  });

  it('carries the explicit gas payment, price, budget and sender', async () => {
    const { data } = await decode(buildAnchorTransaction({ packageId: PKG, registry: REGISTRY, cap: CAP, epochs: epochs(0, 1), gas: GAS }));
    expect(data.sender).toBe(GAS.sender);
    expect(data.gasData).toMatchObject({ price: '1000', budget: '50000000', payment: GAS.payment });
  });

  it(`fits ${MAX_EPOCHS_PER_PTB} epochs far inside the 128 KiB and 1,024-command limits, and refuses more`, async () => {
    const { bytes, data } = await decode(
      buildAnchorTransaction({ packageId: PKG, registry: REGISTRY, cap: CAP, epochs: epochs(0, MAX_EPOCHS_PER_PTB), gas: GAS }),
    );
    expect(data.commands).toHaveLength(MAX_EPOCHS_PER_PTB);
    expect(bytes.length).toBeLessThan(16 * 1024);
    expect(() =>
      buildAnchorTransaction({ packageId: PKG, registry: REGISTRY, cap: CAP, epochs: epochs(0, MAX_EPOCHS_PER_PTB + 1) }),
    ).toThrow(/at most 50/);
  });

  it('refuses epochs that are not consecutive, a bad root, or none', () => {
    const bad = [...epochs(0, 1), ...epochs(2, 1)];
    expect(() => buildAnchorTransaction({ packageId: PKG, registry: REGISTRY, cap: CAP, epochs: bad })).toThrow(/consecutive: 0 then 2/);
    expect(() =>
      buildAnchorTransaction({ packageId: PKG, registry: REGISTRY, cap: CAP, epochs: [{ ...epochs(0, 1)[0]!, root: 'AB'.repeat(32) }] }),
    ).toThrow(/root/);
    expect(() => buildAnchorTransaction({ packageId: PKG, registry: REGISTRY, cap: CAP, epochs: [] })).toThrow(/no epoch/);
  });
});

describe('verify_event PTB', () => {
  const receipt: Receipt = {
    version: 1,
    status: 'anchored',
    leaf_hash: 'e8'.repeat(32),
    epoch: 3,
    leaf_index: 5,
    tree_size: 9,
    root: 'ff'.repeat(32),
    anchor: null,
    event: {
      namespace: 'acme/prod',
      request_id: 'req-42',
      caller: '0xabc',
      action: 'recall',
      units: 3,
      artifact_digest: 'ab'.repeat(32),
      ts_ms: 1763800000000,
    },
    proof: ['01'.repeat(32), '02'.repeat(32)],
  };

  it('passes every event field, the index and the proof, with the registry read-only', async () => {
    const tx = buildVerifyEventTransaction({ packageId: PKG, registry: REGISTRY, receipt });
    const { data } = await decode(
      (() => {
        tx.setSender(GAS.sender);
        tx.setGasPrice(GAS.price);
        tx.setGasBudget(GAS.budget);
        tx.setGasPayment(GAS.payment);
        return tx;
      })(),
    );
    const call = data.commands[0]!.MoveCall!;
    expect(call.function).toBe('verify_event');
    const args = call.arguments.map((a) => data.inputs[(a as { Input: number }).Input]!);
    expect(args[0]!.Object!.SharedObject!.mutable).toBe(false);
    expect(u64(args[1]!)).toBe('3');
    expect([2, 3, 4, 5].map((i) => bcs.string().parse(fromBase64(args[i]!.Pure!.bytes)))).toEqual([
      'acme/prod',
      'req-42',
      '0xabc',
      'recall',
    ]);
    expect([u64(args[6]!), u64(args[8]!), u64(args[9]!)]).toEqual(['3', '1763800000000', '5']);
    const proof = bcs.vector(bcs.vector(bcs.u8())).parse(fromBase64(args[10]!.Pure!.bytes)) as unknown as Uint8Array[];
    expect(proof.map((p) => bytesToHex(Uint8Array.from(p)))).toEqual(receipt.proof);
  });

  it('refuses a pending receipt', () => {
    expect(() =>
      buildVerifyEventTransaction({
        packageId: PKG,
        registry: REGISTRY,
        receipt: { ...receipt, status: 'pending', proof: null, epoch: null, leaf_index: null },
      }),
    ).toThrow(/pending/);
  });
});
