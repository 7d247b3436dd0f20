// The HTTP API. Thin: validation, the ledger and the metrics do the work; this wires them
// together and keeps one error shape and one log line per request.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS } from '../event/validate.ts';
import { redactUrl } from '../event/redact.ts';
import type { Ledger } from '../ledger/index.ts';
import helmet from '@fastify/helmet';
import { protectedRoutes } from './auth.ts';
import { installRequestLimits, REQUEST_LIMITS, type RequestLimits } from './limits.ts';
import { installErrorHandlers } from './errors.ts';
import { installJsonBodyParser } from './body.ts';
import { createMetrics } from './metrics.ts';
import { eventsRoutes } from './routes/events.ts';
import { operationsRoutes } from './routes/operations.ts';
import { usageRoutes } from './routes/usage.ts';
import { receiptRoutes } from './routes/receipts.ts';
import { webRoutes } from './routes/web.ts';
import { inProcessSealer, SealScheduler, WorkerSealer } from '../seal/scheduler.ts';
import { Anchorer } from '../anchor/anchorer.ts';
import type { AnchorChain } from '../chain/chain.ts';

export const BODY_LIMIT = 1024 * 1024;

/** The Content-Security-Policy of every response: the page loads nothing from elsewhere. */
const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  styleSrc: ["'self'", "'unsafe-inline'"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  frameAncestors: ["'none'"],
};

export interface ServerOptions {
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
  /** Timeouts and the cap on bodies being received at once (defaults: REQUEST_LIMITS). */
  limits?: Partial<RequestLimits>;
  /** Clock, for tests. */
  now?: () => number;
}

export function buildServer(options: ServerOptions): FastifyInstance {
  const limits: RequestLimits = { ...REQUEST_LIMITS, ...options.limits };
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: BODY_LIMIT,
    // Slow or stalled clients are cut off: headers, the whole request, and an idle socket each
    // have a deadline (Node checks them every checkIntervalMs).
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: limits.checkIntervalMs },
    // We log one line per request ourselves (onResponse), with secrets redacted.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  const metrics = createMetrics();
  options.ledger.writer.onCommit = (events, seconds) => {
    metrics.commitBatch.observe(events);
    metrics.commitDuration.observe(seconds);
  };

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: request.method, route, status: reply.statusCode });
    metrics.latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    request.log.info(
      {
        method: request.method,
        url: redactUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        ...(request.principal && { key_id: request.principal.keyId, owner: request.principal.owner }),
      },
      'request',
    );
  });

  // The usual headers for a service that also serves a page; the page's CSP is the default.
  void app.register(helmet, { contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES }, frameguard: { action: 'deny' }, hsts: false });
  installErrorHandlers(app);
  installRequestLimits(app, limits, metrics);
  installJsonBodyParser(app); // JSON only (anything else is a 415), and only valid UTF-8
  const now = options.now ?? Date.now;
  // Everything under /v1 needs a key: the routes live in the context that holds the auth hook.
  void app.register(
    protectedRoutes(options.ledger.keys, (v1) => {
      eventsRoutes(v1, {
        ledger: options.ledger,
        metrics,
        now,
        validation: {
          maxAgeMs: options.maxEventAgeMs ?? DEFAULT_MAX_AGE_MS,
          maxFutureMs: DEFAULT_MAX_FUTURE_MS,
          ...(options.actions && { actions: new Set(options.actions) }),
        },
      });
      usageRoutes(v1, { ledger: options.ledger });
      receiptRoutes(v1, { ledger: options.ledger, ...(options.anchoring && { chain: options.anchoring.chain }) });
    }),
  );
  if (options.web) void app.register(webRoutes, options.web);
  if (options.sealing) {
    const worker = options.ledger.file === ':memory:' ? undefined : new WorkerSealer(options.ledger.file);
    const scheduler = new SealScheduler(options.ledger.db, {
      ...options.sealing,
      seal: worker ? worker.seal : inProcessSealer(options.ledger.db),
      logger: app.log,
      onSealed: (epoch, seconds) => {
        metrics.epochsSealed.inc();
        metrics.sealDuration.observe(seconds);
        metrics.epochSize.observe(epoch.size);
      },
      onError: () => metrics.sealErrors.inc(),
    });
    app.addHook('onReady', async () => scheduler.start());
    app.addHook('onClose', async () => {
      await scheduler.stop();
      await worker?.close();
    });
  }
  let anchorer: Anchorer | undefined;
  if (options.anchoring) {
    const a = new Anchorer({
      db: options.ledger.db,
      ...options.anchoring,
      logger: app.log,
      onAnchored: (epochs) => metrics.epochsAnchored.inc(epochs.length),
      onRetry: () => metrics.anchorRetries.inc(),
      onFailed: () => metrics.anchoringFailed.set(1),
    });
    metrics.anchoringFailed.set(0);
    app.addHook('onReady', async () => a.start());
    app.addHook('onClose', async () => a.stop());
    anchorer = a;
  }
  operationsRoutes(app, { ledger: options.ledger, metrics, ...(anchorer && { anchorer }) });
  return app;
}
