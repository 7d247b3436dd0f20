// What both engines' classification stores share: the rows as periods, and the one rule that
// keeps a change from being retroactive (so the engines cannot drift on it).
import type { ClassificationPeriod, ClassificationPolicy } from '../event/classification.ts';
import { normalizePolicy, samePolicy, UNCONFIGURED } from '../event/classification.ts';
import { RetroactiveClassificationError, type ClassificationStore } from './types.ts';

export interface ClassificationRow {
  from_ms: number | bigint;
  billable: string;
  non_billable: string;
  other: string;
}

export function periodOfRow(r: ClassificationRow): ClassificationPeriod {
  return {
    from_ms: Number(r.from_ms),
    billable: JSON.parse(r.billable) as string[],
    non_billable: JSON.parse(r.non_billable) as string[],
    other: r.other as ClassificationPeriod['other'],
  };
}

const iso = (ms: number) => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms));

/**
 * The period to store, given what the ledger holds: the last period's start (or null), the
 * latest stored event time (or null) and the clock. Throws when fromMs would reclassify anything.
 */
export function periodToAppend(
  policy: ClassificationPolicy,
  opts: { fromMs?: number; now: number },
  held: { lastFrom: number | null; maxTs: number | null },
): ClassificationPeriod {
  const empty = held.lastFrom === null && held.maxTs === null;
  const earliest = empty ? 0 : Math.max(opts.now, (held.maxTs ?? -1) + 1, (held.lastFrom ?? -1) + 1);
  const from = opts.fromMs ?? earliest;
  if (!Number.isSafeInteger(from) || from < 0)
    throw new RangeError(`classification from must be an integer of milliseconds, 0 or more (got ${from})`);
  if (from < earliest) {
    const why =
      held.lastFrom !== null && held.lastFrom + 1 === earliest && held.lastFrom >= opts.now
        ? `a change is already scheduled from ${iso(held.lastFrom)}`
        : held.maxTs !== null && held.maxTs + 1 === earliest && held.maxTs >= opts.now
          ? `the ledger holds an event at ${iso(held.maxTs)}`
          : 'a change is never retroactive: it applies from now or later';
    throw new RetroactiveClassificationError(
      `classification from ${iso(from)} is refused: ${why}. Use a --classification-from of ${iso(earliest)} or later, or omit it to start at the earliest allowed time.`,
      earliest,
    );
  }
  return { from_ms: from, ...normalizePolicy(policy) };
}

/**
 * Brings the ledger's classification to the policy a server starts with: nothing when the latest
 * period (the one in force, or scheduled) already says the same; else a new period from fromMs
 * (default: the earliest allowed, see ClassificationStore.append). Never rewrites a period.
 */
export async function configureClassification(
  ledger: { classification: ClassificationStore },
  policy: ClassificationPolicy,
  opts: { fromMs?: number; now: number },
): Promise<{ changed: boolean; period: ClassificationPeriod }> {
  const stored = await ledger.classification.history();
  const latest = stored.at(-1) ?? UNCONFIGURED;
  if (samePolicy(latest, policy)) return { changed: false, period: latest };
  return { changed: true, period: await ledger.classification.append(policy, opts) };
}
