// Bearer-key authentication, owned by the routes it protects. `protectedRoutes` is an
// encapsulated fastify plugin: its onRequest hook runs for every route registered inside it,
// whatever spelling of the path the router decoded to reach them (`/%761/events` is
// `/v1/events`), and before the body is read, so an anonymous client cannot make the server
// parse a megabyte of JSON. Access is decided by route, never by string tests on the raw URL.
// Each route names the key right it needs (`config: { right: 'read' }`); the same hook checks it,
// and a route registered here without one is refused at start-up, so none can forget.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyStore, Principal } from '../ledger/index.ts';
import { KEY_FORMAT, RIGHTS, type Right } from '../ledger/api-keys.ts';
import { ApiError, closeUnreadBody, sendError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The key right a route behind protectedRoutes needs (required there). */
    right?: Right;
  }
}

/** Longest Authorization header we look at; our keys are under 100 characters. */
const MAX_AUTHORIZATION_LENGTH = 1024;
/** An RFC 9110 token: what an auth-scheme is made of. */
const SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
/** sr_ + 12 + _ + 43: the length of every key (KEY_FORMAT). */
const KEY_LENGTH = 59;
const SEND = 'send Authorization: Bearer <key>';

/** A character of the header, named without echoing anything around it. */
function named(c: string): string {
  const cp = c.codePointAt(0)!;
  const names: Record<number, string> = { 32: 'a space', 9: 'a tab', 160: 'a no-break space' };
  return `${names[cp] ?? 'the character'} U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The key in an Authorization header, or why there is none (a sentence for the client, which
 * never repeats the key). The grammar is RFC 6750 §2.1 with RFC 9110 §11: `Bearer`, in any case
 * (an auth-scheme is case-insensitive), then one or more spaces (SP, not tabs or other
 * whitespace), then the key exactly as issued (`sr_<id>_<secret>`), and nothing else. Spaces or
 * tabs around the whole value are not part of it (RFC 9110 §5.5): the HTTP/1.1 parser removes
 * them before we see it; any that reach here are refused like every other character.
 */
export function bearerKey(header: string | undefined): { key: string } | { problem: string } {
  if (header === undefined || header === '') {
    return { problem: 'send an API key as Authorization: Bearer <key> (create one with `receipts keys create`)' };
  }
  if (header.length > MAX_AUTHORIZATION_LENGTH) return { problem: 'the Authorization header is too long to hold an API key' };
  const scheme = SCHEME.exec(header)?.[0];
  if (scheme === undefined)
    return { problem: `the Authorization header must start with the scheme Bearer, not ${named(header[0]!)}: ${SEND}` };
  if (scheme.startsWith('sr_')) return { problem: `the Authorization header has the key but no scheme: ${SEND}` };
  if (scheme.toLowerCase() !== 'bearer') return { problem: `the Authorization scheme must be Bearer, not ${scheme.slice(0, 20)}: ${SEND}` };
  let at = scheme.length;
  while (header[at] === ' ') at++;
  if (at === header.length) return { problem: `the Authorization header has the scheme Bearer but no key: ${SEND}` };
  if (at === scheme.length)
    return { problem: `the Authorization scheme and the key must be separated by a space (U+0020), not ${named(header[at]!)}: ${SEND}` };
  const credentials = header.slice(at);
  if (KEY_FORMAT.test(credentials)) return { key: credentials };
  if (credentials.length > KEY_LENGTH && KEY_FORMAT.test(credentials.slice(0, KEY_LENGTH))) {
    return {
      problem: `the Authorization header must be Bearer followed by one API key and nothing after it, but ${named(credentials[KEY_LENGTH]!)} follows the key`,
    };
  }
  return {
    problem:
      'the Authorization credentials are not an API key: a key is sr_, 12 lowercase letters or digits, _, and 43 characters of A-Z a-z 0-9 _ - (as `receipts keys create` printed it)',
  };
}

function refuse(request: FastifyRequest, reply: FastifyReply, message: string) {
  reply.header('www-authenticate', 'Bearer realm="sui-receipts"');
  closeUnreadBody(request, reply); // never drain a body for an anonymous client
  return sendError(reply, new ApiError('unauthorized', { problem: message }));
}

/**
 * Registers `routes` behind key authentication, in their own encapsulation context: every route
 * they add gets the hook, and nothing outside gets it.
 */
export function protectedRoutes(keys: KeyStore, routes: (app: FastifyInstance) => void) {
  return async function authenticated(app: FastifyInstance): Promise<void> {
    app.decorateRequest('principal', null);
    app.addHook('onRoute', (route) => {
      const right = route.config?.right;
      if (!(RIGHTS as readonly unknown[]).includes(right)) {
        const methods = [route.method].flat().join(',');
        throw new Error(
          `route ${methods} ${route.url} is behind the API key but declares no key right: add config: { right: ${RIGHTS.map((r) => `'${r}'`).join(' | ')} }` +
            (right === undefined ? '' : ` (it has ${JSON.stringify(right)})`),
        );
      }
    });
    app.addHook('onRequest', async (request, reply) => {
      const bearer = bearerKey(request.headers.authorization);
      if ('problem' in bearer) return refuse(request, reply, bearer.problem);
      const principal = await keys.authenticate(bearer.key);
      if (!principal) return refuse(request, reply, 'the API key is not valid or was revoked');
      request.principal = principal;
      // Still before the body is read: a key without the right never makes the server parse it.
      const right = request.routeOptions.config.right!;
      if (!principal.may(right)) {
        closeUnreadBody(request, reply);
        return sendError(reply, missingRight(request, principal, right));
      }
    });
    routes(app);
  };
}

function missingRight(request: FastifyRequest, principal: Principal, right: Right): ApiError {
  const has = [...principal.rights];
  const route = `${request.method} ${request.routeOptions.url ?? ''}`;
  return new ApiError('right_missing', { right, route, rights: has.length > 0 ? has.join(', ') : 'no rights' }, [
    { path: 'authorization', rule: `right:${right}`, message: `${route} needs the key right ${right}` },
  ]);
}

/** The authenticated principal of a protected request (auth has run). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principal missing: route registered outside protectedRoutes');
  return request.principal;
}
