// Leader election and fencing. One instance at a time holds a session advisory lock on a
// dedicated connection (not from the pool); on taking it, it bumps leadership.term and keeps the
// new term. Every leader write runs in a transaction that first reads the term FOR SHARE and
// aborts if it moved: the lock says who should lead, the term makes a stale leader harmless.
// A new leader's term bump waits for any write that already passed the check (the row lock), so
// the old leader's last write commits strictly before the new term begins.
//
// The lease is enforced by the server too. A paused (SIGSTOP) or partitioned leader cannot give
// its lock up, and PostgreSQL would keep its session, and so the lock, for hours. So the lock
// connection runs with idle_session_timeout = lease (the heartbeat queries every lease / 3), every
// fenced transaction with idle_in_transaction_session_timeout = lease, and every session with TCP
// deadlines (db.ts sessionOptions): a leader that stops talking loses its session, its lock and
// any row lock of a fenced write within about a lease, and a follower takes the term. When the old
// leader comes back its next fenced write finds the newer term and writes nothing.
import pg from 'pg';
import type { Leadership, LeadershipState as LedgerLeadershipState, Role } from '../types.ts';
import { LEADER_LOCK, pgTypes, sessionOptions, transaction } from './db.ts';

// pg_locks shows a bigint advisory key as two 32-bit halves.
const LOCK_HIGH = Number(LEADER_LOCK >> 32n);
const LOCK_LOW = Number(LEADER_LOCK & 0xffffffffn);

export class FencedError extends Error {
  constructor(detail: string) {
    super(`this instance is no longer the leader: ${detail}; the write was not made (the current leader does it)`);
    this.name = 'FencedError';
  }
}

export interface LeadershipOptions {
  url: string;
  instanceId: string;
  /** How long a lost leader may go unnoticed; campaigns and heartbeats run every leaseMs / 3. */
  leaseMs: number;
}

/** The interface's LeadershipState, and who this instance is. */
export interface LeadershipState extends LedgerLeadershipState {
  instanceId: string;
}

export class PgLeadership implements Leadership {
  private readonly o: LeadershipOptions;
  private current: Role = 'follower';
  private term: number | null = null;
  private seenTerm: number | null = null;
  private seenHolder: string | null = null;
  private lastError: string | null = null;
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private running = false;
  private onChange: (role: Role) => void = () => {};

  constructor(options: LeadershipOptions) {
    this.o = options;
  }

  /** The lease, ms: how long this instance may go silent before the server ends its session. */
  leaseMs(): number {
    return Math.max(500, this.o.leaseMs);
  }

  role(): Role {
    return this.current;
  }

  describe(): LeadershipState {
    const leader = this.current === 'leader';
    return {
      role: this.current,
      term: leader ? this.term : this.seenTerm,
      holder: leader ? this.o.instanceId : this.seenHolder,
      instanceId: this.o.instanceId,
      error: this.lastError,
    };
  }

  async start(onChange: (role: Role) => void): Promise<void> {
    this.onChange = onChange;
    if (this.running) return;
    this.running = true;
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.o.leaseMs / 3)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    const client = this.client;
    this.client = null;
    if (client) {
      // Ending the session releases the advisory lock; unlock first so a successor need not wait for it.
      if (this.current === 'leader') await client.query('SELECT pg_advisory_unlock($1)', [LEADER_LOCK.toString()]).catch(() => {});
      await client.end().catch(() => {});
    }
    this.demote();
  }

  /**
   * Runs fn in a transaction that first checks, with the leadership row locked FOR SHARE, that
   * the term is still ours. Throws FencedError (and steps down) when it is not.
   */
  async fenced<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const term = this.term;
    if (this.current !== 'leader' || term === null) throw new FencedError(`role is ${this.current}`);
    try {
      return await transaction(pool, async (client) => {
        // The deadline rides on the fence: a leader paused inside this transaction loses it (and
        // its row locks) after a lease instead of holding up the next leader and every writer.
        const { rows } = await client.query<{ term: number; holder: string | null }>({
          name: 'leadership-fence',
          text: "SELECT term, holder, set_config('idle_in_transaction_session_timeout', $1, true) FROM leadership FOR SHARE",
          values: [String(this.leaseMs())],
        });
        const row = rows[0];
        if (!row || row.term !== term) {
          throw new FencedError(`term ${term} was superseded by term ${row?.term} (${row?.holder ?? 'unknown'})`);
        }
        return fn(client);
      });
    } catch (err) {
      if (err instanceof FencedError && this.term === term) await this.stepDown();
      throw err;
    }
  }

  /** One round: keep the role (heartbeat) or campaign for it. Never overlaps itself. */
  private tick(): Promise<void> {
    this.ticking ??= this.round().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async round(): Promise<void> {
    if (!this.running) return;
    try {
      const client = this.client ?? (await this.connect());
      if (this.current === 'leader') {
        await client.query('SELECT 1');
        this.lastError = null;
        return;
      }
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_LOCK.toString()]);
      if (!got.rows[0]?.ok) {
        // Who leads is who holds the lock now, not who last wrote the row: a leader whose session
        // the server ended is no leader, even before anyone else took the term.
        const seen = await client.query<{ term: number; holder: string | null; held: boolean }>({
          text: `SELECT term, holder, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid
                   AND objid = $2::oid AND objsubid = 1 AND granted) AS held FROM leadership`,
          values: [LOCK_HIGH, LOCK_LOW],
        });
        this.seenTerm = seen.rows[0]?.term ?? null;
        this.seenHolder = seen.rows[0]?.held ? (seen.rows[0]?.holder ?? null) : null;
        this.lastError = null;
        return;
      }
      try {
        // lock_timeout (set on connect): a stale leader's write holding the row delays this, never blocks it forever.
        const bumped = await client.query<{ term: number }>(
          'UPDATE leadership SET term = term + 1, holder = $1, since = now() RETURNING term',
          [this.o.instanceId],
        );
        if (!this.running || this.client !== client) throw new Error('stopped while campaigning');
        this.term = bumped.rows[0]!.term;
        this.seenTerm = this.term;
        this.seenHolder = this.o.instanceId;
        this.current = 'leader';
        this.lastError = null;
        this.notify('leader');
      } catch (err) {
        await client.query('SELECT pg_advisory_unlock($1)', [LEADER_LOCK.toString()]).catch(() => {});
        throw err;
      }
    } catch (err) {
      // Connection trouble: drop the connection (which frees the lock server-side) and try again next round.
      this.lastError = (err as Error).message;
      this.dropClient();
    }
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.o.url,
      types: pgTypes,
      keepAlive: true,
      keepAliveInitialDelayMillis: Math.max(1000, this.o.leaseMs),
      query_timeout: this.o.leaseMs,
      connectionTimeoutMillis: this.o.leaseMs,
      // The server ends this session when we go quiet for a lease (heartbeats come every lease / 3).
      options: sessionOptions(this.leaseMs(), { idle_session_timeout: this.leaseMs() }),
      application_name: `sui-receipts leader-election ${this.o.instanceId}`.slice(0, 63),
    });
    const lost = () => {
      if (this.client === client) this.dropClient();
    };
    client.on('error', lost);
    client.on('end', lost);
    this.client = client;
    try {
      await client.connect();
      await client.query(`SET lock_timeout = ${Math.max(50, Math.floor(this.o.leaseMs / 2))}`);
    } catch (err) {
      lost();
      throw err;
    }
    return client;
  }

  /** The lock connection is gone or unusable: no longer leader, at once. */
  private dropClient(): void {
    const client = this.client;
    this.client = null;
    if (client) void client.end().catch(() => {});
    this.demote();
  }

  /** A fenced write found a newer term: give the lock up so the roles settle, then campaign again. */
  private async stepDown(): Promise<void> {
    const client = this.client;
    if (client && this.current === 'leader') {
      await client.query('SELECT pg_advisory_unlock($1)', [LEADER_LOCK.toString()]).catch(() => this.dropClient());
    }
    this.demote();
  }

  private demote(): void {
    this.term = null;
    if (this.current === 'leader') {
      this.current = 'follower';
      this.notify('follower');
    }
  }

  /** The listener runs inside pg's event handlers here: its failure must not break the election. */
  private notify(role: Role): void {
    try {
      this.onChange(role);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
