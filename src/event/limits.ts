// The limits of an event's fields, stated once. Validation (validate.ts), the API's schemas and
// OpenAPI document, CloudEvents, the receipt verifier and the metering middleware all import
// them from here, so what the API accepts, what a receipt may hold and what the SDK sends never
// drift apart. Pure and browser-safe (the verifier runs in a page): constants only, no imports.

/** Longest value of each leaf string field, in UTF-16 code units (what JavaScript's `length` counts). */
export const LEAF_STRING_MAX = { namespace: 128, request_id: 128, caller: 256, action: 64 } as const;
export type LeafStringField = keyof typeof LEAF_STRING_MAX;

export const MAX_NAMESPACE_LENGTH = LEAF_STRING_MAX.namespace;
export const MAX_REQUEST_ID_LENGTH = LEAF_STRING_MAX.request_id;
export const MAX_CALLER_LENGTH = LEAF_STRING_MAX.caller;
export const MAX_ACTION_LENGTH = LEAF_STRING_MAX.action;
/** `source` is stored beside the leaf (not in it); bounded like request_id, which it may become part of. */
export const MAX_SOURCE_LENGTH = 128;

/** Units: an integer 0 … 2^53 − 1, exact in JSON and in the leaf's u64. */
export const MAX_UNITS = Number.MAX_SAFE_INTEGER;
/** `ts` given as text (RFC 3339): longer than this is not a date-time, and is not parsed. */
export const MAX_TS_TEXT_LENGTH = 64;

/** Scrubbed metadata, serialized as JSON, in UTF-8 bytes. */
export const MAX_METADATA_BYTES = 4096;
/** Levels of nesting allowed in metadata, counting the metadata object itself as level 1. */
export const MAX_METADATA_DEPTH = 32;

/** Events in one POST /v1/events body. */
export const MAX_EVENTS_PER_REQUEST = 1000;

// Linear-time: one character class, one quantifier each.
export const NAMESPACE_PATTERN = /^[a-z0-9][a-z0-9._/-]*$/;
export const ACTION_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;
