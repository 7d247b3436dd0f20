// The one error shape of the API: { error: { code, message, details } }.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FieldError } from '../event/validate.ts';

export interface ErrorBody {
  error: { code: string; message: string; details: FieldError[] };
}

export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly details: FieldError[];
  constructor(statusCode: number, code: string, message: string, details: FieldError[] = []) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
  }
}

/** For an answer given before the body was read: close the connection rather than drain the body. */
export function closeUnreadBody(request: FastifyRequest, reply: FastifyReply): void {
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) {
    reply.header('connection', 'close');
  }
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details: FieldError[] = []) {
  const body: ErrorBody = { error: { code, message, details } };
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/** Fastify's own errors (body parsing, limits) mapped onto our shape and codes. */
const FASTIFY_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', 'request body is larger than 1 MiB; send fewer events per request'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'send the body as Content-Type: application/json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'malformed_json', 'the body is empty; send a JSON event or {"events": [...]}'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'malformed_json', 'the body is not valid JSON'],
};

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ApiError) return sendError(reply, err.statusCode, err.code, err.message, err.details);
    const known = err.code ? FASTIFY_ERRORS[err.code] : undefined;
    if (known) return sendError(reply, known[0], known[1], known[2]);
    if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
      return sendError(reply, 400, 'malformed_json', `the body is not valid JSON: ${err.message}`);
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, err.statusCode, 'bad_request', err.message);
    }
    request.log.error({ err: { message: err.message, stack: err.stack, code: err.code } }, 'unhandled error');
    return sendError(reply, 500, 'internal', 'internal error; the request was not applied, retry it');
  });
  const notFound = (request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`);
  // Answer before the body is read: no route means no reason to take a megabyte from anyone.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    closeUnreadBody(request, reply);
    return notFound(request, reply);
  });
  app.setNotFoundHandler(notFound);
}
