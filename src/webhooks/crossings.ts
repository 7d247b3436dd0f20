// Where crossings come from: the limits (src/limits/check.ts thresholdsCrossed). Every owner's
// limits in force now, each measured in its current period as of the ledger position read first;
// a limit whose every threshold of this period is already queued is not measured again. For an
// hour after a period ends its limits are measured in it too: a crossing in its last seconds
// (or while no instance led) is still alerted, not lost to the rollover.
import { alertKey, type Ledger } from '../ledger/index.ts';
import { thresholdsCrossed } from '../limits/check.ts';
import { periodAt, thresholdsOf } from '../limits/period.ts';
import type { CrossingSource } from './alerts.ts';
import type { Crossing } from './payload.ts';

/** How long after a period ends its crossings are still looked for, ms. */
export const PERIOD_GRACE_MS = 3_600_000;

export function limitCrossings(ledger: Ledger): CrossingSource {
  return async (now, queued) => {
    const owners = [...new Set((await ledger.keys.list()).map((k) => k.owner))];
    const out: Crossing[] = [];
    for (const owner of owners) {
      const namespaces = [...new Set((await ledger.limits.list(owner)).map((l) => l.namespace))];
      for (const namespace of namespaces) {
        // The instants measured at: now, and the last moment of a period that ended within the grace.
        const instants = [now];
        for (const limit of await ledger.limits.inForce(owner, namespace, now)) {
          const from = periodAt(limit.period, limit.tz, now).from;
          if (from > 0 && now - from < PERIOD_GRACE_MS && !instants.includes(from - 1)) instants.push(from - 1);
        }
        for (const at of instants) out.push(...(await crossingsAt(ledger, owner, namespace, at, now, queued)));
      }
    }
    return out;
  };
}

async function crossingsAt(
  ledger: Ledger,
  owner: string,
  namespace: string,
  now: number,
  measuredAt: number,
  queued: (key: string) => Promise<boolean>,
): Promise<Crossing[]> {
  const out: Crossing[] = [];
  for (const limit of await ledger.limits.inForce(owner, namespace, now)) {
    const thresholds = thresholdsOf(limit);
    if (thresholds.length === 0) continue;
    const period = periodAt(limit.period, limit.tz, now);
    const pending: string[] = [];
    for (const t of thresholds) if (!(await queued(alertKey(owner, limit.id, t.name, period.from)))) pending.push(t.name);
    if (pending.length === 0) continue;
    const measured = await thresholdsCrossed(ledger, owner, limit, now);
    for (const t of measured.crossed) {
      if (!pending.includes(t.name)) continue;
      out.push({
        owner,
        namespace,
        limit: {
          id: limit.id,
          version: limit.version,
          meter: limit.meter,
          actions: limit.actions,
          measure: limit.measure,
          hard: limit.hard,
        },
        period: { kind: limit.period, tz: limit.tz, from_ms: measured.period.from, to_ms: measured.period.to },
        threshold: { name: t.name, kind: t.kind, at: t.at, ...(t.percent !== undefined && { percent: t.percent }) },
        used: measured.used,
        as_of: measured.as_of,
        measured_at_ms: measuredAt,
      });
    }
  }
  return out;
}
