// CloudEvents 1.0 (structured JSON mode) as POST /v1/events reads them: the attributes and the
// mapping onto an event. (source, id) → request_id (cloudEventRequestId in cloudevents.ts),
// type → action, subject → caller, time → ts, source → source, the extension attribute
// `namespace` → namespace; units, artifact_digest and metadata come from data, a JSON object.
import { z } from 'zod';
import { LEAF_STRING_MAX, MAX_REQUEST_ID_LENGTH, MAX_SOURCE_LENGTH, MAX_TS_TEXT_LENGTH, MAX_UNITS } from '../event/limits.ts';

export const CLOUDEVENTS_TYPE = 'application/cloudevents+json';
export const CLOUDEVENTS_BATCH_TYPE = 'application/cloudevents-batch+json';

export const CloudEventSchema = z
  .object({
    specversion: z.literal('1.0'),
    id: z
      .string()
      .min(1)
      .max(MAX_REQUEST_ID_LENGTH)
      .describe(
        `with source, the idempotency key: request_id ce:<UTF-8 bytes of source>:<source>:<id>, or ce-sha256:<hex SHA-256 of that> beyond ${MAX_REQUEST_ID_LENGTH} characters`,
      ),
    source: z.string().min(1).max(MAX_SOURCE_LENGTH).describe('→ source; with id, the idempotency key'),
    type: z.string().min(1).max(LEAF_STRING_MAX.action).describe('→ action'),
    subject: z.string().min(1).max(LEAF_STRING_MAX.caller).describe('→ caller'),
    namespace: z.string().min(1).max(LEAF_STRING_MAX.namespace).describe('extension attribute → namespace'),
    time: z.string().max(MAX_TS_TEXT_LENGTH).optional().describe('RFC 3339 → ts'),
    datacontenttype: z.literal('application/json').optional(),
    dataschema: z.string().optional(),
    data: z
      .object({
        units: z.number().int().min(0).max(MAX_UNITS).optional(),
        artifact_digest: z.string().optional(),
        metadata: z.record(z.string(), z.unknown()).optional(),
      })
      .strict()
      .optional()
      .describe('units, artifact_digest and metadata of the event'),
  })
  .meta({
    id: 'CloudEvent',
    examples: [
      {
        specversion: '1.0',
        id: 'req-42',
        source: 'https://agent.example/acme',
        type: 'recall',
        subject: 'agent-7',
        namespace: 'acme/prod',
        time: '2026-11-22T10:00:00Z',
        datacontenttype: 'application/json',
        data: { units: 3 },
      },
    ],
  });
