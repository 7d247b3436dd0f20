// The composition root: builds the HTTP API, the sealer and the anchorer on one ledger, runs the
// sealer and anchorer only while this instance leads (always, on SQLite), and stops them in order
// when the app closes: leadership, sealer (waits for a seal in progress), anchorer, then the API.
// It sees the ledger only through its interface (src/ledger/types.ts).
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { verifierKeyOf, type SigningKey } from './checkpoint/index.ts';
import { Anchorer } from './anchor/anchorer.ts';
import { buildApi, type ApiOptions } from './api/server.ts';
import { createMetrics } from './api/metrics.ts';
import type { HealthReport } from './api/routes/operations.ts';
import type { RequestLimits } from './api/limits.ts';
import type { AnchorChain } from './chain/chain.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS } from './event/validate.ts';
import type { Ledger, Role } from './ledger/index.ts';
import { SealScheduler, sealerFor } from './seal/scheduler.ts';
import { WitnessSubmitter, type WitnessTarget } from './witness/submitter.ts';
import { WebhookRunner, type WebhookServiceOptions } from './webhooks/index.ts';

export interface ServiceOptions {
  ledger: Ledger;
  /** A pino logger; omit for none. */
  logger?: FastifyBaseLogger;
  /** Allowed actions; omit to accept any well-formed action. */
  actions?: string[];
  /** Oldest accepted event time, as an age in ms (default 35 days). */
  maxEventAgeMs?: number;
  /** How old an event may be and still be corrected, ms (default: maxEventAgeMs). */
  correctionWindowMs?: number;
  /** Seal epochs in the background (off when omitted: tests and `receipts seal` seal by hand). */
  sealing?: { epochMs: number; maxEvents: number };
  /** Anchor sealed epochs on this chain (off when omitted). */
  anchoring?: { chain: AnchorChain; pollMs?: number; backoff?: { baseMs: number; maxMs: number } };
  /** Serve the web page from this built folder (web-dist/); off when omitted. */
  web?: { dir: string };
  /** Timeouts and body budgets (defaults: REQUEST_LIMITS). */
  limits?: Partial<RequestLimits>;
  /**
   * The log key: each seal signs a checkpoint of the epoch log with it (its name is the origin),
   * and the log routes serve them. Omitted: no checkpoints (GET /checkpoint answers log_off).
   */
  logKey?: SigningKey;
  /** Witnesses the leader submits each new checkpoint to (needs logKey); their cosignatures are stored and served. */
  witnesses?: WitnessTarget[];
  /** Per witness request, ms (default 5,000), and the retry backoff after a failure. */
  witnessTimeoutMs?: number;
  witnessBackoff?: { baseMs: number; maxMs: number };
  /** Clock, for tests. */
  now?: () => number;
  /** Passed to the API as they are (ApiOptions): how responses are serialized, and a route observer. */
  serializerCompiler?: ApiOptions['serializerCompiler'];
  onRoute?: ApiOptions['onRoute'];
  /** Alert webhooks: which receivers are allowed, delivery tuning, the crossing detector (sent only while leading). */
  webhooks?: WebhookServiceOptions;
}

/** The service as one fastify app: listen() to serve, close() to stop everything in order. */
export function buildService(options: ServiceOptions): FastifyInstance {
  const { ledger } = options;
  const now = options.now ?? Date.now;
  const metrics = createMetrics({ ledger, now, anchoring: options.anchoring !== undefined });
  ledger.events.onCommit = (events, seconds) => {
    metrics.commitBatch.observe(events);
    metrics.commitDuration.observe(seconds);
  };

  let role: Role = 'follower';
  let stopping = false;
  let anchorer: Anchorer | undefined;
  let scheduler: SealScheduler | undefined;
  let sealer: ReturnType<typeof sealerFor> | undefined;
  let log: FastifyBaseLogger | undefined = options.logger;

  const anchoringHealth = async (): Promise<HealthReport['anchoring']> => {
    if (!options.anchoring) return { status: 'off', error: null };
    if (role === 'follower' || !anchorer) return { status: 'follower', error: null };
    const state = await anchorer.state().catch((err: Error) => err);
    if (state instanceof Error) return { status: 'unknown', error: state.message };
    if (state.status === 'failed' || state.status === 'retrying') return { status: state.status, error: state.error };
    return { status: 'ok', error: null };
  };
  const sealingHealth = (): HealthReport['sealing'] => {
    if (!scheduler) return { status: 'off', error: null };
    const halted = scheduler.halted;
    return halted ? { status: 'stopped', error: halted.message } : { status: 'ok', error: null };
  };
  let submitter: WitnessSubmitter | undefined;
  const health = async (): Promise<HealthReport> => ({
    anchoring: await anchoringHealth(),
    sealing: sealingHealth(),
    role,
    leadership: ledger.leadership.describe(),
    ...(submitter && { witnesses: submitter.health() }),
  });

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
    ...(options.logKey && { log: { origin: options.logKey.name, vkey: verifierKeyOf(options.logKey) } }),
    ...(options.limits && { limits: options.limits }),
    correctionWindowMs: options.correctionWindowMs ?? options.maxEventAgeMs ?? DEFAULT_MAX_AGE_MS,
    ...(options.serializerCompiler && { serializerCompiler: options.serializerCompiler }),
    ...(options.onRoute && { onRoute: options.onRoute }),
    webhooks: {
      policy: { allowPrivate: options.webhooks?.allowPrivate ?? false },
      ...(options.webhooks?.resolver && { resolver: options.webhooks.resolver }),
    },
    health,
    now,
  });
  log = app.log;

  if (options.witnesses?.length && !options.logKey)
    throw new TypeError('witnesses: a witness cosigns the checkpoints a log key signs; give logKey too');
  if (options.witnesses?.length && options.logKey) {
    submitter = new WitnessSubmitter({
      ledger,
      witnesses: options.witnesses,
      logger: app.log,
      registry: metrics.registry,
      ...(options.witnessTimeoutMs !== undefined && { timeoutMs: options.witnessTimeoutMs }),
      ...(options.witnessBackoff && { backoff: options.witnessBackoff }),
    });
  }

  if (options.sealing) {
    // The ledger says where its seals run (SQLite: a worker thread; PostgreSQL: in-process).
    sealer = sealerFor(ledger, { logger: app.log, ...(options.logKey && { logKey: options.logKey }) });
    scheduler = new SealScheduler(ledger, {
      ...options.sealing,
      seal: sealer.seal,
      catchUp: sealer.catchUp,
      logger: app.log,
      onSealed: (epoch, seconds) => {
        metrics.epochsSealed.inc();
        metrics.sealDuration.observe(seconds);
        metrics.epochSize.observe(epoch.size);
        submitter?.notify(); // never awaited: a slow witness delays nothing
      },
      onError: () => metrics.sealErrors.inc(),
    });
  }

  const webhooks = new WebhookRunner(ledger, { ...options.webhooks, logger: app.log, registry: metrics.registry, now });
  const lead = () => {
    webhooks.start();
    scheduler?.start();
    submitter?.start();
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
    await webhooks.stop();
    await scheduler?.stop();
    await submitter?.stop();
    await anchorer?.stop();
    anchorer = undefined;
  };

  app.addHook('onReady', async () => {
    await ledger.leadership.start((next) => {
      if (next === role) return;
      role = next;
      metrics.leader.set(next === 'leader' ? 1 : 0);
      const { term, error } = ledger.leadership.describe();
      // Say what this instance knows: losing or giving up the role does not mean another one has it yet.
      if (next === 'leader') log?.info({ role: next, engine: ledger.engine, term }, 'this instance now leads: it seals and anchors');
      else if (stopping)
        log?.info(
          { role: next, engine: ledger.engine },
          'this instance gave up leadership because it is stopping: it no longer seals or anchors',
        );
      else
        log?.warn(
          { role: next, engine: ledger.engine, ...(error && { reason: error }) },
          'this instance lost leadership: it no longer seals or anchors, and campaigns again',
        );
      if (next === 'leader') lead();
      else void follow();
    });
  });
  app.addHook('onClose', async () => {
    stopping = true;
    await ledger.leadership.stop();
    await follow();
    await sealer?.close();
  });
  return app;
}
