// Usage totals over [from, to) for one namespace, always through the (namespace, ts) index.
import type { Statement } from 'better-sqlite3';
import type { GroupBy, Units, UsageQuery, UsageResult, UsageStore } from '../types.ts';
import { GROUP_BY } from '../types.ts';
import type { Db } from './db.ts';
import { exactUnits } from '../common.ts';
import { effectiveHistory, type ClassificationPeriod } from '../../event/classification.ts';

const GROUP_EXPR: Record<GroupBy, string> = {
  action: 'action',
  caller: 'caller',
  hour: '(ts / 3600000) * 3600000',
  day: '(ts / 86400000) * 86400000',
};

// SQLite's sum() is a signed 64-bit integer and fails with "integer overflow" past 2^63−1:
// 1,025 events of the maximum units (2^53−1) would break a namespace's totals for good. So units
// are summed in three 18-bit slices (units < 2^53 = 2^(3·18−1)), each of whose sums stays exact
// below 2^45 events (more than a SQLite file can hold), and put together as a bigint.
const SLICE_BITS = 18n;
const SLICE_MASK = (1 << Number(SLICE_BITS)) - 1;

export const usageSql = (groupBy: GroupBy) =>
  `SELECT ${GROUP_EXPR[groupBy]} AS k, count(*) AS n, sum(units > 0) AS bn,
     sum(units & ${SLICE_MASK}) AS u0, sum((units >> ${SLICE_BITS}) & ${SLICE_MASK}) AS u1, sum(units >> ${2n * SLICE_BITS}) AS u2
   FROM events WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ?
   GROUP BY k ORDER BY k`;

/**
 * The same sums with billable ones beside them: b is 1 when the event's action is billable under
 * the period in force at its ts (the last one with from_ms <= ts), 0 otherwise. A billable event
 * also has units: one with 0 (a refused request) adds nothing to a bill, not even an event. The action lists
 * are bound parameters, one per action; the WHERE clause (and so the index plan) is unchanged.
 */
export function classifiedUsageSql(groupBy: GroupBy, history: readonly ClassificationPeriod[]): string {
  const whens = [...history]
    .reverse()
    .map((p) => `WHEN ts >= ? THEN ${billableCondition(p)}`)
    .join(' ');
  return `SELECT k, count(*) AS n,
     sum(units & ${SLICE_MASK}) AS u0, sum((units >> ${SLICE_BITS}) & ${SLICE_MASK}) AS u1, sum(units >> ${2n * SLICE_BITS}) AS u2,
     sum(b * (units > 0)) AS bn, sum(b * (units & ${SLICE_MASK})) AS b0, sum(b * ((units >> ${SLICE_BITS}) & ${SLICE_MASK})) AS b1, sum(b * (units >> ${2n * SLICE_BITS})) AS b2
   FROM (SELECT ${GROUP_EXPR[groupBy]} AS k, units, CASE ${whens} ELSE 1 END AS b
         FROM events WHERE namespace = ? AND ts >= ? AND ts < ? AND seq <= ?)
   GROUP BY k ORDER BY k`;
}

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** Billable under p: listed billable, or (other = billable) not listed non-billable. */
function billableCondition(p: ClassificationPeriod): string {
  return p.other === 'billable' ? `(action NOT IN (${placeholders(p.non_billable.length)}))` : `(action IN (${placeholders(p.billable.length)}))`;
}

/** The bound values of classifiedUsageSql's CASE, in the order they appear. */
function classificationParams(history: readonly ClassificationPeriod[]): Array<string | number> {
  return [...history].reverse().flatMap((p) => [p.from_ms, ...(p.other === 'billable' ? p.non_billable : p.billable)]);
}

/** A statement's shape: the group, and per period (newest first) its kind and list length. */
const shapeOf = (groupBy: GroupBy, history: readonly ClassificationPeriod[]) =>
  `${groupBy}:${[...history].reverse().map((p) => (p.other === 'billable' ? `n${p.non_billable.length}` : `i${p.billable.length}`)).join(',')}`;

const MAX_CACHED_STATEMENTS = 64;

function unitsOf(r: { u0: bigint; u1: bigint; u2: bigint }): bigint {
  return r.u0 + (r.u1 << SLICE_BITS) + (r.u2 << (2n * SLICE_BITS));
}


type Row = { k: string | bigint; n: bigint; u0: bigint; u1: bigint; u2: bigint; bn?: bigint; b0?: bigint; b1?: bigint; b2?: bigint };

export class SqliteUsageStore implements UsageStore {
  private readonly db: Db;
  private readonly history: () => ClassificationPeriod[];
  private readonly stmts: Record<GroupBy, Statement<[string, number, number, number]>>;
  private readonly classified = new Map<string, Statement>();

  /** history: the stored classification periods, read on every query (one small table). */
  constructor(db: Db, history: () => ClassificationPeriod[] = () => []) {
    this.db = db;
    this.history = history;
    const prepare = (g: GroupBy) => db.prepare<[string, number, number, number]>(usageSql(g)).safeIntegers(true);
    this.stmts = Object.fromEntries(GROUP_BY.map((g) => [g, prepare(g)])) as Record<GroupBy, Statement<[string, number, number, number]>>;
  }

  async query(q: UsageQuery): Promise<UsageResult> {
    const stored = this.history();
    const asOf = q.asOf ?? Number.MAX_SAFE_INTEGER;
    let rows: Row[];
    if (stored.length === 0) {
      // Nothing configured: every action is billable, so the billable sums are the sums.
      rows = this.stmts[q.groupBy].all(q.namespace, q.from, q.to, asOf) as Row[];
    } else {
      const history = effectiveHistory(stored);
      const shape = shapeOf(q.groupBy, history);
      let stmt = this.classified.get(shape);
      if (!stmt) {
        if (this.classified.size >= MAX_CACHED_STATEMENTS) this.classified.clear();
        stmt = this.db.prepare(classifiedUsageSql(q.groupBy, history)).safeIntegers(true);
        this.classified.set(shape, stmt);
      }
      rows = stmt.all(...classificationParams(history), q.namespace, q.from, q.to, asOf) as Row[];
    }
    let events = 0n;
    let units = 0n;
    let billableEvents = 0n;
    let billableUnits = 0n;
    const groups = rows.map((r) => {
      const u = unitsOf(r);
      const bn = r.bn ?? r.n;
      const bu = r.b0 === undefined ? u : unitsOf({ u0: r.b0, u1: r.b1!, u2: r.b2! });
      events += r.n;
      units += u;
      billableEvents += bn;
      billableUnits += bu;
      const key = typeof r.k === 'bigint' ? new Date(Number(r.k)).toISOString() : r.k;
      return { key, events: Number(r.n), units: exactUnits(u), billable_events: Number(bn), billable_units: exactUnits(bu) };
    });
    return {
      namespace: q.namespace,
      from: q.from,
      to: q.to,
      group_by: q.groupBy,
      groups,
      totals: { events: Number(events), units: exactUnits(units), billable_events: Number(billableEvents), billable_units: exactUnits(billableUnits) },
    };
  }
}
