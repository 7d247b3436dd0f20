// The one home of hex: conversions and the 64-hex (32-byte) checks. Pure and browser-safe
// (the verifier and the page use it). The conversions are @noble/hashes' (native
// Uint8Array.toHex/fromHex where the runtime has them); hexToBytes throws on odd length or a
// non-hex character. Every pattern here is a fixed-length character class: linear time.
export { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

/** 32 bytes as 64 lowercase hex characters: the form this service writes (roots, leaf hashes). */
export const HEX64 = /^[0-9a-f]{64}$/;

/** 64 hex characters in either case: what it reads from people (digests, trusted roots). */
export const HEX64_ANY_CASE = /^[0-9a-fA-F]{64}$/;

/** An optional digest as the event API takes it: empty, or 64 hex characters in either case. */
export const HEX64_ANY_CASE_OR_EMPTY = /^(?:[0-9a-fA-F]{64})?$/;

/** 64 lowercase hex characters (the length is checked before the pattern runs). */
export function isHex64(v: unknown): v is string {
  return typeof v === 'string' && v.length === 64 && HEX64.test(v);
}

/** 64 hex characters in either case. */
export function isHex64AnyCase(v: unknown): v is string {
  return typeof v === 'string' && v.length === 64 && HEX64_ANY_CASE.test(v);
}
