// The ingest fast paths against the slow ones they stand in for, over generated events that
// include hostile ones: validateEvent (a hand-written shape check, zod only for errors) must
// give exactly what the zod schema gives, accept or reject, same errors, same stored values;
// the ledger's leaf hash (node:crypto on one preimage buffer) must equal the pure leafHash.
import { describe, expect, it } from 'vitest';
import { bytesToHex, encodeLeaf, leafHash, leafPreimage, type LeafFields } from '../../src/event/leaf.ts';
import { validateEvent, validateEventWithSchema, type ValidationContext } from '../../src/event/validate.ts';
import { leafHashOf } from '../../src/ledger/event-record.ts';

const NOW = 1_780_000_000_000;
const ctx: ValidationContext = { now: NOW, maxAgeMs: 35 * 86_400_000, maxFutureMs: 300_000 };

let seed = 26;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chars = ['a', 'z', '0', '9', '.', '_', '-', '/', 'A', ' ', 'é', '東', '😀', '\ud800', '\udc00', '\u0000', '%', '=', ':', '@'];
const str = (max: number) => Array.from({ length: Math.floor(rand() * max) }, () => pick(chars)).join('');
const word = (n: number) => Array.from({ length: n }, () => pick(['a', 'b', 'x', '0', '7', '-', '.'])).join('');

/** Values that break some rule of some field: wrong types, edges of every bound, odd objects. */
const hostile: unknown[] = [
  undefined,
  null,
  true,
  0,
  -0,
  -1,
  1.5,
  2 ** 53,
  2 ** 53 - 1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  ' ',
  '3',
  'A',
  'a'.repeat(64),
  'a'.repeat(65),
  'a'.repeat(128),
  'a'.repeat(129),
  'a'.repeat(256),
  'a'.repeat(257),
  'ab'.repeat(32),
  'AB'.repeat(32),
  'ab'.repeat(31),
  'zz'.repeat(32),
  'x\u0000y',
  'x\ud800y',
  '2026-05-28T10:00:00Z',
  '2026-02-30T00:00:00Z',
  'Bearer abcdefghijklmnopqrstuv',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig',
  'sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345',
  [],
  [1],
  {},
  { a: 1 },
  JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}'),
  Object.create(null),
  new Map(),
  new Date(0),
  { password: 'hunter2', nested: { token: 'x', ok: 'fine' } },
  { deep: JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) },
  { big: 'x'.repeat(5000) },
  { ['bad\ud800key']: 1 },
];

const FIELDS = ['request_id', 'namespace', 'action', 'caller', 'units', 'artifact_digest', 'ts', 'source', 'metadata'] as const;

function validFields(): Record<string, unknown> {
  const e: Record<string, unknown> = {
    request_id: `req-${rand() < 0.2 ? str(20) : word(8)}${Math.floor(rand() * 1e9)}`,
    namespace: pick(['acme/prod', 'a', 'acme/bench', `${word(3)}/${word(4)}`]),
    action: pick(['recall', 'embed', 'x', word(5)]),
    caller: pick(['user-1', 'agent-7', 'Ünïcode 東 😀', '0xabc', rand() < 0.3 ? str(30) : word(12)]),
  };
  if (rand() < 0.6) e.units = pick([0, 1, 3, 1000, Number.MAX_SAFE_INTEGER]);
  if (rand() < 0.3) e.artifact_digest = pick(['', 'ab'.repeat(32), 'AB'.repeat(32)]);
  if (rand() < 0.5) e.ts = pick([NOW, NOW - 1000, '2026-05-28T20:00:00Z', '2026-05-28T20:00:00.123+02:00']);
  if (rand() < 0.3) e.source = pick(['https://example.com/svc', 'svc', str(10)]);
  if (rand() < 0.4) e.metadata = pick([{ model: 'gpt', tokens: 12 }, { a: [1, { b: 'c' }], z: null }, {}, { authorization: 'Bearer x' }]);
  return e;
}

function generated(): unknown {
  const r = rand();
  if (r < 0.03) return pick(hostile); // not an object at all, or an odd one
  const e = validFields();
  if (r < 0.35) return e; // valid as sent (most of them)
  // One to three fields replaced by hostile values (or removed), sometimes an unknown field.
  for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
    const f = pick(FIELDS);
    if (rand() < 0.15) delete e[f];
    else e[f] = pick(hostile);
  }
  if (rand() < 0.1) e[pick(['unit', 'extra', '__proto__x', 'constructor'])] = 1;
  if (rand() < 0.05) return Object.assign(Object.create({ inherited: 1 }), e);
  if (rand() < 0.05) return Object.assign(Object.create(null), e);
  if (rand() < 0.03) return Object.assign(new (class Event {})(), e);
  return e;
}

describe('validateEvent fast path', () => {
  it('gives exactly what the zod schema gives: the same accept or reject, errors and stored values (20,000 generated events)', () => {
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const input = generated();
      const fast = validateEvent(input, ctx);
      const slow = validateEventWithSchema(input, ctx);
      expect(fast, `input ${i}`).toEqual(slow);
      if (fast.ok) accepted++;
    }
    // Both kinds were exercised in quantity.
    expect(accepted).toBeGreaterThan(3000);
    expect(accepted).toBeLessThan(17_000);
  });

  it('every hostile value in every field, alone, is answered the same both ways', () => {
    const base = validFields();
    for (const f of FIELDS) {
      for (const v of hostile) {
        const input = { ...base, [f]: v };
        expect(validateEvent(input, ctx), `${f} = ${typeof v === 'string' ? v.slice(0, 40) : typeof v}`).toEqual(
          validateEventWithSchema(input, ctx),
        );
      }
    }
  });

  it('a scrubbed credential and a credential-looking leaf field are handled the same on a repeat (the kept answer)', () => {
    const e = { request_id: 'r1', namespace: 'acme/prod', action: 'recall', caller: 'Bearer abcdefghijklmnopqrstuv' };
    for (let i = 0; i < 3; i++) {
      const v = validateEvent(e, ctx);
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.errors).toContainEqual(expect.objectContaining({ path: 'caller', rule: 'no_credentials' }));
    }
  });
});

describe('leaf hash through node:crypto', () => {
  it('equals leafHash, and its preimage is 0x00 ‖ encodeLeaf, for generated events (unicode, u64 edges)', () => {
    const units = [0, 1, 127, 128, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 2000; i++) {
      const fields: LeafFields = {
        namespace: str(130).toWellFormed(),
        request_id: str(200).toWellFormed(),
        caller: str(300).toWellFormed(),
        action: str(10).toWellFormed(),
        units: i < units.length ? units[i]! : Math.floor(rand() * Number.MAX_SAFE_INTEGER),
        artifact_digest: rand() < 0.5 ? '' : bytesToHex(Uint8Array.from({ length: 32 }, () => Math.floor(rand() * 256))),
        ts_ms: Math.floor(rand() * 4e12),
      };
      expect(bytesToHex(leafPreimage(fields))).toBe(`00${bytesToHex(encodeLeaf(fields))}`);
      expect(leafHashOf({ ...fields, ts_explicit: true, received_at: 0, source: null, metadata: null, redacted: [] }).toString('hex')).toBe(
        bytesToHex(leafHash(fields)),
      );
    }
  });
});
