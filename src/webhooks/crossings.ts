// Where crossings come from: the limits (src/limits/check.ts thresholdsCrossed). Every owner's
// limits in force now, each measured in its current period as of the ledger position read first;
// a limit whose every threshold of this period is already queued is not measured again. For an
// hour after a period ends its limits are measured in it too: a crossing in its last seconds
// (or while no instance led) is still alerted, not lost to the rollover. A limit measured at the
// ledger position that is still the latest is not measured again for a while (REMEASURE_MS): no
// event, no new usage, so an idle ledger costs the leader no usage reads every tick.
import { alertKey, type Ledger } from '../ledger/index.ts';
import { thresholdsCrossed } from '../limits/check.ts';
import { periodAt, thresholdsOf } from '../limits/period.ts';
import type { CrossingSource } from './alerts.ts';
import type { Crossing } from './payload.ts';

/** How long after a period ends its crossings are still looked for, ms. */
export const PERIOD_GRACE_MS = 3_600_000;
/**
 * A limit measured at the latest position is measured again after this long even so, ms (on
 * PostgreSQL an event with a lower id may commit after the highest one was read).
 */
export const REMEASURE_MS = 30_000;
const MAX_REMEMBERED = 10_000;

/** Per (owner, limit, version, period): the position last measured at and when (real clock). */
type Measured = Map<string, { asOf: number; atMs: number }>;

export function limitCrossings(ledger: Ledger): CrossingSource {
  const measured: Measured = new Map();
  return async (now, queued) => {
    if (measured.size > MAX_REMEMBERED) measured.clear();
    const latest = await ledger.events.latestId();
    const fresh = (key: string) => {
      const m = measured.get(key);
      return m !== undefined && m.asOf === latest && Date.now() - m.atMs < REMEASURE_MS;
    };
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
        for (const at of instants) {
          out.push(...(await crossingsAt(ledger, owner, namespace, at, now, queued, fresh, measured)));
        }
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
  fresh: (key: string) => boolean,
  measured: Measured,
): Promise<Crossing[]> {
  const out: Crossing[] = [];
  for (const limit of await ledger.limits.inForce(owner, namespace, now)) {
    const thresholds = thresholdsOf(limit);
    if (thresholds.length === 0) continue;
    const period = periodAt(limit.period, limit.tz, now);
    const pending: string[] = [];
    for (const t of thresholds) if (!(await queued(alertKey(owner, limit.id, t.name, period.from)))) pending.push(t.name);
    if (pending.length === 0) continue;
    const key = JSON.stringify([owner, limit.id, limit.version, period.from]);
    if (fresh(key)) continue;
    const m = await thresholdsCrossed(ledger, owner, limit, now);
    measured.set(key, { asOf: m.as_of, atMs: Date.now() });
    for (const t of m.crossed) {
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
        period: { kind: limit.period, tz: limit.tz, from_ms: m.period.from, to_ms: m.period.to },
        threshold: { name: t.name, kind: t.kind, at: t.at, ...(t.percent !== undefined && { percent: t.percent }) },
        used: m.used,
        as_of: m.as_of,
        measured_at_ms: measuredAt,
      });
    }
  }
  return out;
}
