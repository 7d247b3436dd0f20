// Validation of one incoming event: shape and static rules with zod, then the rules that need
// context (event time window, action allow-list), then secret scrubbing of metadata.
// Every failure names the field and the rule, so a client can fix its call without guessing.
import { z } from 'zod';
import { HEX64_ANY_CASE_OR_EMPTY } from '../encoding/hex.ts';
import type { LeafFields } from './leaf.ts';
import { looksLikeSecret, redactJson } from './redact.ts';
import { checkDepth, checkText } from './shape.ts';
import { fieldErrorsFromIssues, type FieldError, type IssueContext } from './field-errors.ts';
import {
  ACTION_PATTERN,
  LEAF_STRING_MAX,
  MAX_METADATA_BYTES,
  MAX_METADATA_DEPTH,
  MAX_SOURCE_LENGTH,
  MAX_TS_TEXT_LENGTH,
  MAX_UNITS,
  NAMESPACE_PATTERN,
} from './limits.ts';

// The limits live in limits.ts; these names stay importable from here, where the middleware
// (src/middleware/common.ts, upstream.ts) and the CLI have always taken them.
export { ACTION_PATTERN, MAX_METADATA_BYTES, MAX_UNITS, NAMESPACE_PATTERN } from './limits.ts';
const utf8 = new TextEncoder();

export type { FieldError } from './field-errors.ts';

/** A leaf string: well-formed Unicode without NUL, so the stored text, the leaf and the receipt agree. */
const leafString = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max, { abort: true }) // a too-long string is not scanned further (text checks, patterns)
    .refine((s) => s.isWellFormed() && !s.includes('\u0000'), {
      params: { rule: 'well_formed_text', message: 'must be well-formed Unicode text without NUL characters' },
    });

const eventSchema = z.strictObject({
  request_id: leafString(1, LEAF_STRING_MAX.request_id),
  namespace: leafString(1, LEAF_STRING_MAX.namespace).regex(NAMESPACE_PATTERN),
  action: leafString(1, LEAF_STRING_MAX.action).regex(ACTION_PATTERN),
  caller: leafString(1, LEAF_STRING_MAX.caller),
  units: z.number().int().min(0).max(MAX_UNITS).optional(),
  artifact_digest: z.string().regex(HEX64_ANY_CASE_OR_EMPTY).optional(),
  ts: z.union([z.number().int().min(0), z.string().max(MAX_TS_TEXT_LENGTH)]).optional(),
  source: leafString(1, MAX_SOURCE_LENGTH).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

export const EVENT_FIELDS = Object.keys(eventSchema.shape);
const KNOWN_FIELDS: ReadonlySet<string> = new Set(EVENT_FIELDS);
const LEAF_TEXT_FIELDS = ['request_id', 'caller', 'source', 'namespace', 'action'] as const;

const EVENT_ISSUES: IssueContext = {
  subject: 'event',
  known: EVENT_FIELDS,
  unknownRule: 'unknown_field',
  formats: {
    artifact_digest: { rule: 'hex:64', message: 'must be 64 hexadecimal characters (a SHA-256 digest)' },
    ts: { rule: 'epoch_ms_or_rfc3339', message: 'must be epoch milliseconds (integer) or an RFC 3339 date-time string' },
  },
};

export interface ValidationContext {
  /** Received time, ms. */
  now: number;
  /** Oldest accepted event time, as an age in ms (default 35 days). */
  maxAgeMs: number;
  /** How far ahead of `now` an event time may be, ms (5 minutes). */
  maxFutureMs: number;
  /** Allowed actions; undefined accepts any action that matches the pattern. */
  actions?: ReadonlySet<string>;
}

/** An event ready for the ledger: leaf fields plus what is stored beside them. */
export interface NormalizedEvent extends LeafFields {
  /** Whether `ts` came from the client (false: defaulted to received time). */
  ts_explicit: boolean;
  received_at: number;
  source: string | null;
  /** Canonical JSON (sorted keys) of the scrubbed metadata, or null. */
  metadata: string | null;
  /** Paths removed from metadata because they held or named credentials. */
  redacted: string[];
}

export type ValidationResult = { ok: true; event: NormalizedEvent } | { ok: false; errors: FieldError[]; unknownFields: boolean };

export const DEFAULT_MAX_AGE_MS = 35 * 24 * 3600 * 1000;
export const DEFAULT_MAX_FUTURE_MS = 5 * 60 * 1000;

type EventShape = z.infer<typeof eventSchema>;

/** A leaf string as `leafString` accepts it. */
const isLeafString = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length >= 1 && v.length <= max && v.isWellFormed() && !v.includes('\u0000');

/**
 * The event's shape when it is exactly what `eventSchema` accepts, checked in one pass without
 * zod (whose parse cost more than the rest of an event's ingest); undefined for anything else,
 * which then goes through zod for its errors. So an error always comes from the schema, and this
 * only has to accept nothing the schema refuses (test/event/validate-fast.test.ts holds both to
 * the same answers over generated and hostile events). Only plain objects take this path.
 */
function fastShape(input: unknown): EventShape | undefined {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return undefined;
  const proto = Object.getPrototypeOf(input);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const o = input as Record<string, unknown>;
  for (const k in o) if (!KNOWN_FIELDS.has(k)) return undefined; // strict: zod reports it
  const { request_id, namespace, action, caller, units, artifact_digest, ts, source, metadata } = o;
  if (!isLeafString(request_id, LEAF_STRING_MAX.request_id) || !isLeafString(caller, LEAF_STRING_MAX.caller)) return undefined;
  if (!isLeafString(namespace, LEAF_STRING_MAX.namespace) || !NAMESPACE_PATTERN.test(namespace)) return undefined;
  if (!isLeafString(action, LEAF_STRING_MAX.action) || !ACTION_PATTERN.test(action)) return undefined;
  if (units !== undefined && !(typeof units === 'number' && Number.isSafeInteger(units) && units >= 0 && units <= MAX_UNITS)) {
    return undefined;
  }
  if (artifact_digest !== undefined && !(typeof artifact_digest === 'string' && HEX64_ANY_CASE_OR_EMPTY.test(artifact_digest))) {
    return undefined;
  }
  if (
    ts !== undefined &&
    !(typeof ts === 'number' ? Number.isSafeInteger(ts) && ts >= 0 : typeof ts === 'string' && ts.length <= MAX_TS_TEXT_LENGTH)
  ) {
    return undefined;
  }
  if (source !== undefined && !isLeafString(source, MAX_SOURCE_LENGTH)) return undefined;
  if (metadata !== undefined) {
    // zod's record copies the top level: only a plain object without an own `__proto__` key
    // (which the copy would turn into a prototype) is the same object afterwards.
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return undefined;
    if (Object.getPrototypeOf(metadata) !== Object.prototype || Object.hasOwn(metadata, '__proto__')) return undefined;
  }
  return {
    request_id,
    namespace,
    action,
    caller,
    units: units as number | undefined,
    artifact_digest: artifact_digest as string | undefined,
    ts: ts as number | string | undefined,
    source: source as string | undefined,
    metadata: metadata as Record<string, unknown> | undefined,
  };
}

/**
 * looksLikeSecret of the low-cardinality leaf fields (namespace, action, caller, source), kept:
 * a batch repeats them on every event and the scan is a dozen detectors. It is a pure function of
 * the string, so a kept answer is the answer. Bounded: at most SECRET_MEMO_MAX strings of at most
 * 256 characters (~2 MB), dropped whole when full. request_id is unique per event: always scanned.
 */
const SECRET_MEMO_MAX = 4096;
const secretMemo = new Map<string, boolean>();
function looksLikeSecretKept(v: string): boolean {
  let found = secretMemo.get(v);
  if (found === undefined) {
    found = looksLikeSecret(v);
    if (secretMemo.size >= SECRET_MEMO_MAX) secretMemo.clear();
    secretMemo.set(v, found);
  }
  return found;
}

/** The slow path alone (zod for the shape): the reference the fast path is tested against. */
export function validateEventWithSchema(input: unknown, ctx: ValidationContext): ValidationResult {
  return validateEvent(input, ctx, false);
}

export function validateEvent(input: unknown, ctx: ValidationContext, fast = true): ValidationResult {
  let e = fast ? fastShape(input) : undefined;
  if (e === undefined) {
    const parsed = eventSchema.safeParse(input, { reportInput: true });
    if (!parsed.success) {
      const errors = fieldErrorsFromIssues(parsed.error.issues, EVENT_ISSUES);
      return { ok: false, errors, unknownFields: errors.some((err) => err.rule === 'unknown_field') };
    }
    e = parsed.data;
  }
  const errors: FieldError[] = [];

  if (ctx.actions && !ctx.actions.has(e.action)) {
    errors.push({
      path: 'action',
      rule: 'allowed_actions',
      message: `action "${e.action}" is not allowed here; allowed: ${[...ctx.actions].join(', ')}`,
    });
  }
  // The leaf is public proof material: a credential in a leaf field can never be removed later.
  // namespace and action too: their alphabet admits e.g. `suiprivkey1…`.
  for (const field of LEAF_TEXT_FIELDS) {
    const v = e[field];
    if (v !== undefined && (field === 'request_id' ? looksLikeSecret(v) : looksLikeSecretKept(v))) {
      errors.push({ path: field, rule: 'no_credentials', message: `${field} looks like a credential; credentials are never stored` });
    }
  }

  let ts = ctx.now;
  if (e.ts !== undefined) {
    const parsedTs = typeof e.ts === 'number' ? e.ts : parseRfc3339(e.ts);
    if (parsedTs === undefined) {
      errors.push({
        path: 'ts',
        rule: 'epoch_ms_or_rfc3339',
        message: 'ts must be epoch milliseconds or an RFC 3339 date-time, e.g. 2026-11-22T10:00:00Z',
      });
    } else if (parsedTs < 0) {
      // Reached only by a date-time text (numbers are ≥ 0 by the schema) and an accepted window
      // reaching back past 1970: a leaf holds ts as unsigned milliseconds, so it could not be stored.
      errors.push({
        path: 'ts',
        rule: 'epoch_ms_or_rfc3339',
        message: 'ts must not be before 1970-01-01T00:00:00Z: a leaf holds it as unsigned milliseconds',
      });
    } else if (parsedTs > ctx.now + ctx.maxFutureMs) {
      errors.push({
        path: 'ts',
        rule: `max_future_ms:${ctx.maxFutureMs}`,
        message: `ts is more than ${ctx.maxFutureMs / 1000} s in the future`,
      });
    } else if (parsedTs < ctx.now - ctx.maxAgeMs) {
      errors.push({
        path: 'ts',
        rule: `max_age_ms:${ctx.maxAgeMs}`,
        message: `ts is older than the accepted window of ${formatDuration(ctx.maxAgeMs)}`,
      });
    } else ts = parsedTs;
  }

  let metadata: string | null = null;
  let redacted: string[] = [];
  if (e.metadata !== undefined) {
    // Limits first, on the raw value: depth without recursion, then size, so no scan or
    // recursive walk ever sees more than the byte limit at the depth limit; then well-formed text; then scrub.
    const tooDeep = checkDepth(e.metadata, 'metadata', MAX_METADATA_DEPTH);
    if (tooDeep.length > 0) errors.push(...tooDeep);
    else if (utf8Length(JSON.stringify(e.metadata)) > MAX_METADATA_BYTES) {
      errors.push({
        path: 'metadata',
        rule: `max_bytes:${MAX_METADATA_BYTES}`,
        message: `metadata must serialize to at most ${MAX_METADATA_BYTES} bytes`,
      });
    } else {
      const illFormed = checkText(e.metadata, 'metadata');
      if (illFormed.length > 0) errors.push(...illFormed);
      const scrubbed = redactJson(e.metadata, 'metadata');
      redacted = scrubbed.redacted;
      metadata = canonicalJson(scrubbed.value);
    }
  }

  if (errors.length > 0) return { ok: false, errors, unknownFields: false };
  return {
    ok: true,
    event: {
      namespace: e.namespace,
      request_id: e.request_id,
      caller: e.caller,
      action: e.action,
      units: e.units ?? 1,
      artifact_digest: (e.artifact_digest ?? '').toLowerCase(),
      ts_ms: ts,
      ts_explicit: e.ts !== undefined,
      received_at: ctx.now,
      source: e.source ?? null,
      metadata,
      redacted,
    },
  };
}

function formatDuration(ms: number): string {
  const days = ms / 86_400_000;
  return Number.isInteger(days) ? `${days} day${days === 1 ? '' : 's'}` : `${ms} ms`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** RFC 3339 date-time to epoch ms (fractions below a millisecond truncated); undefined when invalid. */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 60) return undefined;
  // Date.UTC reads years 0–99 as 1900–1999: the year is set apart (on 2000, a leap year, so a
  // 29 February stands until the year is known).
  const at = new Date(Date.UTC(2000, mo - 1, d, h, mi, Math.min(sec, 59), ms));
  at.setUTCFullYear(y);
  if (at.getUTCDate() !== d) return undefined; // 2026-02-30, 2023-02-29 and the like
  const base = at.getTime();
  const offset = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) * 60_000;
  if (!m[8] && (Number(m[10]) > 23 || Number(m[11]) > 59)) return undefined;
  return base - offset;
}

/** UTF-8 length of a string; past MAX_METADATA_BYTES code units it is too long anyway, without encoding. */
function utf8Length(s: string): number {
  return s.length > MAX_METADATA_BYTES ? s.length : utf8.encode(s).length;
}

/** JSON with object keys sorted at every depth, so equal content has equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}
