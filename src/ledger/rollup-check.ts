// Rollups against their events, once for both engines: what `receipts fsck` reports and what a
// rebuild restores. Each engine reads the stored rows and the same aggregates recomputed from
// the events; this compares them and names every bucket that disagrees.

/** Progress of rolling up epochs (a large ledger on upgrade, or a rebuild). */
export type RollupProgress = (p: { epoch: number; done: number; of: number; events: number }) => void;

/** One aggregate row, stored or recomputed: its table, its key and its values as text (exact). */
export interface RollupRow {
  table: 'usage_buckets' | 'usage_caller_days';
  key: string;
  values: string;
}

export interface RollupDifference {
  table: RollupRow['table'];
  key: string;
  stored: string | null;
  recomputed: string | null;
}

/** Every row that differs (missing on one side or with other values), at most `max` of them. */
export function compareRollups(
  stored: Iterable<RollupRow>,
  recomputed: Iterable<RollupRow>,
  max = 100,
): { differences: RollupDifference[]; count: number } {
  const want = new Map<string, RollupRow>();
  for (const r of recomputed) want.set(`${r.table}\u0000${r.key}`, r);
  const differences: RollupDifference[] = [];
  let count = 0;
  const add = (d: RollupDifference) => {
    count++;
    if (differences.length < max) differences.push(d);
  };
  for (const s of stored) {
    const id = `${s.table}\u0000${s.key}`;
    const r = want.get(id);
    want.delete(id);
    if (!r) add({ table: s.table, key: s.key, stored: s.values, recomputed: null });
    else if (r.values !== s.values) add({ table: s.table, key: s.key, stored: s.values, recomputed: r.values });
  }
  for (const r of want.values()) add({ table: r.table, key: r.key, stored: null, recomputed: r.values });
  return { differences, count };
}
