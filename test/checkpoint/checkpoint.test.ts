// C2SP tlog-checkpoint and tlog-cosignature (Ed25519, type 0x04), and the epoch header: fixed
// vectors made by an independent implementation (test/vectors/checkpoint/independent.py, Python
// `cryptography`), transparency-dev/formats' cosigner keys and timestamp, and the strict parsing
// rules. A drift in any byte fails here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bcs } from '@mysten/sui/bcs';
import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  cosignedMessage,
  cosigner,
  cosignerVerifierOf,
  decodeEpochHeader,
  ed25519Signer,
  encodeEpochHeader,
  epochLeafHash,
  formatCheckpoint,
  formatVerifierKey,
  fromBase64,
  openNote,
  parseCheckpoint,
  parseCosignerKey,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  signingKeyFromSeed,
  splitCosignature,
  splitNote,
  toBase64,
  verifierKeyOf,
  verifyCheckpoint,
} from '../../src/checkpoint/index.ts';

const vectors = (f: string) => JSON.parse(readFileSync(join(import.meta.dirname, '../vectors/checkpoint', f), 'utf8'));
const IND = vectors('independent.json');
const GO = vectors('signed-note.json');
const HEADERS = vectors('epoch-header.json');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    return (err as CheckpointError).code;
  }
  throw new Error('did not throw');
}

const logKey = parseSignerKey(IND.log.skey);
const witnessKey = parseSignerKey(IND.witness.skey);

describe('keys and a signed, cosigned checkpoint (independent implementation)', () => {
  it('derives the same skeys and vkeys from the same seeds', () => {
    expect(hex(logKey.seed)).toBe(IND.log.seed_hex);
    expect(verifierKeyOf(logKey)).toBe(IND.log.vkey);
    expect(verifierKeyOf(witnessKey)).toBe(IND.witness.vkey);
    expect(formatVerifierKey(cosignerVerifierOf(witnessKey))).toBe(IND.witness.cosigner_vkey);
    expect(verifierKeyOf(signingKeyFromSeed(IND.log.name, unhex(IND.log.seed_hex)))).toBe(IND.log.vkey);
  });

  it('formats the checkpoint body byte for byte, and parses it back', () => {
    const c = { origin: IND.checkpoint.origin, size: IND.checkpoint.size, root: unhex(IND.checkpoint.root_hex), extensions: [] };
    expect(formatCheckpoint(c)).toBe(IND.checkpoint.text);
    expect(parseCheckpoint(IND.checkpoint.text)).toEqual(c);
  });

  it('the cosigned message is "cosignature/v1\\ntime T\\n" + the body', () => {
    expect(new TextDecoder().decode(cosignedMessage(new TextEncoder().encode(IND.checkpoint.text), BigInt(IND.cosignature_time)))).toBe(
      IND.cosigned_message,
    );
  });

  it('signs and cosigns to the exact note, in the log-then-witness order', () => {
    const signed = signNote(IND.checkpoint.text, [ed25519Signer(logKey)]);
    const cosigned = signNote(IND.checkpoint.text, [cosigner(witnessKey, () => IND.cosignature_time)], splitNote(signed).signatures);
    expect(cosigned).toBe(IND.note);
  });

  it('verifies the checkpoint: log key required, witnesses counted with their timestamps', () => {
    const log = parseVerifierKey(IND.log.vkey);
    const v = verifyCheckpoint(IND.note, log, { witnesses: [parseCosignerKey(IND.witness.cosigner_vkey)], minWitnesses: 1 });
    expect(v.checkpoint.size).toBe(3);
    expect(hex(v.checkpoint.root)).toBe(IND.checkpoint.root_hex);
    expect(v.cosignatures.map((s) => [s.name, s.timestamp])).toEqual([[IND.witness.name, IND.cosignature_time]]);
    // The witness's type 0x01 vkey (what signing-key create printed) is accepted as its cosigner key.
    expect(verifyCheckpoint(IND.note, log, { witnesses: [parseCosignerKey(IND.witness.vkey)], minWitnesses: 1 }).cosignatures).toHaveLength(
      1,
    );
    // Without the witness given, its line is ignored.
    expect(verifyCheckpoint(IND.note, log).unverified.map((s) => s.name)).toEqual([IND.witness.name]);
  });

  it('refuses: too few witnesses, another log key, witnesses alone, an origin that is not the key name, a tampered body', () => {
    const log = parseVerifierKey(IND.log.vkey);
    const witness = parseCosignerKey(IND.witness.vkey);
    expect(codeOf(() => verifyCheckpoint(IND.note, log, { witnesses: [witness], minWitnesses: 2 }))).toBe('too_few_cosignatures');
    const other = signingKeyFromSeed(IND.log.name, new Uint8Array(32).fill(7));
    expect(codeOf(() => verifyCheckpoint(IND.note, parseVerifierKey(verifierKeyOf(other))))).toBe('missing_log_signature');
    expect(codeOf(() => verifyCheckpoint(IND.note, parseVerifierKey(verifierKeyOf(other)), { witnesses: [witness] }))).toBe(
      'missing_log_signature',
    );
    const elsewhere = signingKeyFromSeed('elsewhere.example', logKey.seed);
    expect(
      codeOf(() => verifyCheckpoint(signNote(IND.checkpoint.text, [ed25519Signer(elsewhere)]), parseVerifierKey(verifierKeyOf(elsewhere)))),
    ).toBe('origin_mismatch');
    const tampered = IND.note.replace('\n3\n', '\n4\n');
    expect(codeOf(() => verifyCheckpoint(tampered, log))).toBe('invalid_signature');
  });

  it('a type 0x01 verifier does not accept a cosignature, nor a cosigner verifier a plain signature', () => {
    const cosigned = signNote(IND.checkpoint.text, [cosigner(witnessKey, () => 1)]);
    expect(codeOf(() => openNote(cosigned, [parseVerifierKey(IND.witness.vkey)]))).toBe('no_known_signature');
    const plain = signNote(IND.checkpoint.text, [ed25519Signer(witnessKey)]);
    expect(codeOf(() => openNote(plain, [parseCosignerKey(IND.witness.vkey)]))).toBe('no_known_signature');
  });
});

describe('tlog-cosignature (transparency-dev/formats vectors)', () => {
  it('accepts cosigner keys of type 0x01 (converted) and 0x04, refuses malformed ones', () => {
    const converted = parseCosignerKey(GO.cosigv1.from_ed25519_vkey);
    expect(converted.type).toBe(4);
    expect(formatVerifierKey(converted)).toMatch(/^TEST\+[0-9a-f]{8}\+B/);
    expect(parseCosignerKey(GO.cosigv1.native_vkey).keyId).toBe(0xda77ade7);
    for (const bad of GO.cosigv1.bad_vkeys) expect(() => parseCosignerKey(bad)).toThrow(CheckpointError);
  });

  it('reads a cosignature timestamp, and refuses a plain signature as one', () => {
    const raw = fromBase64(GO.cosigv1.timestamped_signature)!;
    expect(splitCosignature(raw.subarray(4))!.time).toBe(BigInt(GO.cosigv1.timestamp));
    expect(splitCosignature(fromBase64(GO.cosigv1.plain_ed25519_signature)!.subarray(4))).toBeNull();
    const past = new Uint8Array(72).fill(0xff);
    expect(splitCosignature(past)).toBeNull(); // 2^64 − 1 is past 2^63 − 1
    expect(codeOf(() => cosigner(witnessKey, () => -1n).sign(new Uint8Array(1)))).toBe('malformed_cosignature');
  });
});

describe('checkpoint parsing is strict (tlog-checkpoint)', () => {
  const root = toBase64(new Uint8Array(32).fill(1));
  it.each([
    ['no final newline', `o\n1\n${root}`],
    ['two lines', `o\n1\n`],
    ['empty origin', `\n1\n${root}\n`],
    ['leading zero', `o\n01\n${root}\n`],
    ['sign', `o\n+1\n${root}\n`],
    ['not decimal', `o\n1e3\n${root}\n`],
    ['past 2^53 − 1', `o\n9007199254740992\n${root}\n`],
    ['21 digits', `o\n${'9'.repeat(21)}\n${root}\n`],
    ['root of 31 bytes', `o\n1\n${toBase64(new Uint8Array(31))}\n`],
    ['root unpadded', `o\n1\n${root.replace(/=+$/, '')}\n`],
    ['root with non-zero trailing bits', `o\n1\n${root.slice(0, 42)}B=\n`],
    ['empty extension line', `o\n1\n${root}\next\n\n`],
  ])('refuses %s', (_, text) => {
    expect(codeOf(() => parseCheckpoint(text))).toBe('malformed_checkpoint');
  });

  it('keeps extension lines and a size of 0', () => {
    expect(parseCheckpoint(`o\n0\n${root}\nextra one\n`)).toMatchObject({ origin: 'o', size: 0, extensions: ['extra one'] });
    expect(formatCheckpoint({ origin: 'o', size: 0, root: new Uint8Array(32).fill(1), extensions: ['extra one'] })).toBe(
      `o\n0\n${root}\nextra one\n`,
    );
  });
});

interface HeaderCase {
  epoch: number;
  root: string;
  size: number;
  first_ts_ms: number;
  last_ts_ms: number;
  header_hex: string;
  epoch_leaf_hash: string;
}

describe('epoch header (BCS) and epoch_leaf_hash', () => {
  const EpochHeaderBcs = bcs.struct('EpochHeaderV1', {
    version: bcs.u8(),
    epoch: bcs.u64(),
    root: bcs.vector(bcs.u8()),
    size: bcs.u64(),
    first_ts_ms: bcs.u64(),
    last_ts_ms: bcs.u64(),
  });

  it.each(HEADERS.cases as HeaderCase[])('epoch $epoch: bytes and leaf hash as fixed, equal to bcs.struct', (c) => {
    const h = { epoch: c.epoch, root: unhex(c.root), size: c.size, first_ts_ms: c.first_ts_ms, last_ts_ms: c.last_ts_ms };
    const bytes = encodeEpochHeader(h);
    expect(hex(bytes)).toBe(c.header_hex);
    expect(hex(EpochHeaderBcs.serialize({ version: 1, ...h, root: [...h.root] }).toBytes())).toBe(c.header_hex);
    expect(hex(epochLeafHash(h))).toBe(c.epoch_leaf_hash);
    expect(decodeEpochHeader(bytes)).toEqual(h);
  });

  it('refuses fields out of range and bytes that are not one header', () => {
    const h = { epoch: 1, root: new Uint8Array(32), size: 1, first_ts_ms: 0, last_ts_ms: 0 };
    expect(codeOf(() => encodeEpochHeader({ ...h, root: new Uint8Array(31) }))).toBe('malformed_epoch_header');
    expect(codeOf(() => encodeEpochHeader({ ...h, size: -1 }))).toBe('malformed_epoch_header');
    expect(codeOf(() => encodeEpochHeader({ ...h, epoch: 2 ** 53 }))).toBe('malformed_epoch_header');
    const bytes = encodeEpochHeader(h);
    expect(codeOf(() => decodeEpochHeader(bytes.subarray(1)))).toBe('malformed_epoch_header');
    expect(codeOf(() => decodeEpochHeader(Uint8Array.from([2, ...bytes.subarray(1)])))).toBe('malformed_epoch_header');
  });
});
