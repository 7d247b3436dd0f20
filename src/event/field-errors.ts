// Field errors: one mapper from validation issues (zod's) to { path, rule, message }, and one rule
// grammar, `name` or `name:argument`, for every field error the API gives:
//   required, unknown_field, unknown_parameter, once           presence
//   type:<string|integer|number|object|array|boolean>          JSON type
//   min:N, max:N                                               number bounds (inclusive)
//   min_length:N, max_length:N                                 string length (UTF-16 code units)
//   max_items:N, max_bytes:N, max_depth:N                      list, serialized size, nesting
//   one_of:a|b|c                                               enumeration
//   pattern:<regex source>                                     alphabet (no slashes around it)
//   hex:64, epoch_ms_or_rfc3339, well_formed_text              formats
//   max_future_ms:N, max_age_ms:N                              event time window
//   plus named rules of one route (no_credentials, allowed_actions, namespace_forbidden,
//   same_as_recorded, before_to, requires:receipts=true, one_namespace, issued_cursor, same_order).
// Pure: no I/O. A message never repeats zod's own wording: it names the field and the rule.
import type { z } from 'zod';

/** One field error: where, which rule, and a sentence for a person. */
export interface FieldError {
  path: string;
  rule: string;
  message: string;
}

export interface IssueContext {
  /** What the top level is called in a sentence: `event`, `query`, … */
  subject: string;
  /** The known fields, listed when an unknown one is sent. */
  known: readonly string[];
  /** `unknown_field` for a body, `unknown_parameter` for a query string. */
  unknownRule: 'unknown_field' | 'unknown_parameter';
  /** Query strings: a repeated parameter (an array where a string is expected) is rule `once`. */
  query?: boolean;
  /** Fields whose format (pattern or union of forms) has a name: the rule and sentence to give. */
  formats?: Readonly<Record<string, CustomRule>>;
}

/** A custom check carries its rule and sentence as params: { rule, message }. */
export interface CustomRule {
  rule: string;
  /** Said after the field's name; the issue's own message is used when absent. */
  message?: string;
}

const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

export function fieldErrorsFromIssues(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): FieldError[] {
  return issues.flatMap((issue) => fieldErrorsOf(issue, ctx));
}

function fieldErrorsOf(issue: z.core.$ZodIssue, ctx: IssueContext): FieldError[] {
  const path = issue.path.map(String).join('.');
  const name = path || ctx.subject;
  const input = (issue as { input?: unknown }).input;
  const format = ctx.formats?.[path];
  if (format && (issue.code === 'invalid_format' || issue.code === 'invalid_union')) {
    return [{ path, rule: format.rule, message: `${name} ${format.message ?? 'is not valid'}` }];
  }
  switch (issue.code) {
    case 'unrecognized_keys': {
      const what = ctx.unknownRule === 'unknown_field' ? 'field' : 'parameter';
      return issue.keys.map((k) => ({
        path: path ? `${path}.${k}` : k,
        rule: ctx.unknownRule,
        message: `${k.slice(0, 64)} is not a known ${what}; known ${what}s: ${ctx.known.join(', ')}`,
      }));
    }
    case 'invalid_type': {
      if (input === undefined) return [{ path, rule: 'required', message: `${name} is required` }];
      if (ctx.query && Array.isArray(input)) return [{ path, rule: 'once', message: `${name} must be given once` }];
      const expected = issue.expected === 'int' ? 'integer' : issue.expected === 'record' ? 'object' : issue.expected;
      return [{ path, rule: `type:${expected}`, message: `${name} must be ${article(expected)} ${expected}` }];
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = Number(small ? (issue as { minimum: number | bigint }).minimum : (issue as { maximum: number | bigint }).maximum);
      const dir = small ? 'min' : 'max';
      const word = small ? 'least' : 'most';
      if (issue.origin === 'string')
        return [{ path, rule: `${dir}_length:${bound}`, message: `${name} must be at ${word} ${bound} characters` }];
      if (issue.origin === 'array' || issue.origin === 'set')
        return [{ path, rule: `${dir}_items:${bound}`, message: `${name} must hold at ${word} ${bound} items` }];
      return [{ path, rule: `${dir}:${bound}`, message: `${name} must be at ${word} ${bound}` }];
    }
    case 'invalid_value': {
      const values = issue.values.map(String);
      return [{ path, rule: `one_of:${values.join('|')}`, message: `${name} must be one of ${values.join(', ')}` }];
    }
    case 'invalid_format': {
      const pattern = 'pattern' in issue && issue.pattern !== undefined ? patternSource(issue.pattern as string | RegExp) : undefined;
      if (pattern !== undefined) return [{ path, rule: `pattern:${pattern}`, message: `${name} must match ${pattern}` }];
      return [{ path, rule: `format:${issue.format}`, message: `${name} must be ${article(issue.format)} ${issue.format}` }];
    }
    case 'custom': {
      const params = (issue.params ?? {}) as Partial<CustomRule>;
      return [{ path, rule: params.rule ?? 'invalid', message: `${name} ${params.message ?? issue.message}` }];
    }
    default: // never zod's own wording: the field and the rule, as a sentence
      return [{ path, rule: issue.code, message: `${name} is not valid (${issue.code.replaceAll('_', ' ')})` }];
  }
}

/** The source of a pattern, without the slashes and flags of its literal form. */
function patternSource(p: string | RegExp): string {
  if (p instanceof RegExp) return p.source;
  const literal = /^\/(.*)\/[a-z]*$/s.exec(p);
  return literal ? literal[1]! : p;
}
