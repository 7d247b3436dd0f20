// The serve flags of billable classification: --billable-actions, --non-billable-actions,
// --other-actions, or a --classification FILE (JSON), and --classification-from TIME.
import { InvalidArgumentError } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { ACTION_CLASSES, validatePolicy, type ClassificationPolicy } from '../event/classification.ts';
import { parseRfc3339 } from '../event/validate.ts';

export interface ClassificationFlags {
  billableActions?: string[];
  nonBillableActions?: string[];
  otherActions?: (typeof ACTION_CLASSES)[number];
  classification?: string;
  classificationFrom?: number;
}

const MAX_FILE_BYTES = 1024 * 1024;

/** --classification-from: epoch milliseconds or an RFC 3339 date-time. */
export function instantArg(value: string): number {
  const ms = /^\d{1,16}$/.test(value) ? Number(value) : value.length <= 64 ? parseRfc3339(value) : undefined;
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0) throw new InvalidArgumentError('must be epoch milliseconds or an RFC 3339 date-time, e.g. 2026-01-01T00:00:00Z');
  return ms;
}

/** The policy the flags ask for, or undefined when none is given (the ledger's history stays in force). */
export function policyFromFlags(f: ClassificationFlags): { policy: ClassificationPolicy; fromMs?: number } | undefined {
  const listed = f.billableActions !== undefined || f.nonBillableActions !== undefined || f.otherActions !== undefined;
  if (f.classification !== undefined && listed) {
    throw new Error('--classification FILE and --billable-actions/--non-billable-actions/--other-actions are alternatives: give one or the other');
  }
  let input: unknown;
  let source: string;
  if (f.classification !== undefined) {
    source = f.classification;
    let text: string;
    try {
      if (statSync(f.classification).size > MAX_FILE_BYTES) throw new Error(`it is larger than ${MAX_FILE_BYTES} bytes`);
      text = readFileSync(f.classification, 'utf8');
    } catch (err) {
      throw new Error(`--classification ${f.classification}: cannot read it (${(err as Error).message}); give a JSON file like {"billable":["recall"],"non_billable":["ping"],"other":"info"}`);
    }
    try {
      input = JSON.parse(text);
    } catch (err) {
      throw new Error(`--classification ${f.classification} is not JSON (${(err as Error).message}); expected {"billable":[…],"non_billable":[…],"other":"info"}`);
    }
  } else if (listed) {
    source = '--billable-actions/--non-billable-actions/--other-actions';
    input = { billable: f.billableActions ?? [], non_billable: f.nonBillableActions ?? [], other: f.otherActions ?? 'info' };
  } else {
    if (f.classificationFrom !== undefined) throw new Error('--classification-from needs a classification: give --billable-actions (and --non-billable-actions, --other-actions) or --classification FILE');
    return undefined;
  }
  const r = validatePolicy(input);
  if (!r.ok) {
    const flag = (path: string) => (f.classification !== undefined ? path : path === 'billable' ? '--billable-actions' : path === 'non_billable' ? '--non-billable-actions' : path === 'other' ? '--other-actions' : path);
    throw new Error(`${source}: ${r.errors.map((e) => (e.message.startsWith(e.path) ? flag(e.path) + e.message.slice(e.path.length) : e.message)).join('; ')}`);
  }
  return { policy: r.policy, ...(f.classificationFrom !== undefined && { fromMs: f.classificationFrom }) };
}
