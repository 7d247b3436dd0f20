// Standard base64 (RFC 4648 §4, padded), strict: the only encoding signed-note and
// tlog-checkpoint use. Written out rather than Buffer (the verifier runs in browsers) and
// stricter than atob: no whitespace, padding required, unused trailing bits must be zero, so one
// value has exactly one text (a checkpoint's root line must not have two spellings).
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) INDEX[ALPHABET.charCodeAt(i)] = i;

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += `${ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!}==`;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += `${ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!}=`;
  }
  return out;
}

/** The bytes of canonical padded standard base64, or null for anything else (empty gives empty). */
export function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let at = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const digits = last ? 4 - pad : 4;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      let v = 0;
      if (j < digits) {
        const c = text.charCodeAt(i + j);
        v = c < 128 ? INDEX[c]! : -1;
        if (v < 0) return null;
      }
      n = (n << 6) | v;
    }
    if (digits === 2 && (n & 0xffff) !== 0) return null;
    if (digits === 3 && (n & 0xff) !== 0) return null;
    out[at++] = n >>> 16;
    if (digits > 2) out[at++] = (n >>> 8) & 0xff;
    if (digits > 3) out[at++] = n & 0xff;
  }
  return out;
}
