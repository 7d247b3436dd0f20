// The one error shape of the API: { error: { code, message, details } }. Every code, with its
// status and sentence, is in the registry (error-codes.ts); routes throw ApiError by code.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FieldError } from '../event/field-errors.ts';
import { isLedgerUnavailable } from '../ledger/index.ts';
import { ERROR_CODES, errorMessage, type ErrorCode, type MessageParams } from './error-codes.ts';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: FieldError[] };
}

export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode;
  readonly details: FieldError[];
  constructor(code: ErrorCode, params: MessageParams = {}, details: FieldError[] = []) {
    super(errorMessage(code, params));
    this.statusCode = ERROR_CODES[code].status;
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

export function sendError(reply: FastifyReply, error: ApiError) {
  // Every 503 is "try again": say when.
  if (error.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '1');
  const body: ErrorBody = { error: { code: error.code, message: error.message, details: error.details } };
  return reply.code(error.statusCode).type('application/json; charset=utf-8').send(body);
}

/** Fastify's own errors (body parsing, limits) mapped onto our codes. */
const FASTIFY_ERRORS: Record<string, () => ApiError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => new ApiError('payload_too_large'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new ApiError('unsupported_media_type'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new ApiError('malformed_json', { detail: ' (it is empty)' }),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new ApiError('malformed_json'),
};

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ApiError) return sendError(reply, err);
    const known = err.code ? FASTIFY_ERRORS[err.code] : undefined;
    if (known) return sendError(reply, known());
    if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
      return sendError(reply, new ApiError('malformed_json', { detail: `: ${err.message}` }));
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, new ApiError('bad_request', { problem: err.message }));
    }
    if (isLedgerUnavailable(err)) {
      request.log.warn({ err: { message: err.message, code: err.code } }, 'ledger unreachable');
      return sendError(reply, new ApiError('ledger_unreachable'));
    }
    request.log.error({ err: { message: err.message, stack: err.stack, code: err.code } }, 'unhandled error');
    return sendError(reply, new ApiError('internal'));
  });
  const notFound = (request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, new ApiError('not_found', { thing: `route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` }));
  // Answer before the body is read: no route means no reason to take a megabyte from anyone.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    closeUnreadBody(request, reply);
    return notFound(request, reply);
  });
  app.setNotFoundHandler(notFound);
}
