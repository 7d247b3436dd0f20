// Credentials must never be stored or logged. Metadata is free-form, so we scrub it:
// keys that name a credential and values that look like one are removed, and the
// removed paths are reported back to the caller.
//
// This is a security boundary that sees client text, so every scan here is linear in its
// input by construction: hand-written scanners over char codes that visit each character a
// bounded number of times (literal prefixes found with indexOf, runs scanned once), never a
// backtracking regular expression. Text is also matched after percent-decoding, since
// credentials often arrive inside logged URLs and form bodies where `\b`-style boundaries fail.

import { wordlist as BIP39_ENGLISH } from '@scure/bip39/wordlists/english.js';

/** Single words that, as a whole word of a key (or two adjacent words joined), name a credential. */
const SECRET_WORDS = new Set([
  'authorization',
  'auth',
  'cookie',
  'cookies',
  'token',
  'secret',
  'secrets',
  'password',
  'passwords',
  'passwd',
  'passphrase',
  'pwd',
  'credential',
  'credentials',
  'apikey',
  'apikeys',
  'privatekey',
  'privatekeys',
  'privkey',
  'delegatekey',
  'secretkey',
  'accesskey',
  'accesskeys',
  'signingkey',
  'sessionkey',
  'masterkey',
  'encryptionkey',
  'clientkey',
  'mnemonic',
  'mnemonics',
  'jwt',
  'bearer',
  'seedphrase',
  'seedwords',
  'walletseed',
  'privateseed',
  'recoveryphrase',
  'recoverywords',
  'recoverykey',
  'recoverycode',
  'recoverycodes',
  'backupphrase',
  'backupcode',
  'backupcodes',
]);

// ---------------------------------------------------------------------------------------------
// Character classes (char codes), so scanners never build regular expressions.

const isDigit = (c: number) => c >= 48 && c <= 57;
const isUpper = (c: number) => c >= 65 && c <= 90;
const isLower = (c: number) => c >= 97 && c <= 122;
const isAlnum = (c: number) => isDigit(c) || isUpper(c) || isLower(c);
const isUpperAlnum = (c: number) => isDigit(c) || isUpper(c);
/** base64url: A-Z a-z 0-9 - _ */
const isB64url = (c: number) => isAlnum(c) || c === 45 || c === 95;
/** base64: A-Z a-z 0-9 + / = */
const isB64 = (c: number) => isAlnum(c) || c === 43 || c === 47 || c === 61;
/** RFC 7235 token68 (what follows an HTTP auth scheme): A-Z a-z 0-9 - . _ ~ + / = */
const isToken68 = (c: number) => isAlnum(c) || c === 45 || c === 46 || c === 95 || c === 126 || c === 43 || c === 47 || c === 61;
/** A key name inside text: letters, digits, - and _ (not '.', so `auth.example.com:443` is a host, not a key). */
const isNameChar = (c: number) => isAlnum(c) || c === 45 || c === 95;
const isAlnumUnderscore = (c: number) => isAlnum(c) || c === 95;
const isAlnumDash = (c: number) => isAlnum(c) || c === 45;
const isAlnumDashDot = (c: number) => isAlnum(c) || c === 45 || c === 46 || c === 95;
const isHex = (c: number) => hexValue(c) >= 0;
const isLowerHex = (c: number) => isDigit(c) || (c >= 97 && c <= 102);
/** A query/cookie value as sent: base64 (std and url), percent escapes, `.` (signed cookies). */
const isParamValue = (c: number) => isB64url(c) || c === 43 || c === 47 || c === 61 || c === 37 || c === 46 || c === 126;
/** bech32 data characters (lowercased): qpzry9x8gf2tvdw0s3jn54khce6mua7l */
const isBech32 = (c: number) => (isDigit(c) && c !== 49) || (isLower(c) && c !== 98 && c !== 105 && c !== 111);
/** base58 (BIP32 extended keys). */
const isBase58 = (c: number) => isAlnum(c) && c !== 48 && c !== 79 && c !== 73 && c !== 108;
/** A space between words: whitespace, or `+` (a space in form-encoded text). */
const isGap = (c: number) => c === 43 || isSpace(c);
function isSpace(c: number): boolean {
  return (
    c === 32 ||
    (c >= 9 && c <= 13) ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** End of the run of `cls` characters starting at `i` (at most `limit` characters long). */
function runEnd(s: string, i: number, cls: (c: number) => boolean, limit = Infinity): number {
  const stop = Math.min(s.length, i + limit);
  while (i < stop && cls(s.charCodeAt(i))) i++;
  return i;
}

/** Whether `s[i]` starts a word: the previous character is not a letter or digit. */
const atBoundary = (s: string, i: number) => i === 0 || !isAlnum(s.charCodeAt(i - 1));

// ---------------------------------------------------------------------------------------------
// Decoding: credentials are matched in the text as sent and as it reads once decoded.

const utf8Lenient = new TextDecoder('utf-8');
const hexValue = (c: number) => (isDigit(c) ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);

/** One round of percent-decoding that never throws: malformed escapes stay as they are. */
function percentDecodeOnce(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s); // native and fast; throws on malformed escapes
  } catch {
    // decode what can be decoded, below
  }
  const parts: string[] = [];
  let last = 0;
  let i = s.indexOf('%');
  while (i >= 0) {
    const bytes: number[] = [];
    let j = i;
    while (j + 2 < s.length && s.charCodeAt(j) === 37) {
      const hi = hexValue(s.charCodeAt(j + 1));
      const lo = hexValue(s.charCodeAt(j + 2));
      if (hi < 0 || lo < 0) break;
      bytes.push(hi * 16 + lo);
      j += 3;
    }
    if (bytes.length > 0) {
      parts.push(
        s.slice(last, i),
        bytes.length === 1 && bytes[0]! < 0x80 ? String.fromCharCode(bytes[0]!) : utf8Lenient.decode(new Uint8Array(bytes)),
      );
      last = j;
      i = s.indexOf('%', j);
    } else i = s.indexOf('%', i + 1);
  }
  parts.push(s.slice(last));
  return parts.join('');
}

const MAX_DECODE_ROUNDS = 4;

/**
 * The forms a text is checked in: as sent, and percent-decoded (repeatedly, for double-encoded
 * text, up to 4 rounds). Form encoding's `+` for a space is handled by the scanners, which
 * accept `+` wherever they accept a space between words (`Bearer+abc…`, `token+=+…`).
 */
function forms(s: string): string[] {
  const out = [s];
  let decoded = s;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    const next = percentDecodeOnce(decoded);
    if (next === decoded) break;
    decoded = next;
  }
  if (decoded !== s) out.push(decoded);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Key names.

/**
 * Splits a key into lowercase words: `x-api-key` → [x, api, key], `privateKey` → [private, key],
 * `APIKey` → [api, key]. One pass over the characters.
 */
function words(key: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i <= key.length; i++) {
    const c = i < key.length ? key.charCodeAt(i) : 0;
    if (!isAlnum(c)) {
      if (start >= 0) out.push(key.slice(start, i).toLowerCase());
      start = -1;
      continue;
    }
    if (start < 0) start = i;
    else if (isUpper(c)) {
      const prev = key.charCodeAt(i - 1);
      const next = i + 1 < key.length ? key.charCodeAt(i + 1) : 0;
      // camelCase (`privateKey`) and the end of an acronym (`APIKey`: API | Key)
      if (isLower(prev) || isDigit(prev) || (isUpper(prev) && isLower(next))) {
        out.push(key.slice(start, i).toLowerCase());
        start = i;
      }
    }
  }
  return out;
}

/** Every secret word contains one of these: text without any of them names no credential. */
const SECRET_FRAGMENTS = [
  'auth',
  'cookie',
  'token',
  'secret',
  'pass',
  'pwd',
  'credential',
  'key',
  'mnemonic',
  'jwt',
  'bearer',
  'seed',
  'recovery',
  'backup',
];
for (const w of SECRET_WORDS) {
  if (!SECRET_FRAGMENTS.some((f) => w.includes(f))) throw new Error(`SECRET_FRAGMENTS misses the secret word ${w}`);
}
const mentionsSecretWord = (text: string) => {
  const lower = text.toLowerCase();
  return SECRET_FRAGMENTS.some((f) => lower.includes(f));
};

function namesSecretWords(key: string): boolean {
  if (!mentionsSecretWord(key)) return false; // the common case, without splitting
  const w = words(key);
  if (SECRET_WORDS.has(w.join(''))) return true;
  for (let i = 0; i < w.length; i++) {
    if (SECRET_WORDS.has(w[i]!)) return true;
    if (i + 1 < w.length && SECRET_WORDS.has(w[i]! + w[i + 1]!)) return true;
  }
  return false;
}

/**
 * Whether a key names a credential. Whole words only, so `prompt_tokens` (a usage figure)
 * is kept while `access_token`, `X-Api-Key`, `client_secret` and `seed_phrase` are removed.
 * Percent-encoded names (`x%2Dapi%2Dkey`) are read decoded.
 */
export function isSecretKey(key: string): boolean {
  return forms(key).some(namesSecretWords);
}

/** A short string that is a credential's name and nothing else, e.g. `X-Api-Key` in raw headers. */
function isCredentialName(s: string): boolean {
  if (s.length === 0 || s.length > 64) return false;
  let end = s.length;
  const last = s.charCodeAt(end - 1);
  if (last === 58 || last === 61) end--; // `Authorization:` / `token=`
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!(isAlnum(c) || c === 45 || c === 95 || c === 46 || c === 32 || c === 37)) return false;
  }
  return end > 0 && isSecretKey(s.slice(0, end));
}

// ---------------------------------------------------------------------------------------------
// Values. Each detector returns whether the text holds that kind of credential.

/** Private key blocks: PEM (`-----BEGIN RSA PRIVATE KEY-----`, OpenSSH, PKCS#8), PGP, PuTTY. */
function hasPrivateKeyMarker(s: string): boolean {
  for (const marker of ['-----BEGIN ', '-----END ']) {
    let from = 0;
    for (;;) {
      const at = s.indexOf(marker, from);
      if (at < 0) break;
      // The label is at most 64 characters: each occurrence costs a bounded amount.
      const start = at + marker.length;
      const end = runEnd(s, start, (c) => isUpperAlnum(c) || c === 32, 64);
      const label = s.slice(start, end);
      if (label.includes('PRIVATE KEY') || label.includes('SECRET KEY')) return true;
      from = at + 1;
    }
  }
  return s.includes('PuTTY-User-Key-File-');
}

/** A JWT (or JWS/JWE): base64url `eyJ…` header, `.`, payload, `.`. */
function hasJwt(s: string): boolean {
  let from = 0;
  for (;;) {
    const at = s.indexOf('eyJ', from);
    if (at < 0) return false;
    const headerEnd = runEnd(s, at, isB64url);
    if (headerEnd - at >= 7 && s.charCodeAt(headerEnd) === 46) {
      const payloadEnd = runEnd(s, headerEnd + 1, isB64url);
      if (payloadEnd - headerEnd - 1 >= 4 && s.charCodeAt(payloadEnd) === 46) return true;
    }
    // A later `eyJ` in the same run has a shorter header and the same continuation, so it
    // cannot match either: skip the run (this is what keeps `eyJa-eyJa-…` linear).
    from = headerEnd;
  }
}

/** A Sui bech32 private key, `suiprivkey1…` in either case. */
function hasSuiPrivateKey(s: string): boolean {
  const lower = s.toLowerCase();
  let from = 0;
  for (;;) {
    const at = lower.indexOf('suiprivkey1', from);
    if (at < 0) return false;
    const end = runEnd(lower, at + 11, isBech32, 20); // bounded look-ahead
    if (end - at - 11 >= 20) return true;
    from = at + 1;
  }
}

/** Our own API keys, `sr_<id>_<secret>`, anywhere (also glued to other text, as in `x_sr_…`). */
function hasOwnKey(s: string): boolean {
  let from = 0;
  for (;;) {
    const at = s.indexOf('sr_', from);
    if (at < 0) return false;
    // The id run holds no `_`, so id runs of different occurrences never overlap.
    const idEnd = runEnd(s, at + 3, isAlnum);
    if (idEnd - at - 3 >= 8 && s.charCodeAt(idEnd) === 95) {
      if (runEnd(s, idEnd + 1, isB64url, 20) - idEnd - 1 >= 20) return true;
    }
    from = at + 1;
  }
}

interface ProviderShape {
  prefix: string;
  body: (c: number) => boolean;
  min: number;
  /** A further test of the body run; must hold for a run only if it holds for every longer run. */
  check?: (run: string) => boolean;
}

const hasDigitAndUpper = (run: string) => {
  let digit = false;
  let upper = false;
  for (let i = 0; i < run.length && !(digit && upper); i++) {
    const c = run.charCodeAt(i);
    digit ||= isDigit(c);
    upper ||= isUpper(c);
  }
  return digit && upper;
};

/** Well-known provider key shapes; each needs a word boundary before its prefix. */
const PROVIDER_SHAPES: ProviderShape[] = [
  { prefix: 'AKIA', body: isUpperAlnum, min: 16 }, // AWS access key id
  { prefix: 'ASIA', body: isUpperAlnum, min: 16 }, // AWS temporary access key id
  ...['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'].map((prefix) => ({ prefix, body: isAlnum, min: 30 })), // GitHub
  { prefix: 'github_pat_', body: isAlnumUnderscore, min: 30 },
  ...['xoxb-', 'xoxp-', 'xoxa-', 'xoxr-', 'xoxs-', 'xoxe-', 'xapp-'].map((prefix) => ({ prefix, body: isAlnumDash, min: 10 })), // Slack
  ...['sk_live_', 'rk_live_', 'sk_test_', 'rk_test_', 'whsec_'].map((prefix) => ({ prefix, body: isAlnum, min: 10 })), // Stripe
  { prefix: 'sk-', body: isB64url, min: 20, check: hasDigitAndUpper }, // OpenAI (sk-…, sk-proj-…), Anthropic (sk-ant-…)
  { prefix: 'AIza', body: isB64url, min: 30 }, // Google API key
  { prefix: 'ya29.', body: isB64url, min: 20 }, // Google OAuth access token
  { prefix: 'glpat-', body: isB64url, min: 20 }, // GitLab
  { prefix: 'npm_', body: isAlnum, min: 36 }, // npm
  { prefix: 'hf_', body: isAlnum, min: 30 }, // Hugging Face
  { prefix: 'SG.', body: isAlnumDashDot, min: 40 }, // SendGrid
  { prefix: 'AGE-SECRET-KEY-1', body: isUpperAlnum, min: 20 }, // age
  { prefix: 'xprv', body: isBase58, min: 100 }, // BIP32 extended private key
  { prefix: 'tprv', body: isBase58, min: 100 },
  ...['hvs.', 'hvb.', 'hvr.'].map((prefix) => ({ prefix, body: isB64url, min: 24 })), // HashiCorp Vault service/batch/recovery tokens
  ...['dop_v1_', 'doo_v1_', 'dor_v1_'].map((prefix) => ({ prefix, body: isHex, min: 64 })), // DigitalOcean
  { prefix: 'pypi-', body: isB64url, min: 50, check: hasDigitAndUpper }, // PyPI (a macaroon, `pypi-AgEI…`)
  { prefix: 'SK', body: isLowerHex, min: 32 }, // Twilio API key SID (SK + 32 hex)
];

function hasProviderKey(s: string): boolean {
  for (const shape of PROVIDER_SHAPES) {
    if (s.length < shape.prefix.length + shape.min) continue; // most values are short
    let from = 0;
    for (;;) {
      const at = s.indexOf(shape.prefix, from);
      if (at < 0) break;
      if (!atBoundary(s, at)) {
        from = at + 1;
        continue;
      }
      const start = at + shape.prefix.length;
      const end = runEnd(s, start, shape.body);
      if (end - start >= shape.min && (!shape.check || shape.check(s.slice(start, end)))) return true;
      // An occurrence wholly inside this run sees a shorter run of the same characters: it
      // cannot match, so skip those (linear time); one that straddles the run's end is still tried.
      from = Math.max(end - shape.prefix.length + 1, at + 1);
    }
  }
  return false;
}

/**
 * Whether the token after an auth scheme looks like a credential rather than a word of prose:
 * `Token limit exceeded` and `Basic plan` stay, `Bearer abc123`, `Token AbCd` are credentials.
 */
function credentialish(tok: string): boolean {
  if (tok.length < 3) return false;
  let digit = false;
  let symbol = false;
  let lower = 0;
  let upperAfterFirst = false;
  for (let i = 0; i < tok.length; i++) {
    const c = tok.charCodeAt(i);
    if (isDigit(c)) digit = true;
    else if (isLower(c)) lower++;
    else if (isUpper(c)) upperAfterFirst ||= i > 0;
    else symbol = true;
  }
  if (digit || symbol) return true;
  if (lower > 0 && upperAfterFirst) return true; // mixed case beyond a capital: AbCdEf
  return tok.length >= 16; // a long single-case run of letters
}

/** base64 text that decodes to `user:password` (HTTP Basic). */
function decodesToUserPass(tok: string): boolean {
  if (tok.length < 4 || tok.length > 4096 || tok.length % 4 !== 0) return false;
  try {
    return atob(tok).includes(':');
  } catch {
    return false;
  }
}

type SchemeRule = 'bearer' | 'token' | 'basic' | 'params' | 'digest';
const AUTH_SCHEMES = new Map<string, SchemeRule>([
  ['bearer', 'bearer'],
  ['token', 'token'],
  ['apikey', 'token'],
  ['api-key', 'token'],
  ['negotiate', 'token'],
  ['ntlm', 'token'],
  ['dpop', 'token'],
  ['sso-key', 'token'],
  ['sharedkey', 'token'],
  ['basic', 'basic'],
  // HTTP Digest always carries `name=` parameters; `tx digest 8oZ7…` / `digest 0x…` is a Sui digest in prose.
  ['digest', 'digest'],
  ['oauth', 'params'],
  ['aws4-hmac-sha256', 'params'],
  ['signature', 'params'],
  ['hoba', 'params'],
  ['mutual', 'params'],
  ['scram-sha-1', 'params'],
  ['scram-sha-256', 'params'],
  ['vapid', 'params'],
  ['hawk', 'params'],
]);

/** HTTP authorization values: `Bearer …`, `Token …`, `Basic …`, `Digest username=…`, `ApiKey …`, … */
function hasAuthScheme(s: string): boolean {
  let i = 0;
  while (i < s.length) {
    if (!isAlnumDash(s.charCodeAt(i))) {
      i++;
      continue;
    }
    // One word (runs of words are disjoint), then its whitespace, then the token after it.
    const wordEnd = runEnd(s, i, isAlnumDash);
    const rule =
      wordEnd - i >= 4 && wordEnd - i <= 16 && atBoundary(s, i) ? AUTH_SCHEMES.get(s.slice(i, wordEnd).toLowerCase()) : undefined;
    if (rule) {
      const tokStart = runEnd(s, wordEnd, isGap);
      if (tokStart > wordEnd) {
        const tok = s.slice(tokStart, runEnd(s, tokStart, isToken68));
        // `Bearer` is rare in prose: any 8 token characters, or a shorter credential-like run.
        if (rule === 'bearer' && (tok.length >= 8 || credentialish(tok))) return true;
        if (rule === 'token' && credentialish(tok)) return true;
        if (
          rule === 'basic' &&
          ((credentialish(tok) && tok.length >= 8 && [...tok].every((ch) => isB64(ch.charCodeAt(0)))) || decodesToUserPass(tok))
        )
          return true;
        if (rule === 'params' && (tok.indexOf('=') > 0 || (credentialish(tok) && tok.length >= 8))) return true;
        if (rule === 'digest' && tok.indexOf('=') > 0) return true;
      }
    }
    i = wordEnd;
  }
  return false;
}

/**
 * `name=value` / `name: value` inside text where the name is a credential's: `password=hunter2`,
 * `Authorization: Basic …`, `"x-api-key":"…"`. A colon counts only after a quote or before a
 * space, so identifiers such as `auth:svc-1` or `urn:token:x` are not read as assignments.
 */
function hasSecretAssignment(s: string): boolean {
  let i = 0;
  while (i < s.length) {
    if (!isNameChar(s.charCodeAt(i))) {
      i++;
      continue;
    }
    const nameEnd = runEnd(s, i, isNameChar);
    const isHost = i >= 2 && s.charCodeAt(i - 1) === 47 && s.charCodeAt(i - 2) === 47; // http://auth:8080
    // After the name: an optional closing quote, spaces, `=` or `:`, spaces and quotes, a value.
    let j = nameEnd;
    if (s.charCodeAt(j) === 92) j++; // JSON inside a JSON string: {\"password\":\"…\"}
    const quoted = s.charCodeAt(j) === 34 || s.charCodeAt(j) === 39;
    if (quoted) j++;
    j = runEnd(s, j, isGap);
    const sep = s.charCodeAt(j);
    const after = s.charCodeAt(j + 1);
    const colon = sep === 58 && (quoted || j > nameEnd || isGap(after) || after === 34 || after === 92);
    if ((sep === 61 || colon) && nameEnd - i <= 64 && !isHost) {
      j = runEnd(s, j + 1, (c) => isGap(c) || c === 34 || c === 39 || c === 92);
      const v = s.charCodeAt(j);
      const hasValue = j < s.length && v !== 44 && v !== 59 && v !== 38 && v !== 125 && v !== 93;
      if (hasValue && nameEnd - i >= 3 && namesSecretWords(s.slice(i, nameEnd))) return true; // `pwd` is the shortest
    }
    i = nameEnd;
  }
  return false;
}

/** A URL with a password in it: `postgres://user:password@host`. */
function hasUrlPassword(s: string): boolean {
  let from = 0;
  for (;;) {
    const at = s.indexOf('://', from);
    if (at < 0) return false;
    // userinfo never holds `/`, so these runs never overlap (`://` contains one).
    const end = runEnd(s, at + 3, (c) => c !== 47 && c !== 63 && c !== 35 && c !== 64 && !isSpace(c));
    if (s.charCodeAt(end) === 64) {
      const colon = s.slice(at + 3, end).indexOf(':');
      if (colon >= 0 && at + 3 + colon < end - 1) return true;
    }
    from = at + 1;
  }
}

/** Whether a value (up to 32 characters of it) reads as random material: long enough, with a digit or mixed case. */
function randomish(s: string, start: number, min: number): boolean {
  const end = runEnd(s, start, isParamValue, 32); // bounded look-ahead: each name costs O(1) more
  if (end - start < min) return false;
  let digit = false;
  let lower = false;
  let upper = false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    digit ||= isDigit(c);
    lower ||= isLower(c);
    upper ||= isUpper(c);
  }
  return digit || (lower && upper);
}

type ParamKind = 'connection_string_key' | 'signed_url' | 'session_cookie';

/**
 * What a `name=` names when its value is a credential without a credential's name: a
 * connection string's `AccountKey` (Azure storage), a signed URL's signature (Azure SAS `sig`,
 * S3 and GCS presigned URLs), a session cookie (`session`, `_app_session`, `sessionid`,
 * `connect.sid`, `PHPSESSID`, `JSESSIONID`, `ASP.NET_SessionId`). `session_id` stays: it is a
 * common usage field (a chat session), and a cookie is never spelled that way.
 */
function paramKind(name: string): ParamKind | undefined {
  const n = name.toLowerCase();
  if (n === 'accountkey') return 'connection_string_key';
  if (n === 'sig' || n === 'x-amz-signature' || n === 'x-goog-signature') return 'signed_url';
  if (n === 'sid' || n.endsWith('session') || n.endsWith('sessionid') || n.endsWith('sessid')) return 'session_cookie';
  return undefined;
}

/** `AccountKey=…`, `sig=…`, `session=…` with a random-looking value of at least 16 characters. */
function paramCredential(s: string): ParamKind | undefined {
  let i = 0;
  while (i < s.length) {
    if (!isNameChar(s.charCodeAt(i))) {
      i++;
      continue;
    }
    // Name runs are disjoint, and each looks ahead a bounded distance: linear.
    const nameEnd = runEnd(s, i, isNameChar);
    const kind = nameEnd - i <= 32 ? paramKind(s.slice(i, nameEnd)) : undefined;
    if (kind) {
      let j = nameEnd;
      if (kind === 'connection_string_key') j = runEnd(s, j, isGap, 8); // `AccountKey = …` is accepted by the SDKs
      if (s.charCodeAt(j) === 61) {
        const start = kind === 'connection_string_key' ? runEnd(s, j + 1, isGap, 8) : j + 1;
        if (randomish(s, start, kind === 'connection_string_key' ? 20 : 16)) return kind;
      }
    }
    i = nameEnd;
  }
  return undefined;
}

/**
 * A whole value that is base64 of `user:password`, as in ~/.docker/config.json's `auth` (and a
 * `Basic` header without its scheme). Only a whole value: base64 inside prose is not decoded.
 * To keep ids such as GraphQL's `base64("User:123")` the password must be at least 6
 * characters and neither all digits nor a UUID; the user is a plain login name.
 */
function isBase64UserPass(s: string): boolean {
  const t = s.trim();
  if (t.length < 12 || t.length > 1024 || t.length % 4 !== 0) return false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (!isB64(c) || (c === 61 && i < t.length - 2)) return false;
  }
  let text: string;
  try {
    text = atob(t);
  } catch {
    return false;
  }
  const colon = text.indexOf(':');
  if (colon < 1 || colon > 128) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 32 || c >= 127) return false; // printable ASCII, no spaces: not a binary blob, not prose
    if (i < colon && !(isAlnumDashDot(c) || c === 64 || c === 43)) return false; // user: letters, digits, . _ - @ +
  }
  const password = text.slice(colon + 1);
  if (password.length < 6 || password.startsWith('//')) return false; // `https://…` is a URL
  let digits = true;
  for (let i = 0; i < password.length && digits; i++) digits = isDigit(password.charCodeAt(i));
  const uuid = password.length === 36 && [8, 13, 18, 23].every((k) => password.charCodeAt(k) === 45);
  return !digits && !uuid;
}

const BIP39_WORDS: ReadonlySet<string> = new Set(BIP39_ENGLISH);
/** The shortest mnemonic; any run this long of list words is flagged (a run of 13 holds 12). */
const MNEMONIC_MIN_WORDS = 12;
/** Between two words of a mnemonic: spaces, `,`, quotes, numbering such as `\n2. `: at most this many characters. */
const MNEMONIC_MAX_GAP = 8;
const isAsciiLetter = (c: number) => isUpper(c) || isLower(c);

/** Whether `s[start, end)` (ASCII letters) is a BIP-39 English word, in any case. */
function isBip39Word(s: string, start: number, end: number): boolean {
  return end - start >= 3 && end - start <= 8 && BIP39_WORDS.has(s.slice(start, end).toLowerCase());
}

/**
 * A BIP-39 mnemonic: 12 (15, 18, 21, 24) consecutive words of the English list. Prose almost
 * never strings 12 list words together: `the`, `a`, `of`, `is`, `to`, `and` are not in it.
 * The checksum is not required: a phrase with one wrong word is still most of a wallet.
 */
function hasMnemonic(s: string): boolean {
  if (s.length < MNEMONIC_MIN_WORDS * 4 - 1) return false;
  let count = 0;
  let i = 0;
  while (i < s.length) {
    // One run of letters, then the separator after it: every character is visited once.
    const end = runEnd(s, i, isAsciiLetter);
    if (end > i) {
      count = atBoundary(s, i) && (end === s.length || !isAlnum(s.charCodeAt(end))) && isBip39Word(s, i, end) ? count + 1 : 0;
      if (count >= MNEMONIC_MIN_WORDS) return true;
      i = end;
      continue;
    }
    const gapEnd = runEnd(s, i, (c) => !isAsciiLetter(c));
    let plain = gapEnd - i <= MNEMONIC_MAX_GAP;
    for (let k = i; k < gapEnd && plain; k++) {
      const c = s.charCodeAt(k);
      plain = c < 128 || isSpace(c); // `café` is not a list word followed by a gap
    }
    if (!plain) count = 0;
    i = gapEnd;
  }
  return false;
}

/** Words that, in a field's name, make a 32- or 64-byte hex value key material. */
const KEY_MATERIAL_WORDS = new Set([
  'seed',
  'sk',
  'priv',
  'private',
  'privkey',
  'privatekey',
  'prv',
  'secret',
  'secretkey',
  'keypair',
  'signing',
  'signingkey',
  'entropy',
  'mnemonic',
  'wif',
]);
/** Words that make it public data instead: a digest, an address, an id (they win over the above). */
const PUBLIC_HEX_WORDS = new Set([
  'digest',
  'hash',
  'sha',
  'sha256',
  'blake2b',
  'tx',
  'txn',
  'transaction',
  'address',
  'addr',
  'id',
  'object',
  'public',
  'pub',
  'pubkey',
  'publickey',
  'root',
  'checkpoint',
  'sender',
  'owner',
  'recipient',
  'package',
  'coin',
  'event',
  'block',
  'commitment',
  'merkle',
  'leaf',
  'nonce',
  'signature',
  'sig',
]);

/** Whether a field's name says a 32-byte hex under it is a private key (`seed`, `signer_sk`), not a digest. */
function namesKeyMaterial(name: string): boolean {
  if (name.length > 64) return false;
  const w = words(name);
  let key = false;
  for (let i = 0; i < w.length; i++) {
    if (PUBLIC_HEX_WORDS.has(w[i]!)) return false;
    key ||= KEY_MATERIAL_WORDS.has(w[i]!) || (i + 1 < w.length && KEY_MATERIAL_WORDS.has(w[i]! + w[i + 1]!));
  }
  return key;
}

/**
 * Each run of 64 or 128 hex digits (a 32-byte key or seed, a 64-byte expanded key), optionally
 * `0x`-prefixed, standing alone: `visit(start of the run, including 0x)` until it returns true.
 */
function someHexKeyRun(s: string, visit: (start: number) => boolean): boolean {
  let i = 0;
  while (i < s.length) {
    if (!isAlnum(s.charCodeAt(i))) {
      i++;
      continue;
    }
    const end = runEnd(s, i, isAlnum); // alnum runs are disjoint: linear
    const hexStart = s.charCodeAt(i) === 48 && (s.charCodeAt(i + 1) | 32) === 120 ? i + 2 : i;
    const len = end - hexStart;
    if ((len === 64 || len === 128) && runEnd(s, hexStart, isHex, len) === end && visit(i)) return true;
    i = end;
  }
  return false;
}

const hasHexKeyRun = (s: string) => someHexKeyRun(s, () => true);

/**
 * A 32-byte hex right after a name that says key material, in text: `seed=0x…`,
 * `"signer_sk":"0x…"`, `private key: …`. Sui addresses, object ids and digests are 32-byte hex
 * too, so a bare one (or one after `digest`, `tx`, `address`) is kept: see the README.
 */
function hasHexPrivateKey(s: string): boolean {
  return someHexKeyRun(s, (start) => {
    // Back over the separator (`=`, `:`, quotes, spaces; at most 8), then the name before it and
    // the word before that (`private key`): a bounded look-back per run.
    let j = start;
    const stop = Math.max(0, start - 8);
    while (j > stop && (isGap(s.charCodeAt(j - 1)) || [34, 39, 58, 61, 92].includes(s.charCodeAt(j - 1)))) j--;
    let nameStart = j;
    while (nameStart > 0 && j - nameStart < 64 && isNameChar(s.charCodeAt(nameStart - 1))) nameStart--;
    if (nameStart === j) return false;
    let from = nameStart;
    if (from >= 2 && s.charCodeAt(from - 1) === 32 && isNameChar(s.charCodeAt(from - 2))) {
      from--;
      while (from > 0 && nameStart - from < 32 && isNameChar(s.charCodeAt(from - 1))) from--;
    }
    return namesKeyMaterial(s.slice(from, j));
  });
}

/** A detector finds its kind (true), or names the kind it found (`paramCredential`: one scan for three kinds). */
const DETECTORS: Array<[string, (s: string) => boolean | string | undefined]> = [
  ['private_key_block', hasPrivateKeyMarker],
  ['jwt', hasJwt],
  ['sui_private_key', hasSuiPrivateKey],
  ['api_key', hasOwnKey],
  ['provider_key', hasProviderKey],
  ['authorization', hasAuthScheme],
  ['named_credential', hasSecretAssignment],
  ['url_password', hasUrlPassword],
  ['named_parameter', paramCredential], // connection_string_key, signed_url, session_cookie
  ['basic_credentials', isBase64UserPass],
  ['mnemonic', hasMnemonic],
  ['hex_private_key', hasHexPrivateKey],
];

/** The kind of credential a string holds (e.g. `jwt`, `authorization`), or undefined. */
export function secretKind(value: string): string | undefined {
  for (const form of forms(value)) {
    for (const [kind, detect] of DETECTORS) {
      const found = detect(form);
      if (found) return typeof found === 'string' ? found : kind;
    }
  }
  return undefined;
}

/** Whether a string value looks like a credential, wherever it sits in the string. */
export function looksLikeSecret(value: string): boolean {
  return secretKind(value) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// JSON.

export interface Redacted<T> {
  value: T;
  /** Dotted paths of what was removed, e.g. `metadata.headers.authorization`. */
  redacted: string[];
}

/** Deeper than this the scrubber drops the subtree instead of recursing (validation rejects far earlier). */
const HARD_DEPTH_LIMIT = 64;
/** Properties that, in `{name: "X-Api-Key", value: "…"}` (HAR, header lists), name their siblings. */
const NAMING_PROPS = new Set(['name', 'key', 'header', 'field', 'param', 'parameter', 'variable']);
const DROP = Symbol('drop');

/** A mnemonic split into an array, `["abandon", "ability", …]`: 12 consecutive elements that are list words. */
function hasMnemonicElements(v: unknown[]): boolean {
  if (v.length < MNEMONIC_MIN_WORDS) return false;
  let count = 0;
  for (const item of v) {
    const word = typeof item === 'string' ? item.trim() : '';
    count = runEnd(word, 0, isAsciiLetter) === word.length && isBip39Word(word, 0, word.length) ? count + 1 : 0;
    if (count >= MNEMONIC_MIN_WORDS) return true;
  }
  return false;
}

/**
 * Returns a copy of a JSON value with credentials removed:
 * - object keys that name a credential (`authorization`, `api_key`) or are one;
 * - strings that look like one (`Bearer …`, JWTs, provider keys, `password=…`);
 * - in arrays, a credential's name and the value after it (`["x-api-key", "…"]`, raw headers);
 * - in `{name: "authorization", value: "…"}`, everything beside the name;
 * - a whole array (or nested object) holding a private key's BEGIN/END line, since its other
 *   elements are the key material, and a whole array holding a mnemonic's words one per element;
 * - a 32-byte hex under a name that says key material (`seed`, `signer_sk`), not under `digest`.
 */
export function redactJson(value: unknown, path: string): Redacted<unknown> {
  const redacted: string[] = [];
  const walk = (v: unknown, at: string, depth: number): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (depth > HARD_DEPTH_LIMIT) return DROP;
    if (Array.isArray(v)) {
      if (v.some((item) => typeof item === 'string' && hasPrivateKeyMarker(item))) return DROP;
      if (hasMnemonicElements(v)) return DROP;
      const out: unknown[] = [];
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (typeof item === 'string' && i + 1 < v.length && isCredentialName(item)) {
          redacted.push(`${at}[${i}]`, `${at}[${i + 1}]`);
          i++;
          continue;
        }
        const kept = typeof item === 'string' && looksLikeSecret(item) ? DROP : walk(item, `${at}[${i}]`, depth + 1);
        if (kept === DROP) redacted.push(`${at}[${i}]`);
        else out.push(kept);
      }
      return out;
    }
    const entries = Object.entries(v);
    if (depth > 0 && entries.some(([, item]) => typeof item === 'string' && hasPrivateKeyMarker(item))) return DROP;
    const namer = entries.find(([k, item]) => NAMING_PROPS.has(k.toLowerCase()) && typeof item === 'string' && isCredentialName(item));
    const out: Record<string, unknown> = {};
    for (const [k, item] of entries) {
      const keyIsSecret = looksLikeSecret(k);
      // A key that is itself a credential is never echoed, not even in the report.
      const child = keyIsSecret ? `${at}.[redacted-key]` : `${at}.${k}`;
      if (namer && k !== namer[0]) {
        redacted.push(child);
        continue;
      }
      const keyMaterial = typeof item === 'string' && namesKeyMaterial(k) && hasHexKeyRun(item); // `seed: "0x…"`, not `digest: "…"`
      const kept =
        keyIsSecret || isSecretKey(k) || keyMaterial || (typeof item === 'string' && looksLikeSecret(item))
          ? DROP
          : walk(item, child, depth + 1);
      if (kept === DROP) redacted.push(child);
      else out[k] = kept;
    }
    return out;
  };
  const result = walk(value, path, 0);
  if (result === DROP) {
    redacted.push(path);
    return { value: Array.isArray(value) ? [] : {}, redacted };
  }
  return { value: result, redacted };
}

// ---------------------------------------------------------------------------------------------
// URLs, for the log.

const REDACTED = '[redacted]';

/** Past this many path segments or query parameters, a URL holding a credential is redacted whole. */
const MAX_URL_PARTS = 64;

/**
 * A URL for the log: path segments that hold a credential (or follow one that names a
 * credential, as in `/token/<value>`) and credential query parameters are replaced. The whole
 * path and query are checked first, so a URL of thousands of harmless parts costs one scan.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const pathPart = q < 0 ? url : url.slice(0, q);
  const path = needsRedaction(pathPart) ? redactPath(pathPart) : pathPart;
  if (q < 0) return path;
  const query = url.slice(q + 1);
  return `${path}?${needsRedaction(query) ? redactQuery(query) : query}`;
}

function needsRedaction(text: string): boolean {
  return looksLikeSecret(text) || forms(text).some(mentionsSecretWord);
}

function redactPath(path: string): string {
  const segments = path.split('/');
  if (segments.length > MAX_URL_PARTS) return REDACTED;
  const secret = segments.map(looksLikeSecret);
  return segments
    .map((seg, i) => {
      if (seg === '') return seg;
      // `/token/<value>`: a segment naming a credential (and not one itself) hides the next
      const named = i > 0 && !secret[i - 1] && isCredentialName(segments[i - 1]!);
      return secret[i] || named ? REDACTED : seg;
    })
    .join('/');
}

function redactQuery(query: string): string {
  const pairs = query.split('&');
  if (pairs.length > MAX_URL_PARTS) return REDACTED;
  return pairs
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      if (looksLikeSecret(rawName)) return REDACTED;
      const val = eq < 0 ? '' : pair.slice(eq + 1);
      return isSecretKey(rawName) || looksLikeSecret(val) ? `${rawName}=${REDACTED}` : pair;
    })
    .join('&');
}
