// CloudEvents 1.0 in structured JSON mode, mapped onto events: id → request_id, type → action,
// subject → caller, time → ts, source → source, the extension attribute `namespace` →
// namespace; units, artifact_digest and metadata from data (a JSON object). Validation is the
// events' own (validateEvent); its field errors are reported at the CloudEvents attribute
// (`id`, `type`, `data.units`, …), so the sender sees the name it used.
import type { FieldError } from '../event/field-errors.ts';

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

export type Mapped =
  /** The event input to validate, or errors found before (attributes the mapping itself needs). */
  | { input: Record<string, unknown>; id?: string }
  | { errors: FieldError[]; id?: string; unknownFields?: FieldError[] };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** One structured CloudEvent as the input of validateEvent, or why it cannot be one. */
export function eventFromCloudEvent(ce: unknown): Mapped {
  if (!isObject(ce)) return { errors: [{ path: '', rule: 'type:object', message: 'a CloudEvent must be a JSON object (structured mode)' }] };
  const id = typeof ce.id === 'string' ? ce.id : undefined;
  const errors: FieldError[] = [];
  if (ce.specversion !== '1.0') {
    errors.push(ce.specversion === undefined
      ? { path: 'specversion', rule: 'required', message: 'specversion is required: "1.0"' }
      : { path: 'specversion', rule: 'one_of:1.0', message: 'specversion must be "1.0" (CloudEvents 1.0)' });
  }
  if (ce.datacontenttype !== undefined && !(typeof ce.datacontenttype === 'string' && /^application\/json\s*(?:;.{0,64})?$/i.test(ce.datacontenttype))) {
    errors.push({ path: 'datacontenttype', rule: 'one_of:application/json', message: 'datacontenttype must be application/json (data is a JSON object)' });
  }
  if (ce.data_base64 !== undefined) errors.push({ path: 'data_base64', rule: 'json_data', message: 'data_base64 is not accepted: send data as a JSON object' });
  if (ce.time !== undefined && typeof ce.time !== 'string') errors.push({ path: 'time', rule: 'type:string', message: 'time must be an RFC 3339 string' });
  const data = ce.data;
  const unknownFields: FieldError[] = [];
  if (data !== undefined && data !== null && !isObject(data)) {
    errors.push({ path: 'data', rule: 'type:object', message: 'data must be a JSON object of units, artifact_digest and metadata' });
  } else if (isObject(data)) {
    for (const k of Object.keys(data)) {
      if (!DATA_FIELDS.has(k)) unknownFields.push({ path: `data.${k}`, rule: 'unknown_field', message: `data.${k.slice(0, 64)} is not a known field; data holds units, artifact_digest, metadata` });
    }
  }
  if (unknownFields.length > 0) return { errors: [...errors, ...unknownFields], ...(id !== undefined && { id }), unknownFields };
  if (errors.length > 0) return { errors, ...(id !== undefined && { id }) };
  const d = isObject(data) ? data : {};
  const input: Record<string, unknown> = { request_id: ce.id, namespace: ce.namespace, action: ce.type, caller: ce.subject, source: ce.source };
  if (ce.time !== undefined) input.ts = ce.time;
  for (const k of DATA_FIELDS) if (d[k] !== undefined) input[k] = d[k];
  return { input, ...(id !== undefined && { id }) };
}

/** A field error of the event, at the CloudEvents attribute it came from. */
export function atAttribute(e: FieldError): FieldError {
  const dot = e.path.indexOf('.');
  const head = dot < 0 ? e.path : e.path.slice(0, dot);
  const attribute = ATTRIBUTE_OF[head];
  if (attribute === undefined) return e;
  const path = attribute + (dot < 0 ? '' : e.path.slice(dot));
  // The sentence names the field first: name the attribute instead.
  const message = e.message.startsWith(e.path) ? path + e.message.slice(e.path.length) : e.message.startsWith(head) ? attribute + e.message.slice(head.length) : e.message;
  return { ...e, path, message };
}
