// A ledger's location (serve's --db: a SQLite file or a postgres:// URL) as it may be shown: the
// one place that hides a database URL's credentials. Every log line, message and --help text
// that names a database goes through describeLocation (or redactUrlsIn for free text), so a
// password never reaches a log, a terminal or an error report. Pure: no I/O, no dependencies.
//
// Here rather than in src/event/redact.ts: that module scrubs what clients send (metadata,
// request URLs); this one is about where the ledger is, which only the ledger and the CLI know.

/** Whether a --db value names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(location);
}

/** Shown in place of a hidden value: says that one was given, never what it was. */
export const HIDDEN = '***';

/**
 * Query parameters whose value is hidden, any case: password, sslpassword (a secret), sslkey (where
 * the client's private key is), and anything naming a secret, token or key (libpq and pg options
 * such as passfile, krbsrvname aside, nothing secret is missed by naming it so broadly).
 */
const SECRET_PARAMETER = /pass|secret|token|key/i;
/** Parameters that hold a password itself: what warnPasswordInArgv warns about. */
const PASSWORD_PARAMETER = /pass/i;
/** `scheme://` at the start: a URL, whatever its scheme (a mistyped mysql:// URL is hidden too). */
const URL_START = /^[a-z][a-z0-9+.-]{0,31}:\/\//i;

/**
 * The location for logs and messages: a file path as it is; a URL with its user-info password
 * and secret query parameters replaced by ***, and its fragment dropped. A URL that does not
 * parse is not shown at all (its credentials could be anywhere in it).
 */
export function describeLocation(location: string): string {
  if (!URL_START.test(location)) return location;
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return `${location.slice(0, location.indexOf(':'))}://(unparsable URL, not shown)`;
  }
  if (url.password) url.password = HIDDEN;
  const hidden = [...url.searchParams.keys()].filter((k) => SECRET_PARAMETER.test(k));
  for (const k of new Set(hidden)) url.searchParams.set(k, HIDDEN);
  url.hash = '';
  return url.toString();
}

/**
 * Whether a URL carries a password: user:password@, or a password= / sslpassword= parameter (any
 * case, also percent-encoded). Read without the WHATWG parser, which refuses some URLs pg accepts.
 */
export function urlHasPassword(value: string): boolean {
  if (!URL_START.test(value)) return false;
  const rest = value.slice(value.indexOf('//') + 2);
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  if (at !== -1) {
    const colon = authority.indexOf(':');
    if (colon !== -1 && colon < at - 1) return true;
  }
  const q = value.indexOf('?');
  if (q === -1) return false;
  return [...new URLSearchParams(value.slice(q + 1).split('#')[0]).keys()].some((k) => PASSWORD_PARAMETER.test(k));
}

/**
 * Free text (an error message from a driver, say) with every URL in it shown as describeLocation
 * shows it. Linear: each `://` is found with indexOf, its scheme read backwards and its end
 * (whitespace or a quote) forwards, each character looked at a bounded number of times.
 */
/** A password in the user-info, or any query parameter whose name looks secret. */
function mayHoldCredentials(url: string): boolean {
  if (urlHasPassword(url)) return true;
  const q = url.indexOf('?');
  if (q === -1) return false;
  return url
    .slice(q + 1)
    .split(/[&#]/)
    .some((pair) => SECRET_PARAMETER.test(safeDecode(pair.split('=', 1)[0]!)));
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function redactUrlsIn(text: string): string {
  let out = '';
  let copied = 0;
  let sep = text.indexOf('://');
  while (sep !== -1) {
    const next = text.indexOf('://', sep + 3);
    let start = sep;
    while (start > copied && sep - start < 32 && /[a-z0-9+.-]/i.test(text[start - 1]!)) start--;
    while (start < sep && !/[a-z]/i.test(text[start]!)) start++; // a scheme starts with a letter
    // The URL ends at whitespace or a quote, or where the next URL's scheme begins.
    let limit = next === -1 ? text.length : next;
    while (limit > sep + 3 && next !== -1 && next - limit < 32 && /[a-z0-9+.-]/i.test(text[limit - 1]!)) limit--;
    let end = sep + 3;
    while (end < limit && !/[\s"'<>`]/.test(text[end]!)) end++;
    // Punctuation that closes the sentence around it is not part of the URL ("… http://host:1: failed").
    while (end > sep + 3 && /[.,;:!?)\]}]/.test(text[end - 1]!)) end--;
    if (start < sep) {
      // A URL with nothing to hide is left exactly as written (describeLocation would normalise it).
      const found = text.slice(start, end);
      out += text.slice(copied, start) + (mayHoldCredentials(found) ? describeLocation(found) : found);
      copied = end;
    }
    sep = next;
  }
  return out + text.slice(copied);
}
