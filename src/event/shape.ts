// Limits on the shape of free-form JSON (metadata), checked before anything recurses into it.
// Pure: no I/O. The walk is iterative, so a body of 100,000 nested arrays cannot overflow the
// stack here; it stops at the first container past the depth limit.
import type { FieldError } from './validate.ts';

/** Levels of nesting allowed in metadata, counting the metadata object itself as level 1. */
export const MAX_METADATA_DEPTH = 32;
/** Ill-formed text is reported at this many places at most. */
const MAX_TEXT_ERRORS = 10;

/**
 * Depth and text errors of a JSON value: nesting deeper than `maxDepth` (rule `max_depth:N`,
 * reported once at `path`), and keys or strings that are not well-formed Unicode (rule
 * `well_formed_text`, at their own path), since storing them would change them to U+FFFD.
 */
export function checkJsonShape(value: unknown, path: string, maxDepth: number): FieldError[] {
  const errors: FieldError[] = [];
  const illFormed = (at: string, what: string) => {
    if (errors.length < MAX_TEXT_ERRORS) {
      errors.push({ path: at, rule: 'well_formed_text', message: `${what} ${at} must be well-formed Unicode text (no lone surrogates)` });
    }
  };
  const stack: Array<{ v: unknown; at: string; depth: number }> = [{ v: value, at: path, depth: 1 }];
  while (stack.length > 0) {
    const { v, at, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (!v.isWellFormed()) illFormed(at, 'the string at');
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > maxDepth) {
      return [{ path, rule: `max_depth:${maxDepth}`, message: `${path} nests deeper than ${maxDepth} levels of objects and arrays; flatten it` }];
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], at: `${at}[${i}]`, depth: depth + 1 });
    } else {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, item] = entries[i]!;
        const child = `${at}.${k.toWellFormed()}`;
        if (!k.isWellFormed()) illFormed(child, 'the key');
        stack.push({ v: item, at: child, depth: depth + 1 });
      }
    }
  }
  return errors;
}
