// The storage interface every stage uses: narrow typed stores, asynchronous (PostgreSQL is).
// Two engines implement it: sqlite/ (embedded, one process) and postgres/ (several instances on
// one database, one elected leader). Nothing outside src/ledger/ sees a connection or a statement.
import type { CorrectionKind, LeafFields } from '../event/leaf.ts';
import type { NormalizedEvent } from '../event/validate.ts';
import type { ClassificationPeriod, ClassificationPolicy } from '../event/classification.ts';
import type { LogSigner, StoredCheckpoint } from './epoch-log.ts';
import type { MeterStore } from './meters.ts';
import type { LimitStore } from './limits.ts';
import type { Right } from './api-keys.ts';
import type { WebhookStore } from './webhooks.ts';

// ── Records: one type per concept ──────────────────────────────────────────────────────────────

// Time fields: epoch milliseconds, named with `_ms` (`ts_ms`, `sealed_at_ms`), or `…Ms` in camelCase
// names (`fromMs`, `maxAgeMs`). Names that are public formats keep theirs: JSON fields such as
// ApiKey's created_at/revoked_at (`keys list --json`) and stored columns (`ts`, `received_at`).

/** A stored event: the leaf fields (as they enter the leaf, `ts_ms` included) and where it stands in the ledger. */
export interface EventRecord extends LeafFields {
  /** Public id, fixed at ingest (the API's `id`). */
  id: number;
  /**
   * Ledger order: leaves of an epoch are events seq first_seq … last_seq. SQLite assigns it at
   * ingest (seq = id); PostgreSQL when the event is sealed (null until then).
   */
  seq: number | null;
  /** 64 lowercase hex: SHA-256(0x00 ‖ leaf), leaf v1 (v2 for a correction), computed once at ingest. */
  leaf_hash: string;
  /** Only on a correction (leaf v2): void or amend. */
  kind?: CorrectionKind;
  /** Only on a correction: the leaf hash of the version it replaces (64 hex). */
  corrects?: string;
  /** Only on a correction: the id of the version it replaces. */
  corrects_id?: number;
  /** Only on a correction: the id of the original event (its chain). */
  chain_id?: number;
}

/** A sealed epoch: a dense run of the ledger and the root of its tree. */
export interface EpochRecord {
  epoch: number;
  first_seq: number;
  last_seq: number;
  size: number;
  /** 64 lowercase hex. */
  root: string;
  first_ts_ms: number;
  last_ts_ms: number;
  sealed_at_ms: number;
}

/** Leaves first … first + count − 1 of an epoch's tree (a receipt's aligned block). */
export interface LeafBlock {
  epoch: number;
  first: number;
  count: number;
}

/** An event read with its receipt's block, when one was asked and is stored. */
export interface EventWithBlock {
  event: EventRecord;
  block?: { at: LeafBlock; hashes: Uint8Array; anchor: AnchorRecord | null };
}

/** Where an epoch's root is on chain. */
export interface AnchorRecord {
  network: string;
  package_id: string;
  registry_id: string;
  /** Null only when the epoch was found on chain with no recorded attempt of ours. */
  tx_digest: string | null;
  checkpoint: string | null;
  anchored_at_ms: number;
}

export interface ApiKey {
  id: string;
  owner: string;
  namespaces: string[];
  /** What the key may do, in RIGHTS order. */
  rights: Right[];
  /** Stored right names this build does not know (they grant nothing); only when there are any. */
  unknown_rights?: string[];
  created_at: number;
  revoked_at: number | null;
}

/** What a request is authorised as: the key's owner, what its namespace patterns allow and its rights. */
export interface Principal {
  keyId: string;
  owner: string;
  namespaces: string[];
  /** Whether this key may touch the namespace (what it may do there: `rights`). */
  allows(namespace: string): boolean;
  /** What the key may do (docs/design.md "Key rights"). */
  rights: ReadonlySet<Right>;
  may(right: Right): boolean;
}

// ── Stores ─────────────────────────────────────────────────────────────────────────────────────

export interface EventToWrite {
  event: NormalizedEvent;
  owner: string;
  keyId: string;
}

export type WriteResult =
  | { status: 'created'; id: number; leaf_hash: string }
  | { status: 'duplicate'; id: number; leaf_hash: string }
  | { status: 'conflict'; id: number; differs: string[] };

/**
 * A void or an amendment of a recorded event (docs/design.md "Leaf (version 2)"). The ledger checks
 * and writes it in one transaction: the target must be the head of its chain (not corrected, not a
 * void), within the correction window, and of the key's owner.
 */
export interface CorrectionToWrite {
  kind: CorrectionKind;
  /** The version corrected: by id, or by its namespace and request id. */
  target: { id: number } | { namespace: string; request_id: string };
  /** The correction's own idempotency key (in the target's namespace). */
  request_id: string;
  /** Amend only: the fields that change; any not given keep the replaced version's value. */
  changes?: { caller?: string; action?: string; units?: number; artifact_digest?: string };
  /** Kept in metadata ({"reason": …}), not in the leaf. */
  reason?: string;
  owner: string;
  keyId: string;
  /** Event times before this are past the correction window (ms). */
  notBeforeMs: number;
  /** When it was received (ms). */
  receivedAtMs: number;
  /** Whether the key may touch the target's namespace (checked after the owner: another owner's event is not_found). */
  allows?: (namespace: string) => boolean;
  /** The service's action allow-list, as ingest applies it (undefined: any well-formed action). */
  actions?: ReadonlySet<string>;
}

export type CorrectionResult =
  | { status: 'created' | 'duplicate'; id: number; leaf_hash: string; corrects_id: number; chain_id: number }
  /** The request id is taken by another event or correction; `differs` names what differs. */
  | { status: 'conflict'; id: number; differs: string[] }
  /** The target is not its chain's head: head_id is (a void ends a chain: head_id is the void). */
  | { status: 'already_corrected'; id: number; head_id: number; head_kind: CorrectionKind }
  | { status: 'not_found' }
  /** The key's patterns do not cover the target's namespace. */
  | { status: 'forbidden'; namespace: string }
  | { status: 'window_closed'; id: number; ts_ms: number }
  /** A field of the new version breaks a rule of ingest (field, rule). */
  | { status: 'invalid'; errors: Array<{ path: string; rule: string; message: string }> };

export interface EventPageQuery {
  namespace: string;
  /** [from, to): event time, ms. */
  from: number;
  to: number;
  /** Only events with id ≤ asOf: the snapshot a paged read is fixed to. */
  asOf: number;
  /** Keyset position (ts, id): ascending pages start after it, descending ones before it. */
  after: [number, number];
  limit: number;
  desc?: boolean;
}

export interface EventStore {
  /**
   * Group commit: writes arriving together share one transaction; each resolves, one result per
   * event, only once committed. Idempotent on (namespace, request_id), with no expiry.
   */
  write(items: EventToWrite[]): Promise<WriteResult[]>;
  get(id: number): Promise<EventRecord | undefined>;
  page(q: EventPageQuery): Promise<EventRecord[]>;
  /**
   * The source of each recorded (namespace, request_id), in order; undefined where none is
   * recorded, null where it has no source. CloudEvents ingest finds events stored under the
   * request_id mapping of before (CloudEvents `id` alone) with it.
   */
  sourcesOf(keys: ReadonlyArray<readonly [namespace: string, requestId: string]>): Promise<Array<string | null | undefined>>;
  /** Voids and amendments, each checked and written in its own transaction, in order. */
  correct(items: CorrectionToWrite[]): Promise<CorrectionResult[]>;
  /**
   * An event with what its receipt reads beside it, in one read: where `locate` (the receipt
   * reader's epoch headers in memory) places its seq, the hashes of that block of leaves and the
   * epoch's anchor. Only for an engine whose id is the seq (SQLite: `locate` is called with the id
   * before the read); one that cannot know the seq before reading the event leaves this out, and
   * receipts read the block after the event.
   */
  getWithBlock?(id: number, locate: (seq: number) => LeafBlock | undefined): Promise<EventWithBlock | undefined>;
  /** An event by its idempotency key. */
  byRequestId(namespace: string, requestId: string): Promise<EventRecord | undefined>;
  /** Every version of the chain the event `id` belongs to (original first, in id order); [] if none. */
  chainOf(id: number): Promise<EventRecord[]>;
  /** The highest id committed: the snapshot bound of a paged read. */
  latestId(): Promise<number>;
  /** What waits to be sealed: how many events, and when the oldest was received. */
  unsealed(): Promise<{ events: number; oldestReceivedAt: number | null }>;
  /** Called after every commit with the number of events and the seconds it took (metrics). */
  onCommit: ((events: number, seconds: number) => void) | undefined;
}

export const GROUP_BY = ['action', 'caller', 'hour', 'day', 'month'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export interface UsageQuery {
  namespace: string;
  from: number;
  to: number;
  groupBy: GroupBy;
  /** IANA time zone whose hours, days and months the time groups are (default UTC). */
  tz?: string;
  /** Count only events with id ≤ asOf (a paged read's snapshot). */
  asOf?: number;
  /**
   * Only groups whose key comes after this one (a key as returned: an ISO date for hour and
   * day), in key order (UTF-8 byte order; time for hour and day): where a page starts.
   */
  after?: string;
  /**
   * At most this many groups (the result says whether more follow). Without it every group of
   * the range is returned: the HTTP API always sets one, so its answers stay bounded.
   */
  limit?: number;
}

/** Unit sums are exact: a number while ≤ 2^53−1, a decimal string beyond. */
export type Units = number | string;

export interface UsageGroup {
  key: string;
  events: number;
  units: Units;
  /** Events whose action was billable at their ts_ms (the classification history in the ledger). */
  billable_events: number;
  /** Units of those events. */
  billable_units: Units;
}

export interface UsageResult {
  namespace: string;
  from: number;
  to: number;
  group_by: GroupBy;
  /** The time zone of the time groups, when not UTC. */
  tz?: string;
  groups: UsageGroup[];
  /** Of the whole range (not only the groups returned), summed by the database. */
  totals: { events: number; units: Units; billable_events: number; billable_units: Units };
  /** With limit: whether groups follow the last one returned (continue with after = its key). */
  more?: boolean;
}

export interface UsageStore {
  /**
   * Counts and exact unit sums over [from, to), always through the (namespace, ts) index; the
   * billable ones classified by the history stored in the ledger (ClassificationStore).
   */
  query(q: UsageQuery): Promise<UsageResult>;
}

/** Why a classification period was not appended: it would reclassify what is already stored. */
export class RetroactiveClassificationError extends Error {
  /** The earliest from_ms that would have been accepted. */
  readonly earliest: number;
  constructor(message: string, earliest: number) {
    super(message);
    this.name = 'RetroactiveClassificationError';
    this.earliest = earliest;
  }
}

/**
 * The billable classification history: periods in order of from_ms, append-only. A period is
 * never in force before it was appended, so a change never reclassifies a stored event.
 */
export interface ClassificationStore {
  /** The stored periods, oldest first (empty: nothing configured, every action billable). */
  history(): Promise<ClassificationPeriod[]>;
  /**
   * Appends a period, as one transaction, starting at fromMs or, when omitted, at the earliest
   * allowed time: 0 on a ledger with no events and no period; else the latest of now, one ms
   * after the last stored event time, and one ms after the last period's start. An explicit
   * fromMs earlier than that throws RetroactiveClassificationError. Returns the stored period.
   */
  append(policy: ClassificationPolicy, opts: { fromMs?: number; now: number }): Promise<ClassificationPeriod>;
}

/** A built tree as the sealer hands it to storage: every level, leaves first, root last. */
export interface BuiltTree {
  root: Uint8Array;
  /** levels[0] is the leaf hashes concatenated; each level is 32-byte hashes concatenated. */
  levels: Uint8Array[];
}

export interface SealRequest {
  /** At most this many events go into the epoch. */
  maxEvents: number;
  now: number;
  /** Builds the tree over the leaf hashes (pure code from merkle/, passed in; the seal's own runs off the event loop). */
  build: (leaves: Uint8Array) => BuiltTree | Promise<BuiltTree>;
  progress?: (phase: string, detail: Record<string, number>) => void;
  /**
   * Signs a checkpoint of the epoch log in the seal's transaction (after checking the log is
   * consistent with the last checkpoint stored). Omitted: the epoch is sealed without one, and
   * the next seal with a signer signs the whole log.
   */
  log?: LogSigner;
}

export interface EpochListQuery {
  /** Epochs after < epoch < before, oldest first (or newest first with desc). */
  after?: number;
  before?: number;
  limit: number;
  desc?: boolean;
}

export interface EpochStore {
  get(epoch: number): Promise<EpochRecord | undefined>;
  latest(): Promise<EpochRecord | undefined>;
  list(q: EpochListQuery): Promise<EpochRecord[]>;
  /** The sealed epoch holding ledger position seq, if any. */
  containing(seq: number): Promise<EpochRecord | undefined>;
  /** One stored node hash (32 bytes); level 0 is the leaves. */
  node(epoch: number, level: number, index: number): Promise<Uint8Array>;
  /** A whole stored level, hashes concatenated (for caching upper levels). */
  level(epoch: number, level: number): Promise<Uint8Array>;
  /** The stored nodes at these [level, index] places, in order, in one read (a proof's path: one query). */
  nodes(epoch: number, places: ReadonlyArray<readonly [level: number, index: number]>): Promise<Uint8Array[]>;
  /**
   * Seals the next epoch: the next run of unsealed events in ledger order, up to maxEvents, as
   * one transaction (nodes and header), fenced so that a second or stale sealer can never write
   * an epoch twice or skip an event. Null when nothing waits.
   */
  sealNext(request: SealRequest): Promise<EpochRecord | null>;
  /** The latest signed checkpoint of the epoch log, if any. */
  checkpoint(): Promise<StoredCheckpoint | undefined>;
  /**
   * Drops every usage rollup row (in one transaction), so that they are built again from the
   * events; usage stays exact meanwhile (read from the events until rolled up again).
   */
  clearRollups(): Promise<void>;
  /**
   * Rolls up every sealed epoch the rollups do not reach, one transaction each (PostgreSQL: only
   * as the leader, fenced; 0 otherwise); how many. The sealer also does this before each seal.
   */
  catchUpRollups(progress?: (p: { epoch: number; done: number; of: number; events: number }) => void): Promise<number>;
}

/** A witness's cosignature of one signed checkpoint (C2SP tlog-cosignature), as stored. */
export interface StoredCosignature {
  /** The checkpoint's size (a stored checkpoint). */
  size: number;
  /** The witness's cosigner verifier key (type 0x04 vkey): one cosignature per size and witness. */
  witness: string;
  /** The signature line as served after the checkpoint, `— <name> <base64>`, without its newline. */
  line: string;
  /** The cosignature's own timestamp, Unix seconds. */
  cosigned_at: number;
  received_at_ms: number;
}

export interface CosignatureStore {
  /** Stores a verified cosignature; false when one of this witness for this size is already kept. */
  add(c: StoredCosignature): Promise<boolean>;
  /** The cosignatures of the checkpoint of this size, oldest first. */
  forSize(size: number): Promise<StoredCosignature[]>;
  /** The largest checkpoint size this witness cosigned, or null. */
  latestSize(witness: string): Promise<number | null>;
}

export interface AnchorAttempt {
  tx_digest: string;
  first_epoch: number;
  last_epoch: number;
  created_at_ms: number;
}

export interface AnchorStore {
  get(epoch: number): Promise<AnchorRecord | null>;
  /** The highest epoch recorded as anchored, or null. */
  anchoredThrough(): Promise<number | null>;
  /** Written before a transaction is sent, so a crash after execution still finds its digest. */
  recordAttempt(attempt: AnchorAttempt): Promise<void>;
  /** Digests of attempts whose range covers the epoch, newest first. */
  attemptsCovering(epoch: number): Promise<string[]>;
  /** Records epochs as anchored (fenced; an epoch already recorded is left as it is). */
  record(epochs: number[], anchor: AnchorRecord): Promise<void>;
}

export interface KeyStore {
  /** A new key; `rights` defaults to record and read. Throws a message naming the rule on bad input. */
  create(owner: string, namespaces: string[], now?: number, rights?: readonly Right[]): Promise<ApiKey & { key: string }>;
  list(): Promise<ApiKey[]>;
  /** False when there is no such key or it was already revoked. */
  revoke(id: string, now?: number): Promise<boolean>;
  /** The principal for a presented key, or null (revocations take effect at once). */
  authenticate(presented: string): Promise<Principal | null>;
}

export type Role = 'leader' | 'follower';

/**
 * Who seals and anchors. SQLite: the one process that holds the file is always the leader.
 * PostgreSQL: one instance at a time, elected through the database; a stale leader is fenced.
 */
export interface Leadership {
  role(): Role;
  /** Who leads, as this instance knows it now: for /healthz and logs. */
  describe(): LeadershipState;
  /** Starts campaigning (PostgreSQL) and reports every change of role. */
  start(onChange: (role: Role) => void): Promise<void>;
  /** Gives up the role (if held; reported through onChange as 'follower') and stops campaigning. */
  stop(): Promise<void>;
}

export interface LeadershipState {
  role: Role;
  /** The fencing term: ours while leader, else the last one seen. Null where there is no election (SQLite). */
  term: number | null;
  /** Who leads now: the instance holding the lock (PostgreSQL), this process (SQLite); null when nobody or unknown. */
  holder: string | null;
  /** Why the last campaign or heartbeat failed (cleared when one succeeds). */
  error: string | null;
}

export type Engine = 'sqlite' | 'postgres';

/**
 * Where a long-running service runs this ledger's seals. `in-process`: sealNext on this ledger.
 * `worker`: on a worker thread that opens its own connection with `open` (reading and hashing an
 * epoch on an embedded engine would otherwise block the event loop), without migrating: this
 * ledger already did.
 */
export type SealerSite = { kind: 'in-process' } | { kind: 'worker'; open: WorkerLedgerSpec };

/** What a worker thread needs to open its own connection to the same ledger (structured-cloneable). */
export interface WorkerLedgerSpec {
  engine: 'sqlite';
  file: string;
  /** The durability the service was started with (serve --synchronous). */
  synchronous: 'full' | 'normal';
}

export interface Ledger {
  readonly engine: Engine;
  /** The file, or the database URL without its password: for logs and messages. */
  readonly location: string;
  readonly events: EventStore;
  readonly keys: KeyStore;
  readonly usage: UsageStore;
  readonly classification: ClassificationStore;
  /** Named aggregations per owner, in versions (src/ledger/meters.ts). */
  readonly meters: MeterStore;
  /** Quotas per owner over a namespace's usage in a period, in versions (src/ledger/limits.ts). */
  readonly limits: LimitStore;
  readonly epochs: EpochStore;
  readonly anchors: AnchorStore;
  /** Witness cosignatures of the epoch log's checkpoints. */
  readonly cosignatures: CosignatureStore;
  /** Alert webhooks, their outbox and attempt log (src/ledger/webhooks.ts). */
  readonly webhooks: WebhookStore;
  readonly leadership: Leadership;
  /** How a long-running service should seal this ledger (see SealerSite). */
  readonly sealer: SealerSite;
  /** Whether the database answers. */
  healthy(): Promise<boolean>;
  /** Commits what is queued, then closes. */
  close(): Promise<void>;
}
