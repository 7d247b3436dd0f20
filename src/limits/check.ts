// Limit checks (issue 25, docs/api.md "Limits"): how much a limit has used in its period, read
// through the ledger's exact usage machinery (sealed rollups plus the unsealed tail, in one
// snapshot) rather than a second counter, and the answer to "may this work run". Also what the
// alerts half needs: which thresholds a limit's usage has crossed in the current period.
import { exactUnits } from '../ledger/usage-fold.ts';
import type { Ledger, Units } from '../ledger/index.ts';
import { type LimitVersion, type SealedAsk, TALLY_BUCKET_MS, type TailRow } from '../ledger/limits.ts';
import { crossed, decide, periodAt, type Threshold, thresholdsOf } from './period.ts';

/** Most items one check request may hold. */
export const MAX_CHECK_ITEMS = 100;

export interface CheckItem {
  namespace: string;
  action: string;
  /** What the work will record (default 1); a limit measuring events counts the work as 1. */
  units?: number;
}

export interface CheckAnswer {
  allowed: boolean;
  /** The limit that decided (the one that refused, or the one with the least left); null: no limit applies. */
  limit_id: string | null;
  used: Units | null;
  remaining: Units | null;
  /** When the period ends (RFC 3339, UTC); null for a total limit or none. */
  resets_at: string | null;
  /** The ledger position the usage is exact as of: every event with an id ≤ as_of is counted. */
  as_of: number;
}

/** The usage of a limit at the position asOf, in the period holding `now`. */
export interface LimitUsage {
  limit: LimitVersion;
  period: { from: number; to: number | null };
  used: bigint;
  as_of: number;
}

/** [from, to) a usage read takes for a period (a total limit: all time). */
const END_OF_TIME = Number.MAX_SAFE_INTEGER;

/**
 * The usage of one limit in its period at `now`, as of ledger position `asOf`. Actions and measure:
 * usage by action, counted only up to asOf (exact at that position). A meter: its total over the
 * period (sum or count), which counts everything committed when it is read (≥ asOf).
 */
export async function usageOf(ledger: Ledger, owner: string, limit: LimitVersion, now: number, asOf: number): Promise<LimitUsage> {
  const period = periodAt(limit.period, limit.tz, now);
  const to = period.to ?? END_OF_TIME;
  let used = 0n;
  if (limit.meter !== null) {
    // A total limit reads months up to a year past now (events are never further in the future).
    const meterTo = period.to ?? now + 366 * 86_400_000;
    const r = await ledger.meters.usage({
      owner,
      name: limit.meter,
      namespace: limit.namespace,
      from: period.from,
      to: meterTo,
      window: limit.period === 'day' ? 'day' : 'month',
      tz: limit.tz,
    });
    used = r.total === null ? 0n : BigInt(r.total);
  } else {
    const r = await ledger.usage.query({
      namespace: limit.namespace,
      from: period.from,
      to,
      groupBy: 'action',
      asOf,
    });
    const pick = (g: { events: number; units: Units }) => BigInt(limit.measure === 'events' ? g.events : g.units);
    if (limit.actions === null) used = pick(r.totals);
    else {
      const wanted = new Set(limit.actions);
      for (const g of r.groups) if (wanted.has(g.key)) used += pick(g);
    }
  }
  return { limit, period, used, as_of: asOf };
}

type MeterInfo = { actions: string[] | null; aggregation: string | undefined };

/** A meter's actions in force at `now` (null: every action) and its aggregation, read once per call. */
async function meterInfo(ledger: Ledger, owner: string, meter: string, now: number, cache: Map<string, MeterInfo>): Promise<MeterInfo> {
  let info = cache.get(meter);
  if (!info) {
    const versions = await ledger.meters.versions(owner, meter);
    let inForce = versions[0];
    for (const v of versions) if (v.from_ms <= now) inForce = v;
    info = { actions: inForce?.actions ?? null, aggregation: inForce?.aggregation };
    cache.set(meter, info);
  }
  return info;
}

/** Most sealed sums kept (about 200 bytes each: some 2 MB). */
export const MAX_SEALED_CACHED = 10_000;
/** Most namespaces whose tail is kept, and most (action, bucket) rows kept for one. */
export const MAX_TAILS_CACHED = 1_000;
export const MAX_TAIL_ROWS = 50_000;

interface Tail {
  reach: number;
  /** Every not-rolled-up event with id ≤ pos is summed in rows and sums. */
  pos: number;
  rows: Map<string, TailRow>;
  /** Per limit (the sealed cache's key), its part of rows, kept up to date as rows grow. */
  sums: Map<string, TailSum>;
}

interface TailSum {
  from: number;
  to: number;
  wanted: Set<string> | null;
  n: bigint;
  units: bigint;
}

const counts = (s: TailSum, x: TailRow) => x.bucket >= s.from && x.bucket < s.to && (s.wanted === null || s.wanted.has(x.action));

const tailKey = (action: string, bucket: number) => `${bucket}\u0000${action}`;

/** Evicts the oldest entry past `max` (a Map keeps insertion order; a hit re-inserts). */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}

/**
 * What limit checks keep between rounds, exact because it only keeps what cannot change: a
 * limit's sealed part (its period's rollup buckets, which change only when the rollups reach
 * further) per (owner, limit version, period, reach), and per namespace the sums of the events
 * the rollups do not hold yet, by action and bucket, up to the last position read. A round reads
 * the reach, the position, and only the events past the last read (one read per namespace shared
 * by every limit of it); when the rollups move on, the namespace's tail is read afresh once.
 */
export class UsageCache {
  private readonly sealed = new Map<string, { n: bigint; units: bigint }>();
  private readonly tails = new Map<string, Tail>();

  /**
   * used of each limit (actions and measure, periods on bucket edges) at the position asOf, read
   * after reach; null when the rollups moved on meanwhile (the caller measures the slow way).
   */
  async measure(
    ledger: Ledger,
    owner: string,
    namespace: string,
    limits: readonly LimitVersion[],
    now: number,
    reach: number,
    asOf: number,
  ): Promise<Map<string, LimitUsage> | null> {
    const periods = limits.map((l) => periodAt(l.period, l.tz, now));
    const keys = limits.map((l, i) => `${owner}\u0000${l.id}\u0000${l.version}\u0000${periods[i]!.from}\u0000${reach}`);
    const sealedOf = keys.map((k) => this.sealed.get(k));
    const missing: number[] = [];
    for (const [i, s] of sealedOf.entries()) if (!s) missing.push(i);
    const asks: SealedAsk[] = missing.map((i) => ({
      actions: limits[i]!.actions,
      from: periods[i]!.from,
      to: periods[i]!.to ?? END_OF_TIME,
    }));
    const kept = this.tails.get(namespace);
    // Past the last read, when it holds the same reach and no later position than asked.
    const from = kept && kept.reach === reach && kept.pos <= asOf ? kept : undefined;
    const fromPos = from?.pos ?? 0;
    const t = await ledger.limits.tally(namespace, reach, fromPos, asOf, asks);
    if (t.reach !== reach) return null;
    for (const [j, i] of missing.entries()) {
      sealedOf[i] = t.sealed[j]!;
      remember(this.sealed, keys[i]!, t.sealed[j]!, MAX_SEALED_CACHED);
    }
    // Another round moved the kept tail on meanwhile: what this one read may be in it already.
    if (from && (this.tails.get(namespace) !== from || from.pos !== fromPos)) return null;
    const tail: Tail = from ?? { reach, pos: 0, rows: new Map(), sums: new Map() };
    // Updated in place, with no await until it is consistent again (pos last).
    for (const x of t.tail) {
      const k = tailKey(x.action, x.bucket);
      const had = tail.rows.get(k);
      tail.rows.set(k, had ? { ...had, n: had.n + x.n, units: had.units + x.units } : x);
      for (const sum of tail.sums.values())
        if (counts(sum, x)) {
          sum.n += x.n;
          sum.units += x.units;
        }
    }
    tail.pos = asOf;
    if (tail.sums.size > MAX_SEALED_CACHED) tail.sums.clear();
    const out = new Map<string, LimitUsage>();
    for (const [i, limit] of limits.entries()) {
      const period = periods[i]!;
      let sum = tail.sums.get(keys[i]!);
      if (!sum) {
        // A limit new to this tail: its part of every row, once.
        sum = { from: period.from, to: period.to ?? END_OF_TIME, wanted: limit.actions && new Set(limit.actions), n: 0n, units: 0n };
        for (const x of tail.rows.values())
          if (counts(sum, x)) {
            sum.n += x.n;
            sum.units += x.units;
          }
        tail.sums.set(keys[i]!, sum);
      }
      const n = sealedOf[i]!.n + sum.n;
      const units = sealedOf[i]!.units + sum.units;
      out.set(limit.id, { limit, period, used: limit.measure === 'events' ? n : units, as_of: asOf });
    }
    if (tail.rows.size > MAX_TAIL_ROWS) this.tails.delete(namespace);
    else remember(this.tails, namespace, tail, MAX_TAILS_CACHED);
    return out;
  }
}

/** Whether the cache can measure a limit: actions and measure over a period on bucket edges (every zone's today). */
function cacheable(limit: LimitVersion, now: number): boolean {
  if (limit.meter !== null) return false;
  const p = periodAt(limit.period, limit.tz, now);
  return p.from % TALLY_BUCKET_MS === 0 && (p.to === null || p.to % TALLY_BUCKET_MS === 0);
}

/**
 * Answers each item as if alone, against one ledger position read first (no reservation: the
 * race between two checks of the last unit is documented in docs/api.md "Limits"). Each limit is
 * measured once per call however many items it applies to; with a cache, a namespace's limits in
 * one tally that reads only what the cache does not hold.
 */
export async function checkLimits(
  ledger: Ledger,
  owner: string,
  items: readonly CheckItem[],
  now: number,
  cache?: UsageCache,
): Promise<CheckAnswer[]> {
  // The reach before the position: every rolled-up event was then acknowledged, so has an id ≤ asOf.
  const reach = cache ? await ledger.limits.reach() : 0;
  const asOf = await ledger.events.latestId();
  const limitsOf = new Map<string, Promise<LimitVersion[]>>();
  const cached = new Map<string, Promise<Map<string, LimitUsage> | null>>();
  const usage = new Map<string, Promise<LimitUsage>>();
  const meters = new Map<string, MeterInfo>();
  const out: CheckAnswer[] = [];
  for (const item of items) {
    let limits = limitsOf.get(item.namespace);
    if (!limits) limitsOf.set(item.namespace, (limits = ledger.limits.inForce(owner, item.namespace, now)));
    let fast = cached.get(item.namespace);
    if (!fast && cache) {
      const ls = (await limits).filter((l) => l.hard !== null && cacheable(l, now));
      // No limit to measure: nothing to read.
      fast = ls.length === 0 ? Promise.resolve(null) : cache.measure(ledger, owner, item.namespace, ls, now, reach, asOf);
      cached.set(item.namespace, fast);
    }
    const quickly = await fast;
    let best: { answer: CheckAnswer; remaining: bigint | null } | undefined;
    for (const limit of await limits) {
      if (limit.hard === null) continue;
      const meter = limit.meter === null ? undefined : await meterInfo(ledger, owner, limit.meter, now, meters);
      const actions = meter ? meter.actions : limit.actions;
      if (actions !== null && !actions.includes(item.action)) continue;
      let u = usage.get(limit.id);
      if (!u) {
        const quick = quickly?.get(limit.id);
        usage.set(limit.id, (u = quick ? Promise.resolve(quick) : usageOf(ledger, owner, limit, now, asOf)));
      }
      const { used, period } = await u;
      // One event per piece of work when events are counted; else the units it will record.
      const increment = limit.measure === 'events' || meter?.aggregation === 'count' ? 1 : (item.units ?? 1);
      const d = decide(limit.hard, used, increment);
      const answer: CheckAnswer = {
        allowed: d.allowed,
        limit_id: limit.id,
        used: exactUnits(used),
        remaining: d.remaining === null ? null : exactUnits(d.remaining),
        resets_at: period.to === null ? null : new Date(period.to).toISOString(),
        as_of: asOf,
      };
      // The refusing limit decides; among those that allow, the one with the least left.
      if (
        !best ||
        (best.answer.allowed && !d.allowed) ||
        (best.answer.allowed === d.allowed && d.remaining !== null && (best.remaining === null || d.remaining < best.remaining))
      )
        best = { answer, remaining: d.remaining };
    }
    out.push(best?.answer ?? { allowed: true, limit_id: null, used: null, remaining: null, resets_at: null, as_of: asOf });
  }
  return out;
}

interface Waiting {
  owner: string;
  items: readonly CheckItem[];
  resolve: (answers: CheckAnswer[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Checks in rounds, like group commit: while one round reads the ledger, the checks that arrive
 * wait, and the next round answers all of them with one read per limit (it starts after each of
 * them arrived, so each still counts everything acknowledged before it). Under load the cost of a
 * limit's measurement is shared by every check waiting for it.
 */
export class CheckRounds {
  private readonly ledger: Ledger;
  private readonly now: () => number;
  private waiting: Waiting[] = [];
  private running = false;
  /** Kept for the server's life, bounded (UsageCache's MAX_*). */
  private readonly cache = new UsageCache();

  constructor(ledger: Ledger, now: () => number) {
    this.ledger = ledger;
    this.now = now;
  }

  check(owner: string, items: readonly CheckItem[]): Promise<CheckAnswer[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ owner, items, resolve, reject });
      if (!this.running) void this.round();
    });
  }

  private async round(): Promise<void> {
    this.running = true;
    for (;;) {
      // One turn of the event loop first: on SQLite a round's reads do not yield to I/O, so the
      // requests that came in meanwhile reach this queue only now, and join the round.
      await new Promise((r) => setImmediate(r));
      if (this.waiting.length === 0) break;
      const batch = this.waiting;
      this.waiting = [];
      const now = this.now();
      const byOwner = new Map<string, Waiting[]>();
      for (const w of batch) {
        const list = byOwner.get(w.owner);
        if (list) list.push(w);
        else byOwner.set(w.owner, [w]);
      }
      await Promise.all(
        [...byOwner].map(async ([owner, ws]) => {
          try {
            const answers = await checkLimits(
              this.ledger,
              owner,
              ws.flatMap((w) => w.items),
              now,
              this.cache,
            );
            let i = 0;
            for (const w of ws) {
              w.resolve(answers.slice(i, i + w.items.length));
              i += w.items.length;
            }
          } catch (e) {
            for (const w of ws) w.reject(e);
          }
        }),
      );
    }
    this.running = false;
  }
}

export interface ThresholdsCrossed {
  limit: LimitVersion;
  /** The current period: [from, to) in ms (to null: a total limit, never reset). */
  period: { from: number; to: number | null };
  used: Units;
  /** The ledger position the usage was measured at (every event with id ≤ as_of counted). */
  as_of: number;
  /** The thresholds reached in this period, lowest first (`hard`, `soft:80`, `soft_units:5000`). */
  crossed: Threshold[];
}

/**
 * For the alerts half (webhooks): the thresholds of `limit` that the namespace's usage has reached
 * in the period holding `now`. An alert is due once per (limit id, period.from, threshold name).
 * Use `ledger.limits.inForce(owner, namespace, now)` for the limits of a namespace.
 */
export async function thresholdsCrossed(ledger: Ledger, owner: string, limit: LimitVersion, now: number): Promise<ThresholdsCrossed> {
  const asOf = await ledger.events.latestId();
  const u = await usageOf(ledger, owner, limit, now, asOf);
  return { limit, period: u.period, used: exactUnits(u.used), as_of: asOf, crossed: crossed(limit, u.used) };
}

export interface LimitStatus {
  id: string;
  version: number;
  meter: string | null;
  actions: string[] | null;
  measure: LimitVersion['measure'];
  period: LimitVersion['period'];
  tz: string;
  /** The current period (RFC 3339, UTC); to null for a total limit. */
  from: string;
  to: string | null;
  hard: number | null;
  used: Units;
  remaining: Units | null;
  /** Every threshold, lowest first, and whether this period's usage has reached it. */
  thresholds: Array<{ name: string; kind: 'hard' | 'soft'; at: number; percent?: number; crossed: boolean }>;
}

/** Each limit of the owner in force now on the namespace, with its usage in the current period, as of one ledger position. */
export async function limitStatus(
  ledger: Ledger,
  owner: string,
  namespace: string,
  now: number,
): Promise<{ as_of: number; limits: LimitStatus[] }> {
  const asOf = await ledger.events.latestId();
  const limits = (await ledger.limits.inForce(owner, namespace, now)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out: LimitStatus[] = [];
  for (const limit of limits) {
    const u = await usageOf(ledger, owner, limit, now, asOf);
    const reached = new Set(crossed(limit, u.used).map((t) => t.name));
    const d = decide(limit.hard, u.used, 0);
    out.push({
      id: limit.id,
      version: limit.version,
      meter: limit.meter,
      actions: limit.actions,
      measure: limit.measure,
      period: limit.period,
      tz: limit.tz,
      from: new Date(u.period.from).toISOString(),
      to: u.period.to === null ? null : new Date(u.period.to).toISOString(),
      hard: limit.hard,
      used: exactUnits(u.used),
      remaining: d.remaining === null ? null : exactUnits(d.remaining),
      thresholds: thresholdsOf(limit).map((t) => ({ ...t, crossed: reached.has(t.name) })),
    });
  }
  return { as_of: asOf, limits: out };
}
