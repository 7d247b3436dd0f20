// Which URLs a webhook may point at (issue 25). The service sends requests on its owner's behalf
// to addresses a client chose: without these checks a webhook reaches the service's own network
// (metadata endpoints, databases, admin ports). Only http(s), no credentials in the URL, and only
// public unicast addresses (ipaddr.js's range table: loopback, private, link-local, unique-local,
// CGNAT, multicast, reserved and the IPv6 forms that embed an IPv4 address are all refused),
// checked on the literal host, on every address a name resolves to when the webhook is created,
// and again at connect time by the lookup the request itself uses (guardedLookup): the socket
// connects to the address that was checked, so a name that resolves differently later (DNS
// rebinding) gains nothing. `allowPrivate` (serve --webhook-allow-private) lifts only the
// address rule, for receivers inside one's own network and for tests.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { MAX_WEBHOOK_URL_LENGTH, WebhookError } from '../ledger/webhooks.ts';

export interface UrlPolicy {
  /** Allow loopback, private and link-local targets (serve --webhook-allow-private). */
  allowPrivate: boolean;
}

/** dns.lookup's shape with { all: true }: every address of a name. */
export type Resolver = (host: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

const bad = (rule: string, message: string) => new WebhookError('url', rule, message);

/** Whether an IP address is a public unicast one (an IPv4-mapped IPv6 address is judged as its IPv4). */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  return ipaddr.process(address).range() === 'unicast';
}

/** The host of a URL as an IP literal (brackets removed), or null when it is a name. */
function ipLiteral(hostname: string): string | null {
  const h = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return ipaddr.isValid(h) && (h.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(h)) ? h : null;
}

/** Checks a webhook URL without the network: scheme, credentials, length, and an IP literal's range. */
export function checkWebhookUrl(text: string, policy: UrlPolicy): URL {
  if (typeof text !== 'string' || text.length < 1 || text.length > MAX_WEBHOOK_URL_LENGTH)
    throw bad(`max_length:${MAX_WEBHOOK_URL_LENGTH}`, `url must be 1 to ${MAX_WEBHOOK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad('url', 'url must be an absolute http or https URL, e.g. https://hooks.example.com/receipts');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw bad('scheme:http|https', `url must use http or https, not ${url.protocol.slice(0, -1).slice(0, 20)}`);
  if (url.username !== '' || url.password !== '')
    throw bad(
      'no_credentials',
      'url must not carry credentials (user:password@): each message is signed with the webhook secret, verify that instead',
    );
  if (url.hostname === '') throw bad('url', 'url must name a host');
  const literal = ipLiteral(url.hostname);
  if (literal !== null && !policy.allowPrivate && !isPublicAddress(literal))
    throw bad(
      'public_address',
      `url points at ${literal}, a ${ipaddr.process(literal).range()} address: webhooks go to public addresses only (serve --webhook-allow-private allows others)`,
    );
  return url;
}

/** The first address of `addresses` a webhook may not reach, or undefined when all are allowed. */
function refusedAmong(addresses: readonly LookupAddress[], policy: UrlPolicy): LookupAddress | undefined {
  return policy.allowPrivate ? undefined : addresses.find((a) => !isPublicAddress(a.address));
}

function refusalMessage(host: string, a: LookupAddress): string {
  const range = ipaddr.isValid(a.address) ? ipaddr.process(a.address).range() : 'invalid';
  return `${host} resolves to ${a.address}, a ${range} address: webhooks go to public addresses only (serve --webhook-allow-private allows others)`;
}

/**
 * checkWebhookUrl and, for a host name, its resolution now: every address must be allowed (a name
 * with one private address among public ones is refused: which one a connection gets is not ours
 * to choose). A name that does not resolve is refused too: the webhook could never be delivered.
 */
export async function checkWebhookTarget(text: string, policy: UrlPolicy, resolver: Resolver = systemResolver): Promise<URL> {
  const url = checkWebhookUrl(text, policy);
  if (ipLiteral(url.hostname) !== null) return url;
  let addresses: LookupAddress[];
  try {
    addresses = await resolver(url.hostname);
  } catch (err) {
    throw bad('resolves', `url's host ${url.hostname} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
  }
  if (addresses.length === 0) throw bad('resolves', `url's host ${url.hostname} does not resolve`);
  const refused = refusedAmong(addresses, policy);
  if (refused) throw bad('public_address', refusalMessage(url.hostname, refused));
  return url;
}

/** Why a connection was not made: the address check at connect time refused what the name resolved to. */
export class RefusedAddressError extends Error {
  readonly code = 'EWEBHOOKADDRESS';
  constructor(message: string) {
    super(message);
    this.name = 'RefusedAddressError';
  }
}

/**
 * A `lookup` for http.request: resolves the name with `resolver`, refuses it (before any
 * connection) when an address is not allowed, and hands the socket exactly the checked address.
 */
export function guardedLookup(policy: UrlPolicy, resolver: Resolver = systemResolver): LookupFunction {
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    resolver(hostname).then(
      (addresses) => {
        if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' }));
        const refused = refusedAmong(addresses, policy);
        if (refused) return callback(new RefusedAddressError(refusalMessage(hostname, refused)));
        if (options?.all) return callback(null, addresses);
        const first = addresses[0]!;
        return callback(null, first.address, first.family);
      },
      (err: unknown) => callback(err),
    );
  }) as LookupFunction;
}
