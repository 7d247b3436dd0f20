// CloudEvents 1.0 (structured JSON mode) as POST /v1/events reads them: the attributes and the
// mapping onto an event. (source, id) → request_id (cloudEventRequestId in cloudevents.ts),
// type → action, subject → caller, time → ts, source → source, the extension attribute
// `namespace` → namespace; units, artifact_digest and metadata come from data, a JSON object.
import { z } from 'zod';

export const CLOUDEVENTS_TYPE = 'application/cloudevents+json';
export const CLOUDEVENTS_BATCH_TYPE = 'application/cloudevents-batch+json';

export const CloudEventSchema = z
  .object({
    specversion: z.literal('1.0'),
    id: z.string().min(1).max(128).describe('with source, the idempotency key: request_id ce:<UTF-8 bytes of source>:<source>:<id>, or ce-sha256:<hex SHA-256 of that> beyond 128 characters'),
    source: z.string().min(1).max(128).describe('→ source; with id, the idempotency key'),
    type: z.string().min(1).max(64).describe('→ action'),
    subject: z.string().min(1).max(256).describe('→ caller'),
    namespace: z.string().min(1).max(128).describe('extension attribute → namespace'),
    time: z.string().max(64).optional().describe('RFC 3339 → ts'),
    datacontenttype: z.literal('application/json').optional(),
    dataschema: z.string().optional(),
    data: z
      .object({
        units: z.number().int().min(0).optional(),
        artifact_digest: z.string().optional(),
        metadata: z.record(z.string(), z.unknown()).optional(),
      })
      .strict()
      .optional()
      .describe('units, artifact_digest and metadata of the event'),
  })
  .meta({
    id: 'CloudEvent',
    examples: [{ specversion: '1.0', id: 'req-42', source: 'https://agent.example/acme', type: 'recall', subject: 'agent-7', namespace: 'acme/prod', time: '2026-11-22T10:00:00Z', datacontenttype: 'application/json', data: { units: 3 } }],
  });
