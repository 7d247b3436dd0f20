// One vocabulary: every API error code is in the registry with its status and sentence, the
// API reference (docs/api.md) lists them, and the field-error rules follow one grammar.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ERROR_CODES, errorMessage } from '../../src/api/error-codes.ts';
import { ApiError } from '../../src/api/errors.ts';
import { fieldErrorsFromIssues } from '../../src/event/field-errors.ts';

const apiDoc = readFileSync(join(import.meta.dirname, '../../docs/api.md'), 'utf8');

describe('error codes', () => {
  it('docs/api.md lists every code with its status, and no code the registry lacks', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      expect(apiDoc, code).toMatch(new RegExp(`\\| ${spec.status} \\| \`${code}\` \\|`));
    }
    // Strict both ways: a code documented but gone from the registry is a stale row.
    const listed = [...apiDoc.matchAll(/^\| (\d{3}) \| `([a-z0-9_]+)` \|/gm)].map((m) => m[2]);
    expect(listed.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('ApiError takes its status and sentence from the registry', () => {
    const e = new ApiError('too_many_events', { max: 1000, count: 1001 });
    expect(e).toMatchObject({
      statusCode: 413,
      code: 'too_many_events',
      message: 'a request holds at most 1000 events, this one 1001; split it',
    });
    for (const code of Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>) {
      expect(new ApiError(code).statusCode).toBe(ERROR_CODES[code].status);
      expect(errorMessage(code, {})).not.toMatch(/\{[a-z_]+\}/); // every placeholder filled (empty when not given)
    }
  });

  it('maps zod issues to one rule grammar, never zod words', () => {
    const schema = z.strictObject({
      n: z.number().int().min(1).max(9),
      s: z.string().max(3),
      e: z.enum(['a', 'b']),
      p: z.string().regex(/^x+$/),
      l: z.array(z.number()).max(2),
    });
    const parsed = schema.safeParse({ n: 10, s: 'abcd', e: 'c', p: 'y', l: [1, 2, 3], extra: 1 }, { reportInput: true });
    const errors = fieldErrorsFromIssues(parsed.error!.issues, {
      subject: 'body',
      known: Object.keys(schema.shape),
      unknownRule: 'unknown_field',
    });
    expect(errors.map((e) => [e.path, e.rule])).toEqual(
      expect.arrayContaining([
        ['n', 'max:9'],
        ['s', 'max_length:3'],
        ['e', 'one_of:a|b'],
        ['p', 'pattern:^x+$'],
        ['l', 'max_items:2'],
        ['extra', 'unknown_field'],
      ]),
    );
    for (const e of errors) {
      expect(e.rule).toMatch(/^[a-z_]+(?::.+)?$/);
      expect(e.message).not.toMatch(/Too big|Invalid input|expected/);
      expect(e.message.startsWith(e.path)).toBe(true);
    }
    const missing = z.object({ n: z.number() }).safeParse({}, { reportInput: true });
    expect(fieldErrorsFromIssues(missing.error!.issues, { subject: 'body', known: ['n'], unknownRule: 'unknown_field' })).toEqual([
      { path: 'n', rule: 'required', message: 'n is required' },
    ]);
  });
});
