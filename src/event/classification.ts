// Billable classification: every action is `billable`, `non_billable` or `info`, decided only by
// leaf fields (the action, at the event's ts_ms) and the published configuration: an ordered
// list of periods, each in force from its from_ms until the next one starts. So anyone holding
// receipts and the configuration (GET /v1/classification) recomputes the billable total.
// Pure: no I/O.
import type { FieldError } from './validate.ts';
import { ACTION_PATTERN, MAX_ACTION_LENGTH } from './limits.ts';

export const ACTION_CLASSES = ['billable', 'non_billable', 'info'] as const;
export type ActionClass = (typeof ACTION_CLASSES)[number];

/** One configuration, in force from from_ms (event time, ms) until the next period's from_ms. */
export interface ClassificationPeriod {
  from_ms: number;
  /** Actions that are billable. */
  billable: string[];
  /** Actions that are recorded but not billed. */
  non_billable: string[];
  /** The class of every action in neither list. */
  other: ActionClass;
}

/** The policy of a period without its start. */
export type ClassificationPolicy = Omit<ClassificationPeriod, 'from_ms'>;

/**
 * In force when nothing is configured, and before the first configured period: every action is
 * billable, so every unit counts (the behaviour before classification existed).
 */
export const UNCONFIGURED: ClassificationPeriod = Object.freeze({ from_ms: 0, billable: [], non_billable: [], other: 'billable' as const });

/** Most actions one list may name (each list is bound into the usage query). */
export const MAX_LISTED_ACTIONS = 1000;
/** Most periods a history may hold. */
export const MAX_PERIODS = 10_000;

/** The period in force at event time ts_ms: the last one starting at or before it, else UNCONFIGURED. */
export function periodAt(tsMs: number, history: readonly ClassificationPeriod[]): ClassificationPeriod {
  let found: ClassificationPeriod = UNCONFIGURED;
  for (const p of history) {
    if (p.from_ms <= tsMs) found = p;
    else break;
  }
  return found;
}

/** The class of an action in a policy. */
export function classOf(action: string, policy: ClassificationPolicy): ActionClass {
  if (policy.billable.includes(action)) return 'billable';
  if (policy.non_billable.includes(action)) return 'non_billable';
  return policy.other;
}

/** The class of an event: its action under the period in force at its ts_ms (both leaf fields). */
export function classify(action: string, tsMs: number, history: readonly ClassificationPeriod[]): ActionClass {
  return classOf(action, periodAt(tsMs, history));
}

/**
 * The whole history as published: the stored periods, preceded by UNCONFIGURED from 0 when the
 * first one starts later (or there is none), so the list alone classifies any event.
 */
export function effectiveHistory(stored: readonly ClassificationPeriod[]): ClassificationPeriod[] {
  const first = stored[0];
  return first && first.from_ms <= 0 ? [...stored] : [UNCONFIGURED, ...stored];
}

/** Lists sorted and without repeats: two equal policies compare equal. */
export function normalizePolicy(p: ClassificationPolicy): ClassificationPolicy {
  const norm = (list: string[]) => [...new Set(list)].sort();
  return { billable: norm(p.billable), non_billable: norm(p.non_billable), other: p.other };
}

/** Whether two policies classify every action the same way. */
export function samePolicy(a: ClassificationPolicy, b: ClassificationPolicy): boolean {
  const x = normalizePolicy(a);
  const y = normalizePolicy(b);
  return x.other === y.other && x.billable.join(',') === y.billable.join(',') && x.non_billable.join(',') === y.non_billable.join(',');
}

export type PolicyResult = { ok: true; policy: ClassificationPolicy } | { ok: false; errors: FieldError[] };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a policy (e.g. the JSON of a --classification file): `billable` and `non_billable` lists
 * of actions (the event alphabet), no action in both, `other` one of the classes (default info).
 */
export function validatePolicy(input: unknown, prefix = ''): PolicyResult {
  const errors: FieldError[] = [];
  if (!isRecord(input))
    return {
      ok: false,
      errors: [
        {
          path: prefix || 'classification',
          rule: 'type:object',
          message: `${prefix || 'classification'} must be an object with billable, non_billable and other`,
        },
      ],
    };
  const known = ['billable', 'non_billable', 'other'];
  for (const k of Object.keys(input)) {
    if (!known.includes(k))
      errors.push({
        path: prefix + k,
        rule: 'unknown_field',
        message: `${prefix + k} is not a field of a classification; known: ${known.join(', ')}`,
      });
  }
  const list = (name: 'billable' | 'non_billable'): string[] => {
    const v = input[name] ?? [];
    const path = prefix + name;
    if (!Array.isArray(v)) {
      errors.push({ path, rule: 'type:array', message: `${path} must be a list of actions` });
      return [];
    }
    if (v.length > MAX_LISTED_ACTIONS) {
      errors.push({ path, rule: `max_items:${MAX_LISTED_ACTIONS}`, message: `${path} may list at most ${MAX_LISTED_ACTIONS} actions` });
      return [];
    }
    const out: string[] = [];
    for (const a of v) {
      // Length before the pattern: a long string is refused without scanning it.
      if (typeof a !== 'string' || a.length < 1 || a.length > MAX_ACTION_LENGTH || !ACTION_PATTERN.test(a)) {
        const shown =
          typeof a === 'string'
            ? `"${a.length > MAX_ACTION_LENGTH ? `${a.slice(0, MAX_ACTION_LENGTH)}…` : a}"`
            : (JSON.stringify(a)?.slice(0, 64) ?? String(a));
        errors.push({
          path,
          rule: `pattern:${ACTION_PATTERN.source}`,
          message: `${path}: ${shown} is not an action: it must be 1 to ${MAX_ACTION_LENGTH} characters of ${ACTION_PATTERN.source}`,
        });
      } else out.push(a);
    }
    return out;
  };
  const billable = list('billable');
  const nonBillable = list('non_billable');
  const both = billable.filter((a) => nonBillable.includes(a));
  if (both.length > 0) {
    errors.push({
      path: `${prefix}non_billable`,
      rule: 'disjoint:billable',
      message: `${[...new Set(both)].map((a) => `"${a}"`).join(', ')} cannot be both billable and non_billable: list each action once`,
    });
  }
  const other = input.other ?? 'info';
  if (typeof other !== 'string' || !(ACTION_CLASSES as readonly string[]).includes(other)) {
    errors.push({
      path: `${prefix}other`,
      rule: `one_of:${ACTION_CLASSES.join('|')}`,
      message: `${prefix}other must be one of ${ACTION_CLASSES.join(', ')}`,
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, policy: normalizePolicy({ billable, non_billable: nonBillable, other: other as ActionClass }) };
}

/** Checks a whole history (as GET /v1/classification publishes it): valid periods, from_ms strictly increasing. */
export function validateHistory(input: unknown): { ok: true; history: ClassificationPeriod[] } | { ok: false; errors: FieldError[] } {
  if (!Array.isArray(input))
    return { ok: false, errors: [{ path: 'history', rule: 'type:array', message: 'history must be a list of periods' }] };
  if (input.length > MAX_PERIODS)
    return {
      ok: false,
      errors: [{ path: 'history', rule: `max_items:${MAX_PERIODS}`, message: `history may hold at most ${MAX_PERIODS} periods` }],
    };
  const errors: FieldError[] = [];
  const history: ClassificationPeriod[] = [];
  input.forEach((p: unknown, i) => {
    const at = `history[${i}].`;
    if (!isRecord(p)) {
      errors.push({
        path: `history[${i}]`,
        rule: 'type:object',
        message: `history[${i}] must be a period { from_ms, billable, non_billable, other }`,
      });
      return;
    }
    const { from_ms: from, ...rest } = p;
    if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) {
      errors.push({ path: `${at}from_ms`, rule: 'type:integer', message: `${at}from_ms must be an integer of milliseconds, 0 or more` });
    } else if (history.length > 0 && from <= history.at(-1)!.from_ms) {
      errors.push({
        path: `${at}from_ms`,
        rule: 'increasing',
        message: `${at}from_ms must be later than the period before it (periods are in order of from_ms)`,
      });
    }
    const r = validatePolicy(rest, at);
    if (!r.ok) errors.push(...r.errors);
    else if (typeof from === 'number') history.push({ from_ms: from, ...r.policy });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, history };
}
