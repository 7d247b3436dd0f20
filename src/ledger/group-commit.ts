// Group commit, once for both engines: requests arriving together share one commit, each is
// answered only once its rows are committed, and a failed commit fails each of its requests.
// The engine supplies only the commit itself (SQLite: a synchronous write transaction;
// PostgreSQL: one statement, awaited); this queue decides what goes into it and when.
import type { EventStore, EventToWrite, WriteResult } from './types.ts';

export interface GroupCommitOptions {
  /**
   * Longest a queued request waits for others to share its commit, ms. 0 (the default): commit
   * once the requests that arrived in the same turn of the event loop are queued.
   */
  maxDelayMs?: number;
  /** Commit at once when this many events are queued; also the most one commit carries (whole requests, at least one). */
  maxBatchEvents?: number;
}

/** One request's events waiting for a group commit, answered once it committed. */
export interface CommitJob {
  items: EventToWrite[];
  resolve: (results: WriteResult[]) => void;
  reject: (err: unknown) => void;
}

/** Commits one group: a result list per job, in order. Throws (or rejects) to fail all of them. */
export type CommitGroup = (jobs: CommitJob[]) => WriteResult[][] | Promise<WriteResult[][]>;

/** A failing commit hook is reported at most this often (it runs on every commit). */
const HOOK_WARNING_INTERVAL_MS = 60_000;

export class GroupCommit {
  /** EventStore.onCommit: metrics. Its failure never holds up an answer (see answer()). */
  onCommit: EventStore['onCommit'] = undefined;
  /** How many times onCommit threw (each reported by a rate-limited process warning). */
  hookFailures = 0;
  private readonly commitGroup: CommitGroup;
  private readonly maxDelayMs: number;
  private readonly maxBatchEvents: number;
  private queue: CommitJob[] = [];
  private queuedEvents = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  /** The asynchronous commit under way; the next group waits for it (one at a time). */
  private inFlight: Promise<void> | undefined;
  private lastWarning = -Infinity;

  constructor(commitGroup: CommitGroup, options: GroupCommitOptions = {}) {
    this.commitGroup = commitGroup;
    this.maxDelayMs = options.maxDelayMs ?? 0;
    this.maxBatchEvents = Math.max(1, options.maxBatchEvents ?? 5000);
  }

  /** Queues events for the next group commit; resolves with one result per event once committed. */
  write(items: EventToWrite[]): Promise<WriteResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.queuedEvents += items.length;
      if (this.inFlight) return; // taken when the commit in flight ends
      if (this.queuedEvents >= this.maxBatchEvents) this.kick();
      else if (!this.scheduled) {
        this.scheduled = true;
        if (this.maxDelayMs > 0) this.timer = setTimeout(() => this.kick(), this.maxDelayMs);
        else setImmediate(() => this.kick());
      }
    });
  }

  /**
   * Commits everything queued. With a synchronous commit (SQLite) all of it is committed before
   * this returns, so an exit path may call it without waiting; the promise says when an
   * asynchronous one (PostgreSQL) has finished.
   */
  flush(): Promise<void> {
    this.kick();
    return this.settled();
  }

  private async settled(): Promise<void> {
    while (this.inFlight || this.queue.length > 0) {
      if (!this.inFlight) this.kick();
      await this.inFlight;
    }
  }

  /** Commits what is queued, group by group, unless a commit is in flight (which starts the next itself). */
  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.scheduled = false;
    while (!this.inFlight && this.queue.length > 0) {
      const [jobs, events] = this.take();
      const started = performance.now();
      let committed: WriteResult[][] | Promise<WriteResult[][]>;
      try {
        committed = this.commitGroup(jobs);
      } catch (err) {
        for (const job of jobs) job.reject(err);
        continue;
      }
      if (!(committed instanceof Promise)) {
        this.answer(jobs, events, started, committed);
        continue;
      }
      this.inFlight = committed
        .then(
          (results) => this.answer(jobs, events, started, results),
          (err: unknown) => jobs.forEach((job) => job.reject(err)),
        )
        .finally(() => {
          this.inFlight = undefined;
          // What queued meanwhile is the next group: go at once, it has already waited.
          if (this.queue.length > 0) this.kick();
        });
    }
  }

  /** Whole requests, up to maxBatchEvents events (at least one request). */
  private take(): [CommitJob[], number] {
    let n = 0;
    let take = 0;
    while (take < this.queue.length && (take === 0 || n + this.queue[take]!.items.length <= this.maxBatchEvents)) {
      n += this.queue[take]!.items.length;
      take++;
    }
    this.queuedEvents -= n;
    return [this.queue.splice(0, take), n];
  }

  /**
   * Answers a committed group. The rows are stored whatever the hook does, so a throwing hook
   * neither leaves the requests unanswered nor escapes as an uncaught error that would stop the
   * process: it is counted and reported (a process warning, at most once a minute).
   */
  private answer(jobs: CommitJob[], events: number, started: number, results: WriteResult[][]): void {
    try {
      this.onCommit?.(events, (performance.now() - started) / 1000);
    } catch (err) {
      this.hookFailures++;
      const now = Date.now();
      if (now - this.lastWarning >= HOOK_WARNING_INTERVAL_MS) {
        this.lastWarning = now;
        process.emitWarning(
          `onCommit hook threw: ${err instanceof Error ? err.message : String(err)} (the events were committed and answered; ${this.hookFailures} hook failure(s) so far)`,
          'LedgerCommitHookWarning',
        );
      }
    }
    jobs.forEach((job, i) => job.resolve(results[i]!));
  }
}

/**
 * The write half of an EventStore, as both engines have it: writes go through the group-commit
 * queue, onCommit is the queue's hook. An engine supplies commitGroup (its SQL and I/O) and, where
 * its database cannot store something validation let through, refuse.
 */
export abstract class GroupCommittedWrites {
  private readonly group: GroupCommit;

  constructor(options: GroupCommitOptions = {}) {
    this.group = new GroupCommit((jobs) => this.commitGroup(jobs), options);
  }

  /** Commits one group (see CommitGroup). */
  protected abstract commitGroup(jobs: CommitJob[]): WriteResult[][] | Promise<WriteResult[][]>;

  /** Why this engine cannot store a request's events (the request fails alone, before queueing), or null. */
  protected refuse(_items: EventToWrite[]): Error | null {
    return null;
  }

  get onCommit(): EventStore['onCommit'] {
    return this.group.onCommit;
  }

  set onCommit(hook: EventStore['onCommit']) {
    this.group.onCommit = hook;
  }

  /** Queues events for the next group commit; resolves with one result per event once committed. */
  write(items: EventToWrite[]): Promise<WriteResult[]> {
    const refused = this.refuse(items);
    return refused ? Promise.reject(refused) : this.group.write(items);
  }

  /** Commits everything queued (see GroupCommit.flush). */
  protected flushQueue(): Promise<void> {
    return this.group.flush();
  }
}
