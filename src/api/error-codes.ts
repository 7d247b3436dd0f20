// Every error code the API answers with: its HTTP status, what it means (for the OpenAPI
// document and the README) and the sentence a client reads, a template whose {placeholders} the
// route fills in. Clients switch on `code`; the sentence is for people and may change.
export interface ErrorCodeSpec {
  status: number;
  /** What the code means and what to do about it, for the API reference. */
  summary: string;
  /** The message; `{name}` is replaced by the parameter of that name. */
  template: string;
}

export const ERROR_CODES = {
  malformed_json: {
    status: 400,
    summary: 'The body is not JSON (or is empty).',
    template: 'the body is not valid JSON{detail}; send one event or {"events": [...]}',
  },
  invalid_utf8: {
    status: 400,
    summary: 'The body is not valid UTF-8.',
    template: 'the body is not valid UTF-8; send JSON encoded as UTF-8 (nothing was stored)',
  },
  invalid_body: {
    status: 400,
    summary: 'The body has the wrong shape for the route (details name the field and rule).',
    template: '{problem}; nothing was stored',
  },
  unknown_field: {
    status: 400,
    summary: 'The body has a field the API does not know (a typo would otherwise be ignored); nothing was stored.',
    template: 'unknown field{s}: {fields}; nothing was stored',
  },
  invalid_query: {
    status: 400,
    summary: 'A query parameter is missing, unknown or out of range (details name it and the rule).',
    template: '{problem}',
  },
  bad_request: { status: 400, summary: 'The request is not valid HTTP for this route.', template: '{problem}' },
  unauthorized: { status: 401, summary: 'No API key, a malformed Authorization header, or a revoked key.', template: '{problem}' },
  namespace_forbidden: {
    status: 403,
    summary: 'The key may not read this namespace.',
    template: 'this key may not read namespace{s} {namespaces}; it allows {allowed}',
  },
  right_missing: {
    status: 403,
    summary:
      'The key lacks the right the route needs (record, read, correct or admin); details[0].rule is right:<name>. A key has the rights given at `receipts keys create --rights`.',
    template: 'this key lacks the right {right}, which {route} needs; it has {rights}. Create a key with --rights including {right}',
  },
  not_found: { status: 404, summary: 'No such route, event or epoch (or not one this key may read).', template: 'no {thing}' },
  anchoring_off: {
    status: 404,
    summary: 'The service does not anchor on a chain.',
    template: 'this service does not anchor on a chain (no --sui-config)',
  },
  not_anchored: {
    status: 404,
    summary: 'The epoch is not anchored in the registry.',
    template: 'epoch {epoch} is not anchored in registry {registry}',
  },
  log_off: {
    status: 404,
    summary: 'The service signs no epoch log (started without a log key).',
    template: 'this service signs no epoch log (no --log-key)',
  },
  no_checkpoint: {
    status: 404,
    summary: 'No checkpoint of the epoch log is signed yet: one is signed with the next sealed epoch.',
    template: 'no checkpoint of the epoch log is signed yet; one is signed with the next sealed epoch',
  },
  not_in_log: {
    status: 404,
    summary:
      "The event's epoch is not in the signed epoch log yet (pending, or sealed after the latest checkpoint); retry after the next seal.",
    template: 'event {id} is not in the signed epoch log yet: {why}; retry after the next seal',
  },
  meter_conflict: {
    status: 409,
    summary:
      'The meter change cannot be made: a meter keeps its aggregation (use another name), or a limit of meters or versions is reached; nothing was stored.',
    template: '{problem}; nothing was stored',
  },
  already_corrected: {
    status: 409,
    summary:
      'The event has been corrected (correct the head of its chain, named in the message and details) or its chain ends in a void; nothing was stored.',
    template:
      'event {id} is not the head of its chain (the head is {kind} {head}); correct event {head} instead, or nothing if it is a void; nothing was stored',
  },
  request_id_conflict: {
    status: 409,
    summary: 'The request_id was already used for something else in this namespace (details name what differs); nothing was stored.',
    template: 'request_id "{request_id}" was already recorded (event {id}) with different values; use a new request_id; nothing was stored',
  },
  correction_window_closed: {
    status: 422,
    summary: "The event's time is before the correction window (serve --correction-window-days); it can no longer be corrected.",
    template: 'event {id} (at {ts}) is past the correction window; it can no longer be corrected; nothing was stored',
  },
  limit_conflict: {
    status: 409,
    summary: 'The limit change cannot be made: the most limits of an owner, or versions of a limit, are kept already; nothing was stored.',
    template: '{problem}; nothing was stored',
  },
  webhook_conflict: {
    status: 409,
    summary: 'The webhook cannot be created: the owner has the most webhooks kept (100); delete one first. Nothing was stored.',
    template: '{problem}; nothing was stored',
  },
  payload_too_large: {
    status: 413,
    summary: 'The body is larger than 1 MiB.',
    template: 'request body is larger than 1 MiB; send fewer events per request',
  },
  too_many_events: {
    status: 413,
    summary: 'More than 1,000 events in one request.',
    template: 'a request holds at most {max} events, this one {count}; split it',
  },
  unsupported_media_type: {
    status: 415,
    summary: 'The body is not application/json, application/cloudevents+json or application/cloudevents-batch+json.',
    template:
      'send the body as Content-Type: application/json (or application/cloudevents+json, application/cloudevents-batch+json to POST /v1/events)',
  },
  internal: {
    status: 500,
    summary: 'An unexpected error; the request was not applied.',
    template: 'internal error; the request was not applied, retry it',
  },
  chain_unreachable: { status: 502, summary: 'The chain could not be read.', template: 'the chain could not be read: {reason}' },
  ledger_unavailable: {
    status: 503,
    summary: 'The ledger could not commit; nothing was stored, retry the same request.',
    template: 'the ledger could not commit; nothing from this request was stored; retry the same request',
  },
  ledger_unreachable: {
    status: 503,
    summary:
      "The ledger's database cannot be reached right now (down, restarting, or the connection dropped); nothing was changed, retry after the Retry-After seconds.",
    template: 'the ledger cannot be reached right now; nothing was changed; retry in a few seconds',
  },
  busy: {
    status: 503,
    summary: 'Too many request bodies in flight; retry after the Retry-After seconds.',
    template: '{who} receiving too many request bodies at once; retry after a second',
  },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export type MessageParams = Record<string, string | number>;

/** The sentence of `code` with its placeholders filled; a missing parameter is an empty string. */
export function errorMessage(code: ErrorCode, params: MessageParams = {}): string {
  return ERROR_CODES[code].template.replace(/\{([a-z_]+)\}/g, (_m, name: string) =>
    params[name] === undefined ? '' : String(params[name]),
  );
}

/** The status of a code. */
export const statusOf = (code: ErrorCode): number => ERROR_CODES[code].status;
