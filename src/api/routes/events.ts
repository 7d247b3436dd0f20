// POST /v1/events: one event, or { events: [...] } of up to 1,000. One result per event, in
// order; one bad event never fails the others. Shape errors of the request itself (not JSON,
// not an object, unknown fields) fail the whole request with 400 and store nothing.
import type { FastifyInstance } from 'fastify';
import type { FieldError, ValidationContext } from '../../event/validate.ts';
import { validateEvent } from '../../event/validate.ts';
import { MAX_EVENTS_PER_REQUEST } from '../../event/limits.ts';
import type { EventToWrite, Ledger, WriteResult } from '../../ledger/index.ts';
import { principalOf } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { AUTH_ERRORS, COMMON_ERRORS, errorResponses, EventsBodySchema, EventsResponseSchema } from '../schemas.ts';
import { documentOnly } from '../validation.ts';
import { atAttribute, CLOUDEVENTS_BATCH_TYPE, CLOUDEVENTS_TYPE, conflictAt, eventFromCloudEvent, requestIdsOf } from '../cloudevents.ts';

export type EventResult =
  | (Extract<WriteResult, { status: 'created' | 'duplicate' }> & { request_id: string; redacted?: string[] })
  | { status: 'conflict'; request_id: string; id: number; errors: FieldError[] }
  | { status: 'rejected'; request_id?: string; errors: FieldError[] };

export interface EventsRouteOptions {
  ledger: Ledger;
  metrics: Metrics;
  validation: Omit<ValidationContext, 'now'>;
  now: () => number;
}

export function eventsRoutes(app: FastifyInstance, opts: EventsRouteOptions): void {
  app.post(
    '/v1/events',
    {
      config: { right: 'record' },
      schema: {
        tags: ['events'],
        summary: 'Record usage events',
        description:
          'One event, or {"events": [...]} of up to 1,000 (1 MiB); or CloudEvents 1.0: one structured event as application/cloudevents+json, or a JSON array of them as application/cloudevents-batch+json. One result per event, in order; one bad event never fails the others (status rejected, with field errors). Idempotent by (namespace, request_id); a CloudEvent by (namespace, source, id).',
        security: [{ bearer: [] }],
        body: documentOnly(EventsBodySchema), // validated per event below, not as a whole
        response: {
          200: EventsResponseSchema,
          ...errorResponses(
            ...COMMON_ERRORS,
            ...AUTH_ERRORS,
            'malformed_json',
            'invalid_utf8',
            'invalid_body',
            'unknown_field',
            'payload_too_large',
            'too_many_events',
            'unsupported_media_type',
            'ledger_unavailable',
          ),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const cloud = cloudEventsMode(request.headers['content-type']);
      const inputs = cloud ? cloudEventsOf(request.body, cloud) : eventsOf(request.body);
      const ctx: ValidationContext = { ...opts.validation, now: opts.now() };

      const results: EventResult[] = new Array(inputs.list.length);
      const toWrite: EventToWrite[] = [];
      const writeSlots: number[] = [];
      const unknown: FieldError[] = [];
      // CloudEvents to write: their (source, id), and request_id of the pair (settled before the write).
      const clouds: Array<{ namespace: string; source: string; id: string; requestId: string }> = [];

      inputs.list.forEach((raw, i) => {
        let input = raw;
        let requestId: string | undefined; // of a CloudEvent: its (source, id) request_id
        if (cloud) {
          // A CloudEvent is mapped onto an event first; errors name the CloudEvents attribute.
          const mapped = eventFromCloudEvent(raw);
          if ('errors' in mapped) {
            for (const e of mapped.unknownFields ?? []) unknown.push({ ...e, path: inputs.prefix(i) + e.path });
            results[i] = {
              status: 'rejected',
              ...(mapped.requestId !== undefined && { request_id: mapped.requestId }),
              errors: mapped.errors,
            };
            return;
          }
          input = mapped.input;
          requestId = mapped.requestId;
        }
        const v = validateEvent(input, ctx);
        if (!v.ok) {
          const echo = cloud ? requestId : (input as { request_id?: unknown })?.request_id;
          if (cloud) v.errors = v.errors.map(atAttribute);
          if (v.unknownFields) {
            for (const e of v.errors) if (e.rule === 'unknown_field') unknown.push({ ...e, path: inputs.prefix(i) + e.path });
          }
          results[i] = { status: 'rejected', ...(typeof echo === 'string' && { request_id: echo }), errors: v.errors };
        } else if (!principal.allows(v.event.namespace)) {
          if (cloud) v.event.request_id = requestId!;
          results[i] = {
            status: 'rejected',
            request_id: v.event.request_id,
            errors: [
              {
                path: 'namespace',
                rule: 'namespace_forbidden',
                message: `this key may not write namespace "${v.event.namespace}"; it allows ${principal.namespaces.join(', ')}`,
              },
            ],
          };
        } else {
          if (cloud) clouds.push({ namespace: v.event.namespace, source: v.event.source!, id: v.event.request_id, requestId: requestId! });
          writeSlots.push(i);
          toWrite.push({ event: v.event, owner: principal.owner, keyId: principal.keyId });
        }
      });

      // An unknown field is a client speaking the protocol wrong (a typo such as `unit` would
      // otherwise silently bill the default of 1 unit): refuse the whole request.
      if (unknown.length > 0) {
        throw new ApiError('unknown_field', { s: unknown.length > 1 ? 's' : '', fields: unknown.map((e) => e.path).join(', ') }, unknown);
      }

      let written: WriteResult[];
      try {
        if (cloud) (await requestIdsOf(opts.ledger.events, clouds)).forEach((id, j) => (toWrite[j]!.event.request_id = id));
        written = await opts.ledger.events.write(toWrite);
      } catch (err) {
        request.log.error({ err: { message: (err as Error).message } }, 'ledger commit failed');
        throw new ApiError('ledger_unavailable');
      }
      written.forEach((w, j) => {
        const i = writeSlots[j]!;
        const request_id = toWrite[j]!.event.request_id;
        if (w.status === 'conflict') {
          results[i] = {
            status: 'conflict',
            request_id,
            id: w.id,
            errors: w.differs.map((f) =>
              cloud
                ? conflictAt(f, clouds[j]!.source, clouds[j]!.id)
                : {
                    path: f,
                    rule: 'same_as_recorded',
                    message: `request_id "${request_id}" was already recorded with a different value of ${f}; nothing was changed`,
                  },
            ),
          };
        } else {
          const { redacted } = toWrite[j]!.event;
          // Built field by field (no spreads): the same JSON, one object instead of three.
          const r: Extract<EventResult, { status: 'created' | 'duplicate' }> = {
            status: w.status,
            id: w.id,
            leaf_hash: w.leaf_hash,
            request_id,
          };
          if (redacted.length > 0) r.redacted = redacted;
          results[i] = r;
        }
      });
      // One counter update per result kind, not per event (each labelled inc hashes its labels).
      const counts = { created: 0, duplicate: 0, conflict: 0, rejected: 0 };
      for (const r of results) counts[r.status]++;
      for (const [result, n] of Object.entries(counts)) if (n > 0) opts.metrics.events.inc({ result }, n);
      return { results };
    },
  );
}

/** Which CloudEvents content mode the request uses, if any. */
function cloudEventsMode(contentType: string | undefined): 'structured' | 'batch' | undefined {
  const type = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  return type === CLOUDEVENTS_TYPE ? 'structured' : type === CLOUDEVENTS_BATCH_TYPE ? 'batch' : undefined;
}

/** The CloudEvents of a request body: one (structured) or a JSON array of them (batch). */
function cloudEventsOf(body: unknown, mode: 'structured' | 'batch'): { list: unknown[]; prefix: (i: number) => string } {
  if (mode === 'structured') {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError(
        'invalid_body',
        { problem: `an ${CLOUDEVENTS_TYPE} body must be one CloudEvent, a JSON object (send several as ${CLOUDEVENTS_BATCH_TYPE})` },
        [{ path: '', rule: 'type:object', message: 'the body must be a JSON object' }],
      );
    }
    return { list: [body], prefix: () => '' };
  }
  if (!Array.isArray(body)) {
    throw new ApiError('invalid_body', { problem: `an ${CLOUDEVENTS_BATCH_TYPE} body must be a JSON array of CloudEvents` }, [
      { path: '', rule: 'type:array', message: 'the body must be a JSON array' },
    ]);
  }
  if (body.length > MAX_EVENTS_PER_REQUEST) {
    throw new ApiError('too_many_events', { max: MAX_EVENTS_PER_REQUEST, count: body.length }, [
      {
        path: '',
        rule: `max_items:${MAX_EVENTS_PER_REQUEST}`,
        message: `the batch must hold at most ${MAX_EVENTS_PER_REQUEST} CloudEvents`,
      },
    ]);
  }
  return { list: body, prefix: (i) => `[${i}].` };
}

/** The events of a request body, or a 400/413 for a body of the wrong shape. */
function eventsOf(body: unknown): { list: unknown[]; prefix: (i: number) => string } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(
      'invalid_body',
      { problem: 'the body must be a JSON object: one event, or {"events": [...]} (not an array or a scalar)' },
      [{ path: '', rule: 'type:object', message: 'the body must be a JSON object' }],
    );
  }
  if (!('events' in body)) return { list: [body], prefix: () => '' };
  const extra = Object.keys(body).filter((k) => k !== 'events');
  if (extra.length > 0) {
    throw new ApiError(
      'unknown_field',
      { s: extra.length > 1 ? 's' : '', fields: `${extra.join(', ')} (beside "events")` },
      extra.map((k) => ({ path: k, rule: 'unknown_field', message: `${k} is not allowed beside events` })),
    );
  }
  const events = (body as { events: unknown }).events;
  if (!Array.isArray(events)) {
    throw new ApiError('invalid_body', { problem: '"events" must be an array of events' }, [
      { path: 'events', rule: 'type:array', message: 'events must be an array' },
    ]);
  }
  if (events.length > MAX_EVENTS_PER_REQUEST) {
    throw new ApiError('too_many_events', { max: MAX_EVENTS_PER_REQUEST, count: events.length }, [
      { path: 'events', rule: `max_items:${MAX_EVENTS_PER_REQUEST}`, message: `events must hold at most ${MAX_EVENTS_PER_REQUEST} items` },
    ]);
  }
  return { list: events, prefix: (i) => `events[${i}].` };
}
