// The API document: OpenAPI 3.1 generated from the routes' zod schemas (@fastify/swagger with
// the zod transform), served at GET /openapi.json, and a reference page (Swagger UI) at /docs
// whose assets are served by this service itself, so it works under the page's CSP and no
// request leaves the service.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { OpenAPIV3_1 } from 'openapi-types';
import { z } from 'zod';
import { CLOUDEVENTS_BATCH_TYPE, CLOUDEVENTS_TYPE, CloudEventSchema } from './cloudevents-schema.ts';
import { ERROR_CODES } from './error-codes.ts';
import { MAX_EVENTS_PER_REQUEST } from '../event/limits.ts';

export const DOCS_PREFIX = '/docs';

const DESCRIPTION = `Usage metering with proof: events are recorded, sealed into RFC 6962 Merkle epochs, anchored on Sui, and each has a verifiable receipt.

Every error has one shape, \`{"error": {"code", "message", "details": [{"path", "rule", "message"}]}}\`; switch on \`code\`:

${Object.entries(ERROR_CODES)
  .map(([code, s]) => `- \`${code}\` (${s.status}): ${s.summary}`)
  .join('\n')}`;

function jsonSchema(schema: z.ZodType): OpenAPIV3_1.SchemaObject {
  const {
    $schema: _drop,
    id: _id,
    ...rest
  } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any', reused: 'inline' }) as Record<string, unknown>;
  return rest as OpenAPIV3_1.SchemaObject;
}

export function registerOpenApi(app: FastifyInstance, version: string): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'sui-receipts', version, description: DESCRIPTION },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API key from `receipts keys create`, as Authorization: Bearer <key>' },
        },
      },
      tags: [
        { name: 'events', description: 'Record usage' },
        { name: 'usage', description: 'Read usage back' },
        { name: 'receipts', description: 'Receipts and sealed epochs' },
        { name: 'operations', description: 'Health, metrics and this document (no key)' },
      ],
    },
    transform: jsonSchemaTransform,
    // POST /v1/events also takes CloudEvents: the body has one shape per content type.
    transformObject: (input) => {
      // The schemas with an id (.meta({ id })) become components, referenced by $ref.
      const doc = jsonSchemaTransformObject(input) as OpenAPIV3_1.Document;
      const post = doc.paths?.['/v1/events']?.post;
      const body = post?.requestBody as OpenAPIV3_1.RequestBodyObject | undefined;
      if (body?.content) {
        const components = (doc.components ??= {});
        (components.schemas ??= {}).CloudEvent ??= jsonSchema(CloudEventSchema);
        body.content[CLOUDEVENTS_TYPE] = { schema: { $ref: '#/components/schemas/CloudEvent' } };
        body.content[CLOUDEVENTS_BATCH_TYPE] = {
          schema: { type: 'array', items: { $ref: '#/components/schemas/CloudEvent' }, maxItems: MAX_EVENTS_PER_REQUEST },
        };
      }
      return doc;
    },
  });
  void app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { validatorUrl: null, deepLinking: true },
  });
  void app.register(async (child) => {
    child.get(
      '/openapi.json',
      {
        schema: {
          tags: ['operations'],
          summary: 'This API as an OpenAPI 3.1 document',
          response: { 200: z.looseObject({ openapi: z.string() }) },
        },
      },
      async () => app.swagger(),
    );
  });
}
