// Limits on the shape of free-form JSON (metadata), checked before anything recurses into it.
// Pure: no I/O.
import type { FieldError } from './validate.ts';
/** Ill-formed text is reported at this many places at most. */
const MAX_TEXT_ERRORS = 10;

type Frame = { container: unknown[] | Record<string, unknown>; keys: string[] | null; next: number };

/**
 * The depth error of a JSON value nested deeper than `maxDepth` (rule `max_depth:N`), or none.
 * Iterative, with one frame per open level: a body of 250,000 nested arrays cannot overflow
 * the stack, it stops at the first container past the limit, and a wide value costs no memory.
 */
export function checkDepth(value: unknown, path: string, maxDepth: number): FieldError[] {
  if (value === null || typeof value !== 'object') return [];
  const open = (v: object): Frame =>
    Array.isArray(v) ? { container: v, keys: null, next: 0 } : { container: v as Record<string, unknown>, keys: Object.keys(v), next: 0 };
  const stack: Frame[] = [open(value)];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const size = top.keys ? top.keys.length : (top.container as unknown[]).length;
    if (top.next >= size) {
      stack.pop();
      continue;
    }
    const i = top.next++;
    const child = top.keys ? (top.container as Record<string, unknown>)[top.keys[i]!] : (top.container as unknown[])[i];
    if (child === null || typeof child !== 'object') continue;
    if (stack.length >= maxDepth) {
      return [
        { path, rule: `max_depth:${maxDepth}`, message: `${path} nests deeper than ${maxDepth} levels of objects and arrays; flatten it` },
      ];
    }
    stack.push(open(child));
  }
  return [];
}

/**
 * Keys and strings of a JSON value that are not well-formed Unicode (lone surrogates), each at
 * its path (rule `well_formed_text`): stored, they would turn into U+FFFD and no longer be what
 * was sent. Recursive: call it after `checkDepth` has bounded the depth.
 */
export function checkText(value: unknown, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const report = (at: string, what: string) => {
    if (errors.length < MAX_TEXT_ERRORS) {
      errors.push({ path: at, rule: 'well_formed_text', message: `${what} ${at} must be well-formed Unicode text (no lone surrogates)` });
    }
  };
  const walk = (v: unknown, at: string) => {
    if (typeof v === 'string') {
      if (!v.isWellFormed()) report(at, 'the string at');
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, `${at}[${i}]`));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        const child = `${at}.${k.toWellFormed()}`;
        if (!k.isWellFormed()) report(child, 'the key');
        walk(item, child);
      }
    }
  };
  walk(value, path);
  return errors;
}
