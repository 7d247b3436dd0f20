// `receipts verify --onchain` for a correction: the PTB calls registry::verify_correction with the
// argument order of the Move function (event fields, kind as u8, corrects, leaf index, proof),
// built offline to bytes and decoded back, for the golden amend and void (built without src/).
import { readFileSync } from 'node:fs';
import { bcs } from '@mysten/sui/bcs';
import { Transaction } from '@mysten/sui/transactions';
import { fromBase64, normalizeSuiAddress } from '@mysten/sui/utils';
import { describe, expect, it } from 'vitest';
import { buildVerifyEventTransaction, verifyFunctionOf } from '../../src/chain/ptb.ts';
import { bytesToHex } from '../../src/event/leaf.ts';
import type { AnyReceipt, ReceiptV2 } from '../../src/receipt/format.ts';

const PKG = normalizeSuiAddress('0x5ee');
const REGISTRY = { objectId: normalizeSuiAddress('0xa11'), initialSharedVersion: '17' };
const GAS = {
  sender: normalizeSuiAddress('0x5e4d'),
  price: 1000,
  budget: 50_000_000,
  payment: [{ objectId: normalizeSuiAddress('0x9a5'), version: '3', digest: '4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi' }],
};
const golden = JSON.parse(readFileSync(new URL('../vectors/golden-correction.json', import.meta.url), 'utf8')) as {
  amend: { receipt: ReceiptV2 };
  void: { receipt: ReceiptV2 };
};

async function call(receipt: AnyReceipt) {
  const tx = buildVerifyEventTransaction({ packageId: PKG, registry: REGISTRY, receipt, sender: GAS.sender });
  tx.setGasPrice(GAS.price);
  tx.setGasBudget(GAS.budget);
  tx.setGasPayment(GAS.payment);
  const data = Transaction.from(await tx.build()).getData();
  expect(data.commands).toHaveLength(1);
  const move = data.commands[0]!.MoveCall!;
  return { move, args: move.arguments.map((a) => data.inputs[(a as { Input: number }).Input]!) };
}
const pure = (input: { Pure?: { bytes: string } | null }) => fromBase64(input.Pure!.bytes);

describe('verify_correction PTB', () => {
  it.each([
    ['amend', 2],
    ['void', 1],
  ] as const)('a receipt v2 (%s) calls registry::verify_correction with every leaf v2 field in the Move order', async (which, code) => {
    const r = golden[which].receipt;
    expect(verifyFunctionOf(r)).toBe('verify_correction');
    const { move, args } = await call(r);
    expect(`${move.package}::${move.module}::${move.function}`).toBe(`${PKG}::registry::verify_correction`);
    expect(args).toHaveLength(13);
    expect(args[0]!.Object!.SharedObject!.mutable).toBe(false);
    expect(bcs.u64().parse(pure(args[1]!))).toBe(String(r.epoch));
    expect([2, 3, 4, 5].map((i) => bcs.string().parse(pure(args[i]!)))).toEqual([
      r.event.namespace,
      r.event.request_id,
      r.event.caller,
      r.event.action,
    ]);
    expect(bcs.u64().parse(pure(args[6]!))).toBe(String(r.event.units));
    expect(bytesToHex(Uint8Array.from(bcs.vector(bcs.u8()).parse(pure(args[7]!))))).toBe(r.event.artifact_digest);
    expect(bcs.u64().parse(pure(args[8]!))).toBe(String(r.event.ts_ms));
    expect(bcs.u8().parse(pure(args[9]!))).toBe(code);
    expect(bytesToHex(Uint8Array.from(bcs.vector(bcs.u8()).parse(pure(args[10]!))))).toBe(r.event.corrects);
    expect(bcs.u64().parse(pure(args[11]!))).toBe(String(r.leaf_index));
    const proof = bcs.vector(bcs.vector(bcs.u8())).parse(pure(args[12]!)) as unknown as number[][];
    expect(proof.map((p) => bytesToHex(Uint8Array.from(p)))).toEqual(r.proof);
  });

  it('a receipt v1 still calls verify_event, without kind or corrects', async () => {
    const { kind: _k, corrects: _c, ...event } = golden.amend.receipt.event;
    const v1 = { ...golden.amend.receipt, version: 1, event } as AnyReceipt;
    const { move, args } = await call(v1);
    expect(move.function).toBe('verify_event');
    expect(args).toHaveLength(11);
  });

  it('refuses a correction whose kind or corrects the Move function could not take', () => {
    const r = golden.void.receipt;
    const bad = (event: Record<string, unknown>) => ({ ...r, event: { ...r.event, ...event } }) as AnyReceipt;
    expect(() => buildVerifyEventTransaction({ packageId: PKG, registry: REGISTRY, receipt: bad({ kind: 'delete' }) })).toThrow(/kind/);
    expect(() => buildVerifyEventTransaction({ packageId: PKG, registry: REGISTRY, receipt: bad({ corrects: 'ab' }) })).toThrow(/corrects/);
  });
});
