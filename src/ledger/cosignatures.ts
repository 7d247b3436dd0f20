// Witness cosignatures of the epoch log's checkpoints, as both engines store them: one row per
// (checkpoint size, witness), the first one received kept. The checks here refuse what could
// never be served back as a signature line (the submitter verifies each one before storing it).
import type { StoredCosignature } from './types.ts';

export const COSIGNATURE_COLUMNS = 'size, witness, line, cosigned_at, received_at';

export interface CosignatureRow {
  size: number | string;
  witness: string;
  line: string;
  cosigned_at: number | string;
  received_at: number | string;
}

const SIGNATURE_LINE = /^\u2014 [^\s+]{1,256} [A-Za-z0-9+/]{4,1700}={0,2}$/;

/** Refuses a cosignature that is not one: each field named with its rule. */
export function checkCosignature(c: StoredCosignature): void {
  const bad = (field: string, rule: string) => {
    throw new RangeError(`cosignature ${field}: ${rule}`);
  };
  if (!Number.isSafeInteger(c.size) || c.size < 1) bad('size', `must be a checkpoint size 1 … 2^53 − 1, not ${c.size}`);
  if (typeof c.witness !== 'string' || c.witness.length < 1 || c.witness.length > 1024 || /\s/.test(c.witness))
    bad('witness', 'must be a verifier key (1 … 1024 characters, no white space)');
  if (typeof c.line !== 'string' || c.line.length > 2048 || !SIGNATURE_LINE.test(c.line))
    bad('line', 'must be one signature line "— <name> <base64>" without its newline');
  if (!Number.isSafeInteger(c.cosigned_at) || c.cosigned_at < 0) bad('cosigned_at', 'must be Unix seconds 0 … 2^53 − 1');
  if (!Number.isSafeInteger(c.received_at_ms) || c.received_at_ms < 0) bad('received_at_ms', 'must be epoch ms 0 … 2^53 − 1');
}

export function cosignatureOf(r: CosignatureRow): StoredCosignature {
  return {
    size: Number(r.size),
    witness: r.witness,
    line: r.line,
    cosigned_at: Number(r.cosigned_at),
    received_at_ms: Number(r.received_at),
  };
}

/** A checkpoint's note with its cosignature lines appended (tlog-witness: a client may concatenate them). */
export function withCosignatures(note: string, cosignatures: readonly StoredCosignature[]): string {
  return note + cosignatures.map((c) => `${c.line}\n`).join('');
}
