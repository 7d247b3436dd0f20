// Input validation for every route from its declared zod schemas, with the API's own errors:
// a path parameter that is not an id is a 404 (there is no such thing), a bad query string is
// 400 invalid_query, a bad body 400 invalid_body (unknown_field for a field the API does not
// know), each with the field errors of the one mapper (src/event/field-errors.ts). A schema
// marked documentOnly() is declared for the OpenAPI document and not run here: POST /v1/events
// validates each event on its own (one bad event must not fail the others), on a hot path.
import type { FastifySchemaCompiler } from 'fastify';
import type { FastifySerializerCompiler } from 'fastify/types/schema.js';
import type { z } from 'zod';
import { fieldErrorsFromIssues } from '../event/field-errors.ts';
import { ApiError } from './errors.ts';

const DOCUMENT_ONLY = new WeakSet<object>();

/** A schema for the document only: the route validates this part itself. */
export function documentOnly<T extends z.ZodType>(schema: T): T {
  DOCUMENT_ONLY.add(schema);
  return schema;
}

/** What a path parameter names, for the 404 sentence. */
const PARAM_NOUNS: Record<string, string> = { id: 'event', epoch: 'epoch' };

export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  if (DOCUMENT_ONLY.has(schema)) return () => true;
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  const known = shape ? Object.keys(shape) : [];
  return (data: unknown) => {
    const parsed = schema.safeParse(data, { reportInput: true });
    if (parsed.success) return { value: parsed.data };
    if (httpPart === 'params') {
      const [name, value] = Object.entries((data ?? {}) as Record<string, unknown>).find(([k]) =>
        parsed.error.issues.some((i) => i.path[0] === k),
      ) ?? ['', ''];
      return { error: new ApiError('not_found', { thing: `${PARAM_NOUNS[name] ?? name} ${String(value).slice(0, 64)}` }) };
    }
    const query = httpPart === 'querystring';
    const details = fieldErrorsFromIssues(parsed.error.issues, {
      subject: query ? 'query' : 'body',
      known,
      unknownRule: query ? 'unknown_parameter' : 'unknown_field',
      query,
    });
    const problem = details.map((d) => d.message).join('; ');
    if (query) return { error: new ApiError('invalid_query', { problem }, details) };
    if (details.every((d) => d.rule === 'unknown_field')) {
      return {
        error: new ApiError('unknown_field', { s: details.length > 1 ? 's' : '', fields: details.map((d) => d.path).join(', ') }, details),
      };
    }
    return { error: new ApiError('invalid_body', { problem }, details) };
  };
};

/**
 * A serializer that checks each response against the route's declared schema first (the tests'
 * servers use it, see ApiOptions.serializerCompiler): a response that breaks its declaration is a
 * 500, not a document that lies.
 */
export const checkingSerializer: FastifySerializerCompiler<z.ZodType | { content: Record<string, { schema: z.ZodType }> }> = ({
  schema,
  method,
  url,
  httpStatus,
}) => {
  const zod = 'content' in schema ? Object.values(schema.content)[0]!.schema : schema;
  return (data: unknown) => {
    const checked = zod.safeParse(data);
    if (!checked.success) {
      throw new Error(
        `the ${httpStatus} response of ${method} ${url} does not match its declared schema: ${JSON.stringify(checked.error.issues).slice(0, 2000)}`,
      );
    }
    return JSON.stringify(data);
  };
};
