// The serve flags of billable classification: --billable-actions, --non-billable-actions,
// --other-actions, or a --classification FILE (JSON), and --classification-from TIME.
import { InvalidArgumentError } from 'commander';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { type ACTION_CLASSES, validatePolicy, type ClassificationPolicy } from '../event/classification.ts';
import { parseRfc3339 } from '../event/validate.ts';
import { CliError } from './errors.ts';

export interface ClassificationFlags {
  billableActions?: string[];
  nonBillableActions?: string[];
  otherActions?: (typeof ACTION_CLASSES)[number];
  classification?: string;
  classificationFrom?: number;
}

const MAX_FILE_BYTES = 1024 * 1024;

const EMPTY_LIST =
  'must name at least one action, e.g. recall,extract: an empty list would start a classification period with nothing billable, and periods are never removed; leave the flag and its variable unset to keep the classification in force';

/**
 * --billable-actions, --non-billable-actions: comma-separated actions, repeatable. An empty or
 * blank value (`RECEIPTS_BILLABLE_ACTIONS=` in a unit file, say) is refused, not read as "none":
 * it would append a period to the append-only history that bills nothing, permanently.
 */
export function actionListArg(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError(EMPTY_LIST);
  return [...(previous ?? []), ...items];
}

/**
 * The --classification file's text. Only a regular file of at most MAX_FILE_BYTES: /dev/zero
 * would fill memory and a FIFO would hang the start. Opened non-blocking (a FIFO opens at once,
 * then is refused), checked on the open descriptor, read with a bound (a file that grew is refused).
 */
function readClassificationFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('it is not a regular file (a device, FIFO, socket or directory is never read)');
    if (st.size > MAX_FILE_BYTES) throw new Error(`it is larger than ${MAX_FILE_BYTES} bytes`);
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > MAX_FILE_BYTES) throw new Error(`it is larger than ${MAX_FILE_BYTES} bytes`);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** --classification-from: epoch milliseconds or an RFC 3339 date-time. */
export function instantArg(value: string): number {
  const ms = /^\d{1,16}$/.test(value) ? Number(value) : value.length <= 64 ? parseRfc3339(value) : undefined;
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0)
    throw new InvalidArgumentError('must be epoch milliseconds or an RFC 3339 date-time, e.g. 2026-01-01T00:00:00Z');
  return ms;
}

/** The policy the flags ask for, or undefined when none is given (the ledger's history stays in force). */
export function policyFromFlags(f: ClassificationFlags): { policy: ClassificationPolicy; fromMs?: number } | undefined {
  const listed = f.billableActions !== undefined || f.nonBillableActions !== undefined || f.otherActions !== undefined;
  if (f.classification !== undefined && listed) {
    throw new CliError(
      'bad_config',
      '--classification FILE and --billable-actions/--non-billable-actions/--other-actions are alternatives: give one or the other',
    );
  }
  let input: unknown;
  let source: string;
  if (f.classification !== undefined) {
    source = f.classification;
    let text: string;
    try {
      if (f.classification.trim() === '') throw new Error('the file name is empty');
      text = readClassificationFile(f.classification);
    } catch (err) {
      throw new CliError(
        'bad_config',
        `--classification ${f.classification}: cannot read it (${(err as Error).message}); give a regular JSON file of at most ${MAX_FILE_BYTES} bytes like {"billable":["recall"],"non_billable":["ping"],"other":"info"}`,
        { cause: err },
      );
    }
    try {
      input = JSON.parse(text);
    } catch (err) {
      throw new CliError(
        'bad_config',
        `--classification ${f.classification} is not JSON (${(err as Error).message}); expected {"billable":[…],"non_billable":[…],"other":"info"}`,
        { cause: err },
      );
    }
  } else if (listed) {
    // The parsers refuse empty lists; this guards callers that build the flags themselves.
    for (const [name, list] of [
      ['--billable-actions', f.billableActions],
      ['--non-billable-actions', f.nonBillableActions],
    ] as const) {
      if (list !== undefined && list.length === 0) throw new CliError('bad_config', `${name} ${EMPTY_LIST}`);
    }
    source = '--billable-actions/--non-billable-actions/--other-actions';
    input = { billable: f.billableActions ?? [], non_billable: f.nonBillableActions ?? [], other: f.otherActions ?? 'info' };
  } else {
    if (f.classificationFrom !== undefined)
      throw new CliError(
        'bad_config',
        '--classification-from needs a classification: give --billable-actions (and --non-billable-actions, --other-actions) or --classification FILE',
      );
    return undefined;
  }
  const r = validatePolicy(input);
  if (!r.ok) {
    const flag = (path: string) =>
      f.classification !== undefined
        ? path
        : path === 'billable'
          ? '--billable-actions'
          : path === 'non_billable'
            ? '--non-billable-actions'
            : path === 'other'
              ? '--other-actions'
              : path;
    throw new CliError(
      'bad_config',
      `${source}: ${r.errors.map((e) => (e.message.startsWith(e.path) ? flag(e.path) + e.message.slice(e.path.length) : e.message)).join('; ')}`,
    );
  }
  return { policy: r.policy, ...(f.classificationFrom !== undefined && { fromMs: f.classificationFrom }) };
}
