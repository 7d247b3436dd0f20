// Bearer-key authentication, owned by the routes it protects. `protectedRoutes` is an
// encapsulated fastify plugin: its onRequest hook runs for every route registered inside it,
// whatever spelling of the path the router decoded to reach them (`/%761/events` is
// `/v1/events`), and before the body is read, so an anonymous client cannot make the server
// parse a megabyte of JSON. Access is decided by route, never by string tests on the raw URL.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyStore, Principal } from '../ledger/index.ts';
import { ApiError, closeUnreadBody, sendError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Longest Authorization header we look at; our keys are under 100 characters. */
const MAX_AUTHORIZATION_LENGTH = 1024;

/** The key in an Authorization header, or why there is none (a sentence for the client). */
export function bearerKey(header: string | undefined): { key: string } | { problem: string } {
  if (header === undefined || header === '') {
    return { problem: 'send an API key as Authorization: Bearer <key> (create one with `receipts keys create`)' };
  }
  if (header.length > MAX_AUTHORIZATION_LENGTH) return { problem: 'the Authorization header is too long to hold an API key' };
  const value = header.trim();
  const space = value.search(/\s/);
  const scheme = space < 0 ? value : value.slice(0, space);
  if (space < 0) {
    return {
      problem: scheme.startsWith('sr_')
        ? 'the Authorization header has the key but no scheme: send Authorization: Bearer <key>'
        : 'the Authorization header must be Bearer <key>',
    };
  }
  if (scheme.toLowerCase() !== 'bearer') {
    return { problem: `the Authorization scheme must be Bearer, not ${scheme.slice(0, 20)}: send Authorization: Bearer <key>` };
  }
  const key = value.slice(space + 1).trim();
  if (key === '' || /\s/.test(key)) return { problem: 'the Authorization header must be Bearer followed by one API key' };
  return { key };
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
    app.addHook('onRequest', async (request, reply) => {
      const bearer = bearerKey(request.headers.authorization);
      if ('problem' in bearer) return refuse(request, reply, bearer.problem);
      const principal = await keys.authenticate(bearer.key);
      if (!principal) return refuse(request, reply, 'the API key is not valid or was revoked');
      request.principal = principal;
    });
    routes(app);
  };
}

/** The authenticated principal of a protected request (auth has run). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principal missing: route registered outside protectedRoutes');
  return request.principal;
}
