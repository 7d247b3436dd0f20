// The ledger check: every epoch's root and stored tree rebuilt from its events' leaf hashes, every
// leaf hash rebuilt from its event's fields, the sequence and the epoch boundaries, then the
// events no epoch holds yet. Stops at the first disagreement and names it (epoch, level, node,
// event). Reads through a LedgerReader only; memory is bounded by a read slice and by the largest
// epoch's tree, whatever the ledger's size.
import { hash } from 'node:crypto';
import { bytesToHex } from '../encoding/hex.ts';
import { type CorrectionKind, leafHash, leafHashV2 } from '../event/leaf.ts';
import { HASH_SIZE, type NodeHasher } from '../merkle/hash.ts';
import { buildTree } from '../merkle/tree.ts';
import type { LedgerReader } from './reader.ts';
import { NODE_CHUNK } from '../ledger/node-chunks.ts';
import { EPOCH_SHAPE, EVENT_SHAPE, NODE_SHAPE, rowProblem, UNSEALED_EVENT_SHAPE, type Row, type Shape } from './rows.ts';

/** What kind of disagreement: a closed set, for scripts reading --json. */
export type FsckCode =
  | 'malformed_row' // a stored value of the wrong type or length
  | 'epoch_missing' // epochs not numbered 0, 1, 2 … without gaps
  | 'boundary' // an epoch not starting right after the previous one, or a size that is not last − first + 1
  | 'event_missing' // a ledger position inside an epoch with no event
  | 'leaf_hash' // an event's stored leaf hash is not the hash of its fields
  | 'epoch_times' // an epoch's first_ts / last_ts are not its events' earliest / latest
  | 'root' // the stored root is not the root of the epoch's leaf hashes
  | 'levels' // the stored tree has the wrong number of levels
  | 'chunk' // a stored node chunk missing, out of place, or of the wrong size
  | 'node' // a stored tree node differs from the one rebuilt
  | 'stray_seq' // an event with a ledger position after the last epoch (PostgreSQL: a seal half-written)
  | 'correction' // a void or amendment that does not match the version it replaces (corrects_id, chain_id, prev_*, fields)
  | 'rollup'; // a usage rollup row that is not the aggregate of its events (repair: receipts rollups rebuild)

export interface FsckProblem {
  code: FsckCode;
  /** One sentence naming what disagrees. */
  message: string;
  epoch?: number;
  /** Tree level (0: the leaf hashes) and node index within it, for a node. */
  level?: number;
  index?: number;
  chunk?: number;
  /** The event (its public id) and its ledger position, for an event or a leaf node. */
  event?: number;
  seq?: number;
}

export interface FsckProgress {
  what: 'epochs' | 'unsealed events';
  done: number;
  total: number;
}

export interface FsckReport {
  ok: boolean;
  engine: 'sqlite' | 'postgres';
  location: string;
  epochs_checked: number;
  /** Events in epochs whose leaf hash was rebuilt from their fields. */
  events_checked: number;
  /** Events after the last epoch, each leaf hash rebuilt too. */
  unsealed_checked: number;
  /** Stored tree nodes compared, all levels. */
  nodes_checked: number;
  /** Usage rollup rows that differ from their events (0 when they agree; absent: no rollups in this schema). */
  rollup_differences?: number;
  /** The first disagreement; absent when ok. */
  problem?: FsckProblem;
  ms: number;
}

export interface FsckOptions {
  progress?: (p: FsckProgress) => void;
  /** Skip the events after the last epoch (migrate checks those as it copies them). */
  sealedOnly?: boolean;
}

/** Events read at once: a group of small epochs, or a slice of a large one. */
const SLICE = 65_536;
const HEADS_PER_READ = 1000;

const nodeHasher: NodeHasher = (preimage) => hash('sha256', preimage, 'buffer');

class Found extends Error {
  readonly problem: FsckProblem;
  constructor(problem: FsckProblem) {
    super(problem.message);
    this.problem = problem;
  }
}
const found = (problem: FsckProblem): never => {
  throw new Found(problem);
};

interface Head {
  epoch: number;
  first_seq: number;
  last_seq: number;
  size: number;
  root: Buffer;
  first_ts: number;
  last_ts: number;
}

function checked(shape: Shape, r: Row): Row {
  const problem = rowProblem(shape, r);
  if (problem) {
    const epoch = shape === NODE_SHAPE || shape === EPOCH_SHAPE ? (typeof r.epoch === 'number' ? r.epoch : undefined) : undefined;
    found({ code: 'malformed_row', message: problem, ...(epoch !== undefined && { epoch }) });
  }
  return r;
}

const hex = (b: Uint8Array) => bytesToHex(b);

const CORRECTION_KINDS: ReadonlyArray<CorrectionKind | undefined> = [undefined, 'void', 'amend'];

/**
 * The leaf hash of a stored event row, from its fields (what fsck and migrate compare with the
 * stored one): leaf v1, or for a correction (kind 1 or 2) leaf v2, whose `corrects` is the leaf
 * hash of the version it replaces (`p_leaf_hash`, read with it). Check correctionProblem first:
 * this throws for a correction whose replaced version is missing.
 */
export function leafOf(r: Row): Uint8Array {
  const fields = {
    namespace: r.namespace as string,
    request_id: r.request_id as string,
    caller: r.caller as string,
    action: r.action as string,
    units: r.units as number,
    artifact_digest: r.artifact_digest ? hex(r.artifact_digest as Buffer) : '',
    ts_ms: r.ts as number,
  };
  const kind = CORRECTION_KINDS[(r.kind as number | undefined) ?? 0];
  if (kind === undefined) return leafHash(fields);
  if (!Buffer.isBuffer(r.p_leaf_hash))
    throw new Error(`event ${r.id as number} is a ${kind} of event ${String(r.corrects_id)}, which is not stored`);
  return leafHashV2({ ...fields, kind, corrects: hex(r.p_leaf_hash) });
}

/**
 * What is wrong with a stored correction against the version it replaces (the p_* columns read
 * with it), by docs/design.md "Leaf (version 2)" and the columns migration 010 defines; undefined
 * if nothing is (an ordinary event: nothing of a correction set).
 */
export function correctionProblem(r: Row): string | undefined {
  const id = r.id as number;
  const kind = CORRECTION_KINDS[(r.kind as number | undefined) ?? 0];
  if (kind === undefined) {
    const set = ['corrects_id', 'chain_id', 'prev_caller', 'prev_action', 'prev_units'].find((c) => r[c] !== null && r[c] !== undefined);
    return set && `event ${id} is an ordinary event (kind 0) but has ${set} ${String(r[set])}: only a correction has it`;
  }
  const what = `event ${id} (a ${kind} of event ${String(r.corrects_id)})`;
  if (r.corrects_id === null || r.corrects_id === undefined)
    return `event ${id} is a ${kind} but corrects_id is null: it names no version it replaces`;
  if (!Buffer.isBuffer(r.p_leaf_hash)) return `${what}: event ${String(r.corrects_id)} is not in the ledger`;
  if (r.p_kind === 1) return `${what}: event ${String(r.corrects_id)} is a void, and a void ends its chain`;
  if (r.chain_id !== r.p_chain)
    return `${what}: chain_id is ${String(r.chain_id)}, but the version it replaces belongs to the chain of event ${String(r.p_chain)}`;
  const differs = (a: unknown, b: unknown) => (Buffer.isBuffer(a) && Buffer.isBuffer(b) ? !a.equals(b) : a !== b);
  const same: Array<[string, unknown, unknown]> = [
    ['namespace', r.namespace, r.p_namespace],
    ['ts', r.ts, r.p_ts],
    ['prev_caller', r.prev_caller, r.p_caller],
    ['prev_action', r.prev_action, r.p_action],
    ['prev_units', r.prev_units, r.p_units],
  ];
  if (kind === 'void') {
    same.push(
      ['caller', r.caller, r.p_caller],
      ['action', r.action, r.p_action],
      ['artifact_digest', r.artifact_digest ?? null, r.p_artifact_digest ?? null],
    );
    if (r.units !== 0) return `${what}: its units are ${String(r.units)}, but a void's are 0`;
  }
  for (const [column, mine, theirs] of same) {
    if (differs(mine, theirs)) return `${what}: ${column} is ${describe(mine)}, but the version it replaces has ${describe(theirs)}`;
  }
  return undefined;
}

const describe = (v: unknown) => (Buffer.isBuffer(v) ? hex(v) : JSON.stringify(v ?? null));

/**
 * The usage rollups against their events: every bucket and caller day recomputed (in the
 * database) and compared; the first that differs is named, with both sides' values.
 */
async function checkRollups(reader: LedgerReader, report: FsckReport): Promise<void> {
  const found = await reader.rollupDifferences(1);
  if (found === null) return;
  report.rollup_differences = found.count;
  const d = found.rows[0];
  if (!d) return;
  const at = new Date(d.k1).toISOString();
  const what =
    d.tbl === 'usage_buckets' ? `the 15-minute bucket at ${at}, action "${d.k2}"` : `the UTC day ${at.slice(0, 10)}, caller "${d.k2}"`;
  throw new Found({
    code: 'rollup',
    message: `${found.count} usage rollup row${found.count === 1 ? '' : 's'} differ${found.count === 1 ? 's' : ''} from the events; first: ${d.tbl} of namespace "${d.namespace}", ${what}: stored ${d.stored ?? 'nothing'}, recomputed ${d.recomputed ?? 'nothing'}. Usage answers may be wrong there: run receipts rollups rebuild to rebuild them from the events.`,
  });
}

/** Checks the ledger the reader reads. Never throws for a disagreement: it is in the report. */
export async function fsck(reader: LedgerReader, options: FsckOptions = {}): Promise<FsckReport> {
  const started = performance.now();
  const progress = options.progress ?? (() => {});
  const report: FsckReport = {
    ok: true,
    engine: reader.engine,
    location: reader.location,
    epochs_checked: 0,
    events_checked: 0,
    unsealed_checked: 0,
    nodes_checked: 0,
    ms: 0,
  };
  try {
    const total = await reader.epochCount();
    let prev: Head | undefined;
    for (;;) {
      const heads = (await reader.epochs(prev?.epoch ?? -1, HEADS_PER_READ)).map((r) => checked(EPOCH_SHAPE, r) as unknown as Head);
      if (heads.length === 0) break;
      for (const h of heads) {
        checkBoundary(prev, h);
        prev = h;
      }
      for (let i = 0; i < heads.length; ) {
        // Small epochs together, up to SLICE events; a larger one alone (read in slices).
        let j = i + 1;
        for (let n = heads[i]!.size; j < heads.length && n + heads[j]!.size <= SLICE; j++) n += heads[j]!.size;
        await checkGroup(reader, heads.slice(i, j), report);
        progress({ what: 'epochs', done: report.epochs_checked, total });
        i = j;
      }
    }
    if (!options.sealedOnly) await checkUnsealed(reader, prev?.last_seq ?? 0, report, progress);
    if (!options.sealedOnly) await checkRollups(reader, report);
  } catch (err) {
    if (!(err instanceof Found)) throw err;
    report.ok = false;
    report.problem = err.problem;
  }
  report.ms = Math.round(performance.now() - started);
  return report;
}

function checkBoundary(prev: Head | undefined, h: Head): void {
  const want = prev ? prev.epoch + 1 : 0;
  const epoch = h.epoch;
  if (epoch !== want)
    found({
      code: 'epoch_missing',
      epoch: want,
      message: `epoch ${want} is missing (the next epoch is ${epoch}): epochs must be numbered without gaps`,
    });
  if (h.size < 1 || h.size !== h.last_seq - h.first_seq + 1) {
    found({
      code: 'boundary',
      epoch,
      message: `epoch ${epoch}: it holds ledger positions ${h.first_seq} … ${h.last_seq} but its size is ${h.size}`,
    });
  }
  const first = prev ? prev.last_seq + 1 : 1;
  if (h.first_seq === first) return;
  if (h.first_seq > first) {
    found({
      code: 'boundary',
      epoch,
      seq: first,
      message: `epoch ${epoch} starts at ledger position ${h.first_seq}, but ${prev ? `epoch ${prev.epoch} ends at ${prev.last_seq}` : 'the ledger starts at 1'}: positions ${first} … ${h.first_seq - 1} are in no epoch`,
    });
  }
  found({
    code: 'boundary',
    epoch,
    seq: h.first_seq,
    message: `epoch ${epoch} starts at ledger position ${h.first_seq}, inside ${prev ? `epoch ${prev.epoch} (which ends at ${prev.last_seq})` : 'nothing: positions start at 1'}`,
  });
}

/** Epochs whose leaves are contiguous (boundaries checked): their events, leaves, roots and trees. */
async function checkGroup(reader: LedgerReader, group: Head[], report: FsckReport): Promise<void> {
  const first = group[0]!.first_seq;
  const last = group.at(-1)!.last_seq;
  const leaves = group.map((h) => Buffer.alloc(h.size * HASH_SIZE));
  const ids = group.map((h) => new Array<number>(h.size));
  const times = group.map(() => ({ min: Infinity, max: -Infinity }));
  let e = 0;
  let seq = first;
  for (let from = first; from <= last; from += SLICE) {
    const rows = await reader.sealedEvents(from, Math.min(from + SLICE - 1, last));
    for (const raw of rows) {
      const r = checked(EVENT_SHAPE, raw);
      while (seq > group[e]!.last_seq) e++;
      const head = group[e]!;
      if (r.seq !== seq) missingEvent(head, seq);
      const id = r.id as number;
      const wrong = correctionProblem(r);
      if (wrong) found({ code: 'correction', epoch: head.epoch, event: id, seq, message: wrong });
      const stored = r.leaf_hash as Buffer;
      const computed = leafOf(r);
      if (!stored.equals(computed)) {
        found({
          code: 'leaf_hash',
          epoch: head.epoch,
          event: id,
          seq,
          level: 0,
          index: seq - head.first_seq,
          message: `event ${id} (epoch ${head.epoch}): its stored leaf hash ${hex(stored)} is not the hash of its fields (${hex(computed)})`,
        });
      }
      stored.copy(leaves[e]!, (seq - head.first_seq) * HASH_SIZE);
      ids[e]![seq - head.first_seq] = id;
      const t = times[e]!;
      t.min = Math.min(t.min, r.ts as number);
      t.max = Math.max(t.max, r.ts as number);
      seq++;
      report.events_checked++;
    }
    if (seq <= Math.min(from + SLICE - 1, last)) {
      while (seq > group[e]!.last_seq) e++;
      missingEvent(group[e]!, seq);
    }
  }
  const nodeRows = await reader.nodes(group[0]!.epoch, group.at(-1)!.epoch);
  let n = 0;
  group.forEach((head, k) => {
    const { epoch } = head;
    const t = times[k]!;
    if (t.min !== head.first_ts || t.max !== head.last_ts) {
      found({
        code: 'epoch_times',
        epoch,
        message: `epoch ${epoch}: its stored event times ${head.first_ts} … ${head.last_ts} are not its events' earliest and latest (${t.min} … ${t.max})`,
      });
    }
    const tree = buildTree(leaves[k]!, nodeHasher);
    const top = tree.levels.at(-1)!;
    if (!head.root.equals(top)) {
      found({
        code: 'root',
        epoch,
        level: tree.levels.length - 1,
        index: 0,
        message: `epoch ${epoch}: the stored root ${hex(head.root)} is not the root of its ${head.size} leaf hashes (${hex(top)})`,
      });
    }
    // The stored chunks, per level, in order.
    const levels: Buffer[][] = [];
    for (; n < nodeRows.length && (checked(NODE_SHAPE, nodeRows[n]!).epoch as number) <= epoch; n++) {
      const r = nodeRows[n]!;
      const level = r.level as number;
      const chunk = r.chunk as number;
      if (r.epoch !== epoch || level < 0 || level > 64) {
        found({
          code: 'chunk',
          epoch: r.epoch as number,
          level,
          chunk,
          message: `epoch ${r.epoch as number}: a tree-node chunk is stored at level ${level}, which no tree of its epoch has`,
        });
      }
      const chunks = (levels[level] ??= []);
      if (chunk !== chunks.length) {
        found({
          code: 'chunk',
          epoch,
          level,
          chunk: chunks.length,
          index: chunks.length * NODE_CHUNK,
          message: `epoch ${epoch}: tree level ${level}, chunk ${chunks.length} (nodes from ${chunks.length * NODE_CHUNK}) is missing${chunk > chunks.length ? '' : ' or stored twice'}`,
        });
      }
      chunks.push(r.hashes as Buffer);
    }
    const stored = levels.filter(Boolean).length;
    if (stored !== tree.levels.length || levels.length !== tree.levels.length) {
      found({
        code: 'levels',
        epoch,
        message: `epoch ${epoch}: ${stored} tree levels are stored, its ${head.size} leaves make ${tree.levels.length}`,
      });
    }
    tree.levels.forEach((built, level) => checkLevel(head, level, levels[level]!, built, ids[k]!));
    report.nodes_checked += tree.levels.reduce((s, l) => s + l.length / HASH_SIZE, 0);
    report.epochs_checked++;
  });
  // Chunks of an epoch after the group's last (the query bounds them): none can be left.
}

function missingEvent(head: Head, seq: number): never {
  return found({
    code: 'event_missing',
    epoch: head.epoch,
    seq,
    level: 0,
    index: seq - head.first_seq,
    message: `epoch ${head.epoch}: the event at ledger position ${seq} is missing (the epoch holds positions ${head.first_seq} … ${head.last_seq})`,
  });
}

/** One stored level against the rebuilt one: the first node that differs is named. */
function checkLevel(head: Head, level: number, chunks: Buffer[], built: Uint8Array, ids: number[]): void {
  const { epoch } = head;
  const count = built.length / HASH_SIZE;
  chunks.forEach((c, i) => {
    const want = Math.min(NODE_CHUNK, count - i * NODE_CHUNK) * HASH_SIZE;
    if (c.length !== want) {
      found({
        code: 'chunk',
        epoch,
        level,
        chunk: i,
        index: i * NODE_CHUNK,
        message: `epoch ${epoch}: tree level ${level}, chunk ${i} holds ${c.length / HASH_SIZE} nodes; ${want > 0 ? `the level's ${count} nodes put ${want / HASH_SIZE} there` : `the level has only ${count} nodes`}`,
      });
    }
  });
  const stored = Buffer.concat(chunks);
  if (stored.length < built.length) {
    const chunk = chunks.length;
    found({
      code: 'chunk',
      epoch,
      level,
      chunk,
      index: chunk * NODE_CHUNK,
      message: `epoch ${epoch}: tree level ${level}, chunk ${chunk} (nodes from ${chunk * NODE_CHUNK}) is missing`,
    });
  }
  if (stored.equals(built)) return;
  let index = 0;
  while (stored.compare(built, index * HASH_SIZE, (index + 1) * HASH_SIZE, index * HASH_SIZE, (index + 1) * HASH_SIZE) === 0) index++;
  const at = (b: Uint8Array) => hex(b.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE));
  const leaf = level === 0 ? `, the leaf of event ${ids[index]} (ledger position ${head.first_seq + index})` : '';
  found({
    code: 'node',
    epoch,
    level,
    index,
    chunk: Math.floor(index / NODE_CHUNK),
    ...(level === 0 && { event: ids[index], seq: head.first_seq + index }),
    message: `epoch ${epoch}: the stored tree level ${level} is not the one rebuilt from its leaf hashes: node ${index} (chunk ${Math.floor(index / NODE_CHUNK)}${leaf}) is ${at(stored)}, rebuilt ${at(built)}`,
  });
}

/** Events after the last epoch: each leaf hash, and no ledger position among them. */
async function checkUnsealed(
  reader: LedgerReader,
  lastSealed: number,
  report: FsckReport,
  progress: (p: FsckProgress) => void,
): Promise<void> {
  const total = await reader.unsealedCount(lastSealed);
  // SQLite names an event by seq (its id), PostgreSQL an unsealed one by id (no seq yet).
  const shape = reader.engine === 'sqlite' ? EVENT_SHAPE : UNSEALED_EVENT_SHAPE;
  for (let after = reader.engine === 'sqlite' ? lastSealed : 0; ; ) {
    const rows = await reader.unsealedEvents(lastSealed, after, SLICE);
    if (rows.length === 0) break;
    for (const raw of rows) {
      const r = checked(shape, raw);
      const id = r.id as number;
      if (reader.engine === 'postgres' && r.seq !== null) {
        found({
          code: 'stray_seq',
          event: id,
          seq: r.seq as number,
          message: `event ${id} has ledger position ${r.seq as number}, after the last epoch (which ends at ${lastSealed}): a position is given only by the seal that stores its epoch`,
        });
      }
      const wrong = correctionProblem(r);
      if (wrong) found({ code: 'correction', event: id, message: wrong });
      const stored = r.leaf_hash as Buffer;
      const computed = leafOf(r);
      if (!stored.equals(computed)) {
        found({
          code: 'leaf_hash',
          event: id,
          message: `event ${id} (after the last epoch): its stored leaf hash ${hex(stored)} is not the hash of its fields (${hex(computed)})`,
        });
      }
      after = id;
      report.unsealed_checked++;
    }
    progress({ what: 'unsealed events', done: report.unsealed_checked, total });
  }
  if (total === 0) progress({ what: 'unsealed events', done: 0, total });
}
