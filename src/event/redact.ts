// Credentials must never be stored or logged. Metadata is free-form, so we scrub it:
// keys that name a credential and values that look like one are removed, and the
// removed paths are reported back to the caller.

/** Single words that, as a whole word of a key, name a credential. */
const SECRET_WORDS = new Set([
  'authorization', 'auth', 'cookie', 'cookies', 'token', 'secret', 'secrets', 'password',
  'passwd', 'passphrase', 'pwd', 'credential', 'credentials', 'apikey', 'privatekey',
  'delegatekey', 'secretkey', 'accesskey', 'signingkey', 'sessionkey', 'mnemonic', 'jwt', 'bearer',
]);

/** Splits a key into lowercase words: `x-api-key` → [x, api, key], `privateKey` → [private, key]. */
function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/**
 * Whether a key names a credential. Whole words only, so `prompt_tokens` (a usage figure)
 * is kept while `access_token`, `X-Api-Key` and `client_secret` are removed.
 */
export function isSecretKey(key: string): boolean {
  const w = words(key);
  if (SECRET_WORDS.has(w.join(''))) return true;
  for (let i = 0; i < w.length; i++) {
    if (SECRET_WORDS.has(w[i]!)) return true;
    if (i + 1 < w.length && SECRET_WORDS.has(w[i]! + w[i + 1]!)) return true;
  }
  return false;
}

const SECRET_VALUE_PATTERNS: RegExp[] = [
  /\b(?:bearer|basic)\s+[A-Za-z0-9._~+/-]{8,}=*/i, // HTTP auth schemes
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/, // JWT (base64url JSON header)
  /suiprivkey1[02-9ac-hj-np-z]{20,}/i, // Sui bech32 private key
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/, // PEM private key
  /\bsr_[A-Za-z0-9]{8,}_[A-Za-z0-9_-]{20,}/, // our own API keys
];

/** Whether a string value looks like a credential, wherever it sits in the string. */
export function looksLikeSecret(value: string): boolean {
  return SECRET_VALUE_PATTERNS.some((re) => re.test(value));
}

export interface Redacted<T> {
  value: T;
  /** Dotted paths of what was removed, e.g. `metadata.headers.authorization`. */
  redacted: string[];
}

/** Returns a copy of a JSON value with credential-named keys and credential-like strings removed. */
export function redactJson(value: unknown, path: string): Redacted<unknown> {
  const redacted: string[] = [];
  const walk = (v: unknown, at: string): unknown => {
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      v.forEach((item, i) => {
        if (typeof item === 'string' && looksLikeSecret(item)) redacted.push(`${at}[${i}]`);
        else out.push(walk(item, `${at}[${i}]`));
      });
      return out;
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) {
        const child = `${at}.${k}`;
        if (isSecretKey(k) || (typeof item === 'string' && looksLikeSecret(item))) redacted.push(child);
        else out[k] = walk(item, child);
      }
      return out;
    }
    return v;
  };
  return { value: walk(value, path), redacted };
}

/** A URL for the log: values of credential-named query parameters are replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = decodeURIComponentSafe(eq < 0 ? pair : pair.slice(0, eq));
      const val = eq < 0 ? '' : decodeURIComponentSafe(pair.slice(eq + 1));
      return isSecretKey(name) || looksLikeSecret(val) ? `${pair.slice(0, eq < 0 ? pair.length : eq)}=[redacted]` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
