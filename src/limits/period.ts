// Limits (issue 25, docs/api.md "Limits"), the pure part: which span of time a limit's period is
// at an instant, which thresholds a usage has crossed, and whether a request of some units still
// fits. No I/O: src/limits/check.ts reads the ledger and calls these.
import { windowStart } from '../usage/time-zone.ts';

export const PERIODS = ['day', 'month', 'total'] as const;
export type Period = (typeof PERIODS)[number];

/** The period of `now`: [from, to) of the zone's day or month, or all time (to: null, it never resets). */
export function periodAt(period: Period, tz: string, now: number): { from: number; to: number | null } {
  if (period === 'total') return { from: 0, to: null };
  const from = windowStart(tz, period, now);
  // The next window's start: the day (month) after holds an instant a little past the longest
  // day (month) ends, and its start is this window's end (DST days are 23 or 25 hours).
  const to = windowStart(tz, period, from + (period === 'day' ? 26 : 32 * 24) * 3_600_000);
  return { from, to };
}

/** What a limit says about thresholds (a LimitVersion has these fields). */
export interface Thresholds {
  hard: number | null;
  /** Percents of hard. */
  soft: number[] | null;
  /** Absolute thresholds. */
  soft_units: number[] | null;
}

export interface Threshold {
  /** `hard`, `soft:80` (percent of hard) or `soft_units:5000`. */
  name: string;
  kind: 'hard' | 'soft';
  /** The usage at which it is crossed (reached): used ≥ at. */
  at: number;
  percent?: number;
}

/** Every threshold of a limit, lowest first (a percent of hard rounds up: 80 % of 5 is 4). */
export function thresholdsOf(t: Thresholds): Threshold[] {
  const out: Threshold[] = [];
  if (t.hard !== null)
    for (const p of t.soft ?? []) out.push({ name: `soft:${p}`, kind: 'soft', at: Math.ceil((t.hard * p) / 100), percent: p });
  for (const u of t.soft_units ?? []) out.push({ name: `soft_units:${u}`, kind: 'soft', at: u });
  if (t.hard !== null) out.push({ name: 'hard', kind: 'hard', at: t.hard });
  return out.sort((a, b) => a.at - b.at || a.name.localeCompare(b.name));
}

/** The thresholds `used` has reached. */
export function crossed(t: Thresholds, used: bigint): Threshold[] {
  return thresholdsOf(t).filter((x) => used >= BigInt(x.at));
}

/**
 * Whether work of `increment` (units, or 1 event) fits under hard: only while something is left
 * (used < hard) and the work does not take it past hard. No hard: always.
 */
export function decide(hard: number | null, used: bigint, increment: number): { allowed: boolean; remaining: bigint | null } {
  if (hard === null) return { allowed: true, remaining: null };
  const left = BigInt(hard) - used;
  const remaining = left > 0n ? left : 0n;
  return { allowed: remaining > 0n && BigInt(increment) <= remaining, remaining };
}
