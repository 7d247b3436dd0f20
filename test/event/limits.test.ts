// The event field limits are one fact (src/event/limits.ts): validation, the API document, the
// CloudEvents schema and the receipt verifier all draw the line at the same length, so an event
// the API accepts always yields a receipt the verifier reads, and the document tells the truth.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CloudEventSchema } from '../../src/api/cloudevents-schema.ts';
import { EventInSchema } from '../../src/api/schemas.ts';
import { leafHash } from '../../src/event/leaf.ts';
import { LEAF_STRING_MAX, MAX_SOURCE_LENGTH, MAX_UNITS } from '../../src/event/limits.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { bytesToHex } from '../../src/encoding/hex.ts';
import { verifyReceipt } from '../../src/index.ts';

const ctx = { now: 1_763_800_000_000, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS };
const base = { namespace: 'acme', request_id: 'r1', caller: 'c', action: 'recall' };
const fill = (field: string, n: number) => (field === 'namespace' || field === 'action' ? 'a'.repeat(n) : 'x'.repeat(n));
const CE_ATTRIBUTE: Record<string, string> = { namespace: 'namespace', request_id: 'id', caller: 'subject', action: 'type' };

/** A one-leaf receipt of these event fields (a tree of one: the root is the leaf hash). */
function receiptOf(fields: typeof base) {
  const event = { ...fields, units: 1, artifact_digest: '', ts_ms: ctx.now };
  const leaf = bytesToHex(leafHash(event));
  return {
    version: 1,
    status: 'sealed',
    event,
    leaf_hash: leaf,
    epoch: 0,
    leaf_index: 0,
    tree_size: 1,
    proof: [],
    root: leaf,
    anchor: null,
  };
}

describe('event field limits, stated once', () => {
  it.each(Object.entries(LEAF_STRING_MAX))('%s: validation accepts %i characters and refuses one more, naming the rule', (field, max) => {
    expect(validateEvent({ ...base, [field]: fill(field, max) }, ctx).ok).toBe(true);
    const r = validateEvent({ ...base, [field]: fill(field, max + 1) }, ctx);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toContainEqual(expect.objectContaining({ path: field, rule: `max_length:${max}` }));
  });

  it.each(Object.entries(LEAF_STRING_MAX))(
    '%s: the verifier reads a receipt at %i characters and calls one more malformed',
    (field, max) => {
      expect(verifyReceipt(receiptOf({ ...base, [field]: fill(field, max) })).ok).toBe(true);
      const over = verifyReceipt(receiptOf({ ...base, [field]: fill(field, max + 1) }));
      expect(over).toMatchObject({ ok: false, code: 'malformed' });
      expect(over.reason).toContain(`1 to ${max} characters`);
    },
  );

  it('the API document and the CloudEvents schema state the same limits', () => {
    // As the OpenAPI document gets them: JSON Schema of the zod schemas (each is a named $def).
    const schemaOf = (s: z.ZodType, id: string) =>
      (z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as { $defs: Record<string, { properties: Record<string, any> }> }).$defs[
        id
      ]!;
    const event = schemaOf(EventInSchema, 'Event');
    const ce = schemaOf(CloudEventSchema, 'CloudEvent');
    for (const [field, max] of Object.entries(LEAF_STRING_MAX)) {
      expect(event.properties[field]!.maxLength, field).toBe(max);
      expect(ce.properties[CE_ATTRIBUTE[field]!].maxLength, CE_ATTRIBUTE[field]).toBe(max);
    }
    expect(event.properties.source!.maxLength).toBe(MAX_SOURCE_LENGTH);
    expect(ce.properties.source.maxLength).toBe(MAX_SOURCE_LENGTH);
    expect(event.properties.units!.maximum).toBe(MAX_UNITS);
    expect(ce.properties.data.properties.units.maximum).toBe(MAX_UNITS);
  });
});
