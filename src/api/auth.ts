// Bearer-key authentication for /v1. Runs on onRequest, before the body is read, so an
// unauthenticated client cannot make the server parse a megabyte of JSON.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../ledger/keys.ts';
import type { KeyStore } from '../ledger/keys.ts';
import { sendError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function installAuth(app: FastifyInstance, keys: KeyStore): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    const header = request.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const principal = m ? keys.authenticate(m[1]!) : null;
    if (!principal) {
      reply.header('www-authenticate', 'Bearer realm="sui-receipts"');
      return sendError(
        reply,
        401,
        'unauthorized',
        header ? 'the API key is not valid or was revoked' : 'send an API key as Authorization: Bearer <key> (create one with `receipts keys create`)',
      );
    }
    request.principal = principal;
  });
}

/** The authenticated principal of a /v1 request (auth has run). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principal missing: auth hook did not run');
  return request.principal;
}
