// The composition root: builds the HTTP API, the sealer and the anchorer on one ledger, runs the
// sealer and anchorer only while this instance leads (always, on SQLite), and stops them in order
// when the app closes: leadership, sealer (waits for a seal in progress), anchorer, then the API.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Anchorer } from './anchor/anchorer.ts';
import { buildApi } from './api/server.ts';
import { createMetrics } from './api/metrics.ts';
import type { HealthReport } from './api/routes/operations.ts';
import type { RequestLimits } from './api/limits.ts';
import type { AnchorChain } from './chain/chain.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS } from './event/validate.ts';
import type { Ledger, Role } from './ledger/index.ts';
import { inProcessSealer, SealScheduler, WorkerSealer } from './seal/scheduler.ts';

export interface ServiceOptions {
  ledger: Ledger;
  /** A pino logger; omit for none. */
  logger?: FastifyBaseLogger;
  /** Allowed actions; omit to accept any well-formed action. */
  actions?: string[];
  /** Oldest accepted event time, as an age in ms (default 35 days). */
  maxEventAgeMs?: number;
  /** Seal epochs in the background (off when omitted: tests and `receipts seal` seal by hand). */
  sealing?: { epochMs: number; maxEvents: number };
  /** Anchor sealed epochs on this chain (off when omitted). */
  anchoring?: { chain: AnchorChain; pollMs?: number; backoff?: { baseMs: number; maxMs: number } };
  /** Serve the web page from this built folder (web-dist/); off when omitted. */
  web?: { dir: string };
  /** Timeouts and body budgets (defaults: REQUEST_LIMITS). */
  limits?: Partial<RequestLimits>;
  /** Clock, for tests. */
  now?: () => number;
}

/** The service as one fastify app: listen() to serve, close() to stop everything in order. */
export function buildService(options: ServiceOptions): FastifyInstance {
  const { ledger } = options;
  const metrics = createMetrics();
  ledger.events.onCommit = (events, seconds) => {
    metrics.commitBatch.observe(events);
    metrics.commitDuration.observe(seconds);
  };

  let role: Role = 'follower';
  let anchorer: Anchorer | undefined;
  let scheduler: SealScheduler | undefined;
  let worker: WorkerSealer | undefined;
  let log: FastifyBaseLogger | undefined = options.logger;

  const health = async (): Promise<HealthReport> => {
    let anchoring = 'off';
    if (options.anchoring && role === 'follower') anchoring = 'follower';
    else if (anchorer) {
      const state = await anchorer.state().catch(() => undefined);
      anchoring = !state ? 'unknown' : state.status === 'failed' || state.status === 'retrying' ? `${state.status}: ${state.error}` : 'ok';
    }
    const describe = (ledger.leadership as { describe?: () => { term?: number; holder?: string | null } }).describe?.();
    return { anchoring, role, ledger: { engine: ledger.engine, ...(describe && { term: describe.term, leader: describe.holder ?? null }) } };
  };

  const app = buildApi({
    ledger,
    metrics,
    ...(options.logger && { logger: options.logger }),
    validation: {
      maxAgeMs: options.maxEventAgeMs ?? DEFAULT_MAX_AGE_MS,
      maxFutureMs: DEFAULT_MAX_FUTURE_MS,
      ...(options.actions && { actions: new Set(options.actions) }),
    },
    ...(options.anchoring && { chain: options.anchoring.chain }),
    ...(options.web && { web: options.web }),
    ...(options.limits && { limits: options.limits }),
    health,
    now: options.now ?? Date.now,
  });
  log = app.log;

  if (options.sealing) {
    // SQLite seals on a worker thread with its own connection; PostgreSQL seals in-process.
    worker = ledger.engine === 'sqlite' && ledger.location !== ':memory:' ? new WorkerSealer(ledger.location) : undefined;
    scheduler = new SealScheduler(ledger, {
      ...options.sealing,
      seal: worker ? worker.seal : inProcessSealer(ledger),
      logger: app.log,
      onSealed: (epoch, seconds) => {
        metrics.epochsSealed.inc();
        metrics.sealDuration.observe(seconds);
        metrics.epochSize.observe(epoch.size);
      },
      onError: () => metrics.sealErrors.inc(),
    });
  }

  const lead = () => {
    scheduler?.start();
    if (options.anchoring) {
      anchorer = new Anchorer({
        ledger,
        ...options.anchoring,
        logger: app.log,
        onAnchored: (epochs) => metrics.epochsAnchored.inc(epochs.length),
        onRetry: () => metrics.anchorRetries.inc(),
        onFailed: () => metrics.anchoringFailed.set(1),
      });
      metrics.anchoringFailed.set(0);
      anchorer.start();
    }
  };
  const follow = async () => {
    await scheduler?.stop();
    await anchorer?.stop();
    anchorer = undefined;
  };

  app.addHook('onReady', async () => {
    await ledger.leadership.start((next) => {
      if (next === role) return;
      role = next;
      metrics.leader.set(next === 'leader' ? 1 : 0);
      log?.info({ role: next, engine: ledger.engine }, next === 'leader' ? 'this instance now seals and anchors' : 'this instance follows: another one seals and anchors');
      if (next === 'leader') lead();
      else void follow();
    });
  });
  app.addHook('onClose', async () => {
    await ledger.leadership.stop();
    await follow();
    await worker?.close();
  });
  return app;
}
