// CloudEvents 1.0 in structured JSON mode, mapped onto events: (source, id) → request_id (see
// cloudEventRequestId), type → action, subject → caller, time → ts, source → source, the
// extension attribute `namespace` → namespace; units, artifact_digest and metadata from data (a
// JSON object). Validation is the events' own (validateEvent, with id in request_id's place, so
// id keeps request_id's rules); its field errors are reported at the CloudEvents attribute
// (`id`, `type`, `data.units`, …), so the sender sees the name it used.
import { createHash } from 'node:crypto';
import type { FieldError } from '../event/field-errors.ts';
import { MAX_REQUEST_ID_LENGTH } from '../event/limits.ts';
import type { EventStore } from '../ledger/index.ts';

export { CLOUDEVENTS_BATCH_TYPE, CLOUDEVENTS_TYPE } from './cloudevents-schema.ts';

/** Event field → the CloudEvents attribute it comes from. */
const ATTRIBUTE_OF: Record<string, string> = {
  request_id: 'id',
  action: 'type',
  caller: 'subject',
  ts: 'time',
  source: 'source',
  namespace: 'namespace',
  units: 'data.units',
  artifact_digest: 'data.artifact_digest',
  metadata: 'data.metadata',
};
const DATA_FIELDS = new Set(['units', 'artifact_digest', 'metadata']);

/**
 * The request_id of the CloudEvent (source, id): CloudEvents 1.0 makes the pair unique, so two
 * producers that reuse an id are two events. `ce:<n>:<source>:<id>`, n the UTF-8 byte length of
 * source: the length, not the separator, says where source ends, so no two pairs share a
 * request_id whatever characters they hold. Longer than MAX_REQUEST_ID_LENGTH, it is
 * `ce-sha256:<hex SHA-256 of that string, UTF-8>` (74 characters), which the other prefix keeps
 * apart from every readable one. Anyone holding (source, id) can recompute it.
 */
export function cloudEventRequestId(source: string, id: string): string {
  const full = `ce:${Buffer.byteLength(source, 'utf8')}:${source}:${id}`;
  return full.length <= MAX_REQUEST_ID_LENGTH ? full : `ce-sha256:${createHash('sha256').update(full, 'utf8').digest('hex')}`;
}

export type Mapped =
  /**
   * The event input to validate (request_id holds id), or errors found before (attributes the
   * mapping itself needs). requestId: the request_id of (source, id) when both are strings.
   */
  | { input: Record<string, unknown>; id?: string; requestId?: string }
  | { errors: FieldError[]; id?: string; requestId?: string; unknownFields?: FieldError[] };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** One structured CloudEvent as the input of validateEvent, or why it cannot be one. */
export function eventFromCloudEvent(ce: unknown): Mapped {
  if (!isObject(ce))
    return { errors: [{ path: '', rule: 'type:object', message: 'a CloudEvent must be a JSON object (structured mode)' }] };
  const id = typeof ce.id === 'string' ? ce.id : undefined;
  const known =
    id !== undefined && id !== '' && typeof ce.source === 'string' && ce.source !== ''
      ? { id, requestId: cloudEventRequestId(ce.source, id) }
      : id !== undefined
        ? { id }
        : {};
  const errors: FieldError[] = [];
  // source is half of the event's identity (and so of its request_id), as CloudEvents 1.0 requires.
  if (ce.source === undefined || ce.source === null)
    errors.push({ path: 'source', rule: 'required', message: 'source is required: with id it identifies the event (CloudEvents 1.0)' });
  if (ce.specversion !== '1.0') {
    errors.push(
      ce.specversion === undefined
        ? { path: 'specversion', rule: 'required', message: 'specversion is required: "1.0"' }
        : { path: 'specversion', rule: 'one_of:1.0', message: 'specversion must be "1.0" (CloudEvents 1.0)' },
    );
  }
  if (
    ce.datacontenttype !== undefined &&
    !(typeof ce.datacontenttype === 'string' && /^application\/json\s*(?:;.{0,64})?$/i.test(ce.datacontenttype))
  ) {
    errors.push({
      path: 'datacontenttype',
      rule: 'one_of:application/json',
      message: 'datacontenttype must be application/json (data is a JSON object)',
    });
  }
  if (ce.data_base64 !== undefined)
    errors.push({ path: 'data_base64', rule: 'json_data', message: 'data_base64 is not accepted: send data as a JSON object' });
  if (ce.time !== undefined && typeof ce.time !== 'string')
    errors.push({ path: 'time', rule: 'type:string', message: 'time must be an RFC 3339 string' });
  const data = ce.data;
  const unknownFields: FieldError[] = [];
  if (data !== undefined && data !== null && !isObject(data)) {
    errors.push({ path: 'data', rule: 'type:object', message: 'data must be a JSON object of units, artifact_digest and metadata' });
  } else if (isObject(data)) {
    for (const k of Object.keys(data)) {
      if (!DATA_FIELDS.has(k))
        unknownFields.push({
          path: `data.${k}`,
          rule: 'unknown_field',
          message: `data.${k.slice(0, 64)} is not a known field; data holds units, artifact_digest, metadata`,
        });
    }
  }
  if (unknownFields.length > 0) return { errors: [...errors, ...unknownFields], ...known, unknownFields };
  if (errors.length > 0) return { errors, ...known };
  const d = isObject(data) ? data : {};
  const input: Record<string, unknown> = {
    request_id: ce.id,
    namespace: ce.namespace,
    action: ce.type,
    caller: ce.subject,
    source: ce.source,
  };
  if (ce.time !== undefined) input.ts = ce.time;
  for (const k of DATA_FIELDS) if (d[k] !== undefined) input[k] = d[k];
  return { input, ...known };
}

/** A field error of the event, at the CloudEvents attribute it came from. */
export function atAttribute(e: FieldError): FieldError {
  const dot = e.path.indexOf('.');
  const head = dot < 0 ? e.path : e.path.slice(0, dot);
  const attribute = ATTRIBUTE_OF[head];
  if (attribute === undefined) return e;
  const path = attribute + (dot < 0 ? '' : e.path.slice(dot));
  // The sentence names the field first: name the attribute instead.
  const message = e.message.startsWith(e.path)
    ? path + e.message.slice(e.path.length)
    : e.message.startsWith(head)
      ? attribute + e.message.slice(head.length)
      : e.message;
  return { ...e, path, message };
}

/** The same_as_recorded error of a CloudEvent: it names source and id, never a request_id its sender did not send. */
export function conflictAt(field: string, source: string, id: string): FieldError {
  const path = ATTRIBUTE_OF[field] ?? field;
  return {
    path,
    rule: 'same_as_recorded',
    message: `the CloudEvent with source "${source}" and id "${id}" was already recorded with a different ${path}; nothing was changed`,
  };
}

/**
 * The request_id each valid CloudEvent is written under. Events stored before request_ids held
 * source were stored under `id` alone: a CloudEvent re-sent after the upgrade must meet its
 * stored event, not bill again. So: the (source, id) request_id if it is recorded; else `id` if
 * an event is recorded under it with the same source (the mapping of before); else the
 * (source, id) request_id. One lookup of both keys for the whole request.
 */
export async function requestIdsOf(
  events: Pick<EventStore, 'sourcesOf'>,
  items: ReadonlyArray<{ namespace: string; source: string; id: string; requestId: string }>,
): Promise<string[]> {
  if (items.length === 0) return [];
  const found = await events.sourcesOf(
    items.flatMap(
      (e) =>
        [
          [e.namespace, e.requestId],
          [e.namespace, e.id],
        ] as const,
    ),
  );
  return items.map((e, i) => (found[2 * i] === undefined && found[2 * i + 1] === e.source ? e.id : e.requestId));
}
