// Limits that keep slow or hostile clients from holding the server's memory. A body is buffered
// whole before it is parsed, so the bodies being received at once are budgeted by the bytes their
// headers announce (a chunked body counts as the largest allowed); past the budget a request is
// refused with 503 and Retry-After. Node's own deadlines (server.ts) close sockets whose headers,
// body or silence take too long, which gives the budget back.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, closeUnreadBody, sendError } from './errors.ts';
import type { Metrics } from './metrics.ts';

export interface RequestLimits {
  /** The request headers must arrive within this. */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (1 MiB at 35 KB/s). */
  requestTimeoutMs: number;
  /** A socket with no traffic for this long is closed. */
  idleTimeoutMs: number;
  /** How often Node checks the headers and request deadlines. */
  checkIntervalMs: number;
  /** Bytes of request bodies being received at once. */
  maxBodyBytesInFlight: number;
  /** Of those, how many one API key may hold, so one slow tenant cannot starve the others. */
  maxBodyBytesInFlightPerKey: number;
}

export const REQUEST_LIMITS: RequestLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  checkIntervalMs: 1_000,
  // Inside a 256 MB heap: 64 bodies of the largest size at once, 16 of them for one key.
  maxBodyBytesInFlight: 64 * 1024 * 1024,
  maxBodyBytesInFlightPerKey: 16 * 1024 * 1024,
};

const IN_FLIGHT = Symbol('bodyInFlight');
/** What a request holds while its body is received: whose budget ('' without a key), how much. */
type Tracked = FastifyRequest & { [IN_FLIGHT]?: { holder: string; bytes: number } | undefined };

/** The bytes a body may take: what content-length announces, or the limit for a chunked one. */
function announcedBytes(request: FastifyRequest, bodyLimit: number): number {
  if (request.headers['transfer-encoding'] !== undefined) return bodyLimit;
  const length = request.headers['content-length'];
  if (length === undefined) return 0;
  const n = Number(length);
  return Number.isSafeInteger(n) && n >= 0 ? Math.min(n, bodyLimit) : bodyLimit;
}

export function installRequestLimits(app: FastifyInstance, limits: RequestLimits, metrics: Metrics): void {
  let inFlight = 0;
  const perKey = new Map<string, number>();
  const release = (request: Tracked) => {
    const held = request[IN_FLIGHT];
    if (held === undefined) return;
    request[IN_FLIGHT] = undefined;
    inFlight -= held.bytes;
    const left = perKey.get(held.holder)! - held.bytes;
    if (left === 0) perKey.delete(held.holder);
    else perKey.set(held.holder, left);
    metrics.bodyBytesInFlight.set(inFlight);
  };
  // preParsing runs after every onRequest hook (authentication included) and before the body is read.
  app.addHook('preParsing', async (request: Tracked, reply, payload) => {
    const bytes = announcedBytes(request, app.initialConfig.bodyLimit ?? 1024 * 1024);
    if (bytes === 0) return payload;
    const holder = request.principal?.keyId ?? '';
    const held = perKey.get(holder) ?? 0;
    const serverFull = inFlight + bytes > limits.maxBodyBytesInFlight;
    if (serverFull || held + bytes > limits.maxBodyBytesInFlightPerKey) {
      metrics.bodiesRefused.inc();
      reply.header('retry-after', '1');
      closeUnreadBody(request, reply);
      const who = serverFull ? 'the server is' : 'this API key is';
      return sendError(reply, new ApiError('busy', { who }));
    }
    inFlight += bytes;
    perKey.set(holder, held + bytes);
    metrics.bodyBytesInFlight.set(inFlight);
    request[IN_FLIGHT] = { holder, bytes };
    // However the request ends (parsed, refused, timed out, aborted), the budget comes back.
    request.raw.once('close', () => release(request));
    return payload;
  });
  app.addHook('preValidation', async (request: Tracked) => release(request));
  app.addHook('onResponse', async (request: Tracked) => release(request));
  app.addHook('onRequestAbort', async (request: Tracked) => release(request));
}
