// Limits (issue 25, docs/api.md "Limits"), once for both engines: what a limit is, how a PUT or a
// DELETE becomes a version, and a stored row as a version. A limit belongs to an owner (the key's)
// and counts one namespace's usage: a meter's sum or count, or the units or events of some actions,
// in a period (a day or month of a time zone, or all time). Versioned like meters: each change is
// a row applying from a stated time, never rewritten. Pure: no I/O (sqlite/ and postgres/limits.ts
// store the rows).
import { MAX_NAMESPACE_LENGTH, NAMESPACE_PATTERN } from '../event/limits.ts';
import { PERIODS, type Period } from '../limits/period.ts';
import { checkTimeZone } from '../usage/time-zone.ts';
import { checkMeterActions, METER_NAME_PATTERN } from './meters.ts';

export const MEASURES = ['units', 'events'] as const;
export type Measure = (typeof MEASURES)[number];

/** Bounded and linear: one anchored class with a counted repeat (as meter names). */
export const LIMIT_ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
export const MAX_LIMITS_PER_OWNER = 1000;
export const MAX_LIMIT_VERSIONS = 1000;
export const MAX_SOFT_THRESHOLDS = 10;

export interface LimitVersion {
  id: string;
  version: number;
  namespace: string;
  /** The meter counted (its total over the period), or null: `actions` and `measure`. */
  meter: string | null;
  /** null: every action. Always null with a meter (the meter says which actions). */
  actions: string[] | null;
  /** `meter` when a meter is counted. */
  measure: Measure | 'meter';
  period: Period;
  tz: string;
  hard: number | null;
  soft: number[] | null;
  soft_units: number[] | null;
  /** A deletion: from from_ms on, the limit is gone. */
  deleted: boolean;
  from_ms: number;
  created_at: number;
}

/** A PUT's body, checked (checkLimitInput). */
export interface LimitInput {
  namespace: string;
  meter: string | null;
  actions: string[] | null;
  measure: Measure | 'meter';
  period: Period;
  tz: string;
  hard: number | null;
  soft: number[] | null;
  soft_units: number[] | null;
  fromMs?: number;
  retroactive?: boolean;
}

/** A refused limit change: the field, the rule, and the status it answers with. */
export class LimitError extends RangeError {
  readonly field: string;
  readonly rule: string;
  readonly status: 400 | 404 | 409;
  constructor(field: string, rule: string, message: string, status: 400 | 404 | 409 = 400) {
    super(message);
    this.name = 'LimitError';
    this.field = field;
    this.rule = rule;
    this.status = status;
  }
}

export function checkLimitId(id: unknown): string {
  if (typeof id !== 'string' || !LIMIT_ID_PATTERN.test(id))
    throw new LimitError(
      'id',
      `pattern:${LIMIT_ID_PATTERN.source}`,
      `id must be 1 to 64 characters of ${LIMIT_ID_PATTERN.source}, not ${JSON.stringify(String(id).slice(0, 70))}`,
    );
  // Paths of their own under /v1/limits/.
  if (RESERVED_IDS.includes(id))
    throw new LimitError('id', `reserved:${RESERVED_IDS.join('|')}`, `id ${id} is a path of the API (/v1/limits/${id}); choose another`);
  return id;
}

const RESERVED_IDS = ['check', 'usage'];

const positive = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/** The raw body fields a PUT may carry (the route's schema has checked their JSON types). */
export interface LimitBody {
  namespace: string;
  meter?: string;
  actions?: string[];
  measure?: string;
  period: string;
  tz?: string;
  hard?: number;
  soft?: number[];
  soft_units?: number[];
}

/** A body as a limit, or a LimitError naming the first field that breaks a rule and the rule. */
export function checkLimitInput(b: LimitBody): Omit<LimitInput, 'fromMs' | 'retroactive'> {
  if (typeof b.namespace !== 'string' || b.namespace.length > MAX_NAMESPACE_LENGTH || !NAMESPACE_PATTERN.test(b.namespace))
    throw new LimitError('namespace', `pattern:${NAMESPACE_PATTERN.source}`, `namespace must be a namespace (${NAMESPACE_PATTERN.source})`);
  let meter: string | null = null;
  let actions: string[] | null = null;
  let measure: Measure | 'meter';
  if (b.meter !== undefined) {
    if (b.actions !== undefined || b.measure !== undefined)
      throw new LimitError(
        b.actions !== undefined ? 'actions' : 'measure',
        'excludes:meter',
        'a limit counts either a meter, or actions with a measure: not both (the meter says which actions it counts)',
      );
    if (typeof b.meter !== 'string' || !METER_NAME_PATTERN.test(b.meter))
      throw new LimitError('meter', `pattern:${METER_NAME_PATTERN.source}`, `meter must be a meter name (${METER_NAME_PATTERN.source})`);
    meter = b.meter;
    measure = 'meter';
  } else {
    if (b.measure === undefined || !(MEASURES as readonly string[]).includes(b.measure))
      throw new LimitError(
        'measure',
        `enum:${MEASURES.join('|')}`,
        'measure must be "units" or "events" (or give "meter" instead, to count a meter)',
      );
    measure = b.measure as Measure;
    try {
      actions = checkMeterActions(b.actions);
    } catch (e) {
      const m = e as { field?: string; rule?: string; message: string };
      throw new LimitError(m.field ?? 'actions', m.rule ?? 'invalid', m.message);
    }
  }
  if (!(PERIODS as readonly string[]).includes(b.period))
    throw new LimitError('period', `enum:${PERIODS.join('|')}`, `period must be one of ${PERIODS.join(', ')}`);
  let tz = 'UTC';
  if (b.tz !== undefined) {
    try {
      tz = checkTimeZone(b.tz);
    } catch (e) {
      throw new LimitError('tz', 'iana_time_zone', (e as Error).message);
    }
  }
  const hard = b.hard ?? null;
  if (hard !== null && !positive(hard))
    throw new LimitError('hard', 'integer_min:1', 'hard must be a whole number ≥ 1 (omit it for a limit with soft thresholds only)');
  const soft = b.soft === undefined ? null : [...new Set(b.soft)].sort((x, y) => x - y);
  if (soft !== null) {
    if (hard === null)
      throw new LimitError('soft', 'requires:hard', 'soft thresholds are percents of hard: give hard too (or use soft_units)');
    if (soft.length < 1 || soft.length > MAX_SOFT_THRESHOLDS)
      throw new LimitError('soft', `max_items:${MAX_SOFT_THRESHOLDS}`, `soft must list 1 to ${MAX_SOFT_THRESHOLDS} percents`);
    for (const [i, p] of soft.entries())
      if (!(Number.isInteger(p) && p >= 1 && p <= 100))
        throw new LimitError(`soft.${i}`, 'integer_range:1..100', 'soft thresholds are whole percents of hard, 1 to 100');
  }
  const softUnits = b.soft_units === undefined ? null : [...new Set(b.soft_units)].sort((x, y) => x - y);
  if (softUnits !== null) {
    if (softUnits.length < 1 || softUnits.length > MAX_SOFT_THRESHOLDS)
      throw new LimitError('soft_units', `max_items:${MAX_SOFT_THRESHOLDS}`, `soft_units must list 1 to ${MAX_SOFT_THRESHOLDS} thresholds`);
    for (const [i, u] of softUnits.entries())
      if (!positive(u)) throw new LimitError(`soft_units.${i}`, 'integer_min:1', 'soft_units are whole numbers ≥ 1');
  }
  if (hard === null && softUnits === null)
    throw new LimitError('hard', 'required', 'a limit needs hard, or soft_units (thresholds that only alert)');
  return { namespace: b.namespace, meter, actions, measure, period: b.period as Period, tz, hard, soft, soft_units: softUnits };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The definition a version holds (what a PUT compares to know whether anything changed). */
const definition = (v: Omit<LimitInput, 'fromMs' | 'retroactive'> | LimitVersion) => [
  v.namespace,
  v.meter,
  v.actions,
  v.measure,
  v.period,
  v.tz,
  v.hard,
  v.soft,
  v.soft_units,
];

/**
 * The version a PUT (or, with `deleted`, a DELETE) adds to `existing` (in order), or null when it
 * changes nothing (the definition in force now, asked again without a from). A from before now
 * needs retroactive: true, as for meters: checks and alerts already answered would change.
 */
export function nextLimitVersion(
  existing: readonly LimitVersion[],
  id: string,
  input: LimitInput & { deleted?: boolean },
  now: number,
): LimitVersion | null {
  const latest = existing.at(-1);
  const from = input.fromMs ?? now;
  if (from < now && input.retroactive !== true)
    throw new LimitError(
      'from',
      'requires:retroactive=true',
      `from ${new Date(from).toISOString()} is in the past: a version from then changes what checks already answered; send "retroactive": true to do that on purpose`,
    );
  const deleted = input.deleted === true;
  if (
    latest &&
    input.fromMs === undefined &&
    latest.from_ms <= now &&
    latest.deleted === deleted &&
    same(definition(latest), definition(input))
  )
    return null;
  if (existing.length >= MAX_LIMIT_VERSIONS)
    throw new LimitError('id', `max_versions:${MAX_LIMIT_VERSIONS}`, `limit ${id} has ${MAX_LIMIT_VERSIONS} versions, the most kept`, 409);
  return {
    id,
    version: (latest?.version ?? 0) + 1,
    namespace: input.namespace,
    meter: input.meter,
    actions: input.actions,
    measure: input.measure,
    period: input.period,
    tz: input.tz,
    hard: input.hard,
    soft: input.soft,
    soft_units: input.soft_units,
    deleted,
    from_ms: from,
    created_at: now,
  };
}

/** The version in force at `at`: the highest version whose from is at or before it (a later version governs from its from). */
export function inForceAt(versions: readonly LimitVersion[], at: number): LimitVersion | undefined {
  let best: LimitVersion | undefined;
  for (const v of versions) if (v.from_ms <= at && (!best || v.version > best.version)) best = v;
  return best;
}

/** Per limit id (rows grouped by id, in version order), the version in force at `at`, if it is of `namespace` and not a deletion. */
export function inForceAll(versions: LimitVersion[], namespace: string, at: number): LimitVersion[] {
  const byId = new Map<string, LimitVersion[]>();
  for (const v of versions) {
    const list = byId.get(v.id);
    if (list) list.push(v);
    else byId.set(v.id, [v]);
  }
  const out: LimitVersion[] = [];
  for (const list of byId.values()) {
    const v = inForceAt(list, at);
    if (v && !v.deleted && v.namespace === namespace) out.push(v);
  }
  return out;
}

/** Rollup buckets are 15 minutes: a limit's sealed part is read whole buckets at a time. */
export const TALLY_BUCKET_MS = 900_000;

/** One limit's question to the rollups: its actions (null: every action) over [from, to), on bucket edges. */
export interface SealedAsk {
  actions: string[] | null;
  from: number;
  to: number;
}

/** Events not rolled up, net of corrections, of one action in one 15-minute bucket (by event time). */
export interface TailRow {
  action: string;
  bucket: number;
  /** Events (a correction's take-back −1, a void's own +1 taken back). */
  n: bigint;
  units: bigint;
}

/** What limit checks read, in one snapshot (src/limits/check.ts keeps what never changes). */
export interface LimitTally {
  /** The rollups' reach in that snapshot; if it is not the reach asked with, tail and sealed are not to be used. */
  reach: number;
  /** The namespace's events with after < id ≤ asOf that the rollups (up to reach) do not hold, by action and bucket. */
  tail: TailRow[];
  /** Per ask, the rollups' events and units. */
  sealed: Array<{ n: bigint; units: bigint }>;
}

export interface LimitStore {
  /** Where the rollups reach: every event at ledger position ≤ this is in usage_buckets (0: none). */
  reach(): Promise<number>;
  /**
   * In one snapshot: the reach, the not-rolled-up events of `namespace` with after < id ≤ asOf
   * (asOf from events.latestId(), read after `reach`), and each ask's sums from the rollups.
   */
  tally(namespace: string, reach: number, after: number, asOf: number, asks: readonly SealedAsk[]): Promise<LimitTally>;

  /** Adds the version a PUT asks for, in one transaction (created false: nothing changed). */
  define(owner: string, id: string, input: LimitInput, now: number): Promise<{ version: LimitVersion; created: boolean }>;
  /** Adds a deletion version from now; false when there is no such limit or it is deleted already. */
  remove(owner: string, id: string, now: number): Promise<LimitVersion | null>;
  /** Every version of the owner's limit, oldest first (empty: no such limit). */
  versions(owner: string, id: string): Promise<LimitVersion[]>;
  /** The owner's limits as their latest versions (deleted ones left out), by id; only one namespace's if given. */
  list(owner: string, namespace?: string): Promise<LimitVersion[]>;
  /** The owner's limits on `namespace` in force at `at` (deleted ones left out), by id. */
  inForce(owner: string, namespace: string, at: number): Promise<LimitVersion[]>;
}

/** A stored row of the limits table, as both engines read it. */
export interface LimitRowStored {
  id: string;
  version: number | string;
  namespace: string;
  meter: string | null;
  actions: string | null;
  measure: string;
  period: string;
  tz: string;
  hard: number | string | null;
  soft: string | null;
  soft_units: string | null;
  deleted: number | boolean;
  from_ms: number | string;
  created_at: number | string;
}

export const LIMIT_COLUMNS =
  'id, version, namespace, meter, actions, measure, period, tz, hard, soft, soft_units, deleted, from_ms, created_at';

export function limitOfRow(r: LimitRowStored): LimitVersion {
  const json = (s: string | null) => (s === null ? null : (JSON.parse(s) as never));
  return {
    id: r.id,
    version: Number(r.version),
    namespace: r.namespace,
    meter: r.meter,
    actions: json(r.actions),
    measure: r.measure as LimitVersion['measure'],
    period: r.period as Period,
    tz: r.tz,
    hard: r.hard === null ? null : Number(r.hard),
    soft: json(r.soft),
    soft_units: json(r.soft_units),
    deleted: r.deleted === true || r.deleted === 1,
    from_ms: Number(r.from_ms),
    created_at: Number(r.created_at),
  };
}

/** A version as the values of LIMIT_COLUMNS, after the owner (arrays as JSON). */
export function rowValues(owner: string, v: LimitVersion, deletedAs: (d: boolean) => unknown): unknown[] {
  const json = (a: unknown[] | null) => (a === null ? null : JSON.stringify(a));
  return [
    owner,
    v.id,
    v.version,
    v.namespace,
    v.meter,
    json(v.actions),
    v.measure,
    v.period,
    v.tz,
    v.hard,
    json(v.soft),
    json(v.soft_units),
    deletedAs(v.deleted),
    v.from_ms,
    v.created_at,
  ];
}

/** Refuses a new limit past the owner's maximum. */
export function checkLimitCount(count: number): void {
  if (count >= MAX_LIMITS_PER_OWNER)
    throw new LimitError('id', `max_limits:${MAX_LIMITS_PER_OWNER}`, `an owner has at most ${MAX_LIMITS_PER_OWNER} limits`, 409);
}
