// The HTTP API: registers the routes and the request-level policies (auth by route, limits,
// headers, one error shape, one log line per request). The service (src/service.ts) builds the
// ledger, sealer and anchorer and hands this what the routes need.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ValidationContext } from '../event/validate.ts';
import { redactUrl } from '../event/redact.ts';
import type { Ledger } from '../ledger/index.ts';
import { protectedRoutes } from './auth.ts';
import { installRequestLimits, REQUEST_LIMITS, type RequestLimits } from './limits.ts';
import { installErrorHandlers } from './errors.ts';
import { installJsonBodyParser } from './body.ts';
import { eventsRoutes } from './routes/events.ts';
import { operationsRoutes } from './routes/operations.ts';
import { usageRoutes } from './routes/usage.ts';
import { classificationRoutes } from './routes/classification.ts';
import { correctionRoutes } from './routes/corrections.ts';
import { meterRoutes } from './routes/meters.ts';
import { limitRoutes } from './routes/limits.ts';
import { receiptRoutes } from './routes/receipts.ts';
import { eventProofRoute, logRoutes, type LogIdentity } from './routes/log.ts';
import { webRoutes } from './routes/web.ts';
import { registerOpenApi } from './openapi.ts';
import { securityHeaders } from './security-headers.ts';
import type { FastifySerializerCompiler } from 'fastify/types/schema.js';
import { validatorCompiler } from './validation.ts';
import type { AnchorChain } from '../chain/chain.ts';
import { ReceiptReader } from '../receipt/reader.ts';
import type { Metrics } from './metrics.ts';
import type { HealthReport } from './routes/operations.ts';
import { webhookRoutes, type WebhookRouteOptions } from './routes/webhooks.ts';

/** A route as registered, for an `onRoute` observer (the OpenAPI test checks the document lists them all). */
export interface RegisteredRoute {
  method: string;
  url: string;
  hidden: boolean;
}

export const BODY_LIMIT = 1024 * 1024;
/** The version of the API document (info.version): the /v1 API. */
export const API_VERSION = '1.0.0';

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

export interface ApiOptions {
  ledger: Ledger;
  metrics: Metrics;
  /** A pino logger; omit for none. */
  logger?: FastifyBaseLogger;
  /** The rules of event validation that do not change per request. */
  validation: Omit<ValidationContext, 'now'>;
  /** How old an event may be and still be corrected, ms (default: validation.maxAgeMs). */
  correctionWindowMs?: number;
  /** The chain the service anchors on, for the server-side chain read (off when omitted). */
  chain?: AnchorChain;
  /** Serve the web page from this built folder (web-dist/); off when omitted. */
  web?: { dir: string };
  /** The epoch log's origin and verifier key (off when omitted: the log routes answer log_off). */
  log?: LogIdentity;
  /** Timeouts and body budgets (defaults: REQUEST_LIMITS). */
  limits?: Partial<RequestLimits>;
  /** What /healthz reports beyond the database: anchoring and this instance's role. */
  health: () => Promise<HealthReport>;
  now: () => number;
  /**
   * How responses become JSON (default: plain JSON.stringify; the declared response shapes are
   * for the document). Tests pass validation.ts's checkingSerializer, so that a response that
   * breaks its declaration fails them.
   */
  serializerCompiler?: FastifySerializerCompiler<unknown>;
  /** Told of every route as it is registered. */
  onRoute?: (route: RegisteredRoute) => void;
  /** Which webhook URLs are accepted (default: public addresses only). */
  webhooks?: Pick<WebhookRouteOptions, 'policy' | 'resolver'>;
}

export function buildApi(options: ApiOptions): FastifyInstance {
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
  const { metrics, now } = options;
  const receipts = new ReceiptReader(options.ledger);

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
  securityHeaders(app, {
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
    hsts: false,
  });
  // Routes declare their input and output in zod: input is validated with the API's own errors,
  // output is plain JSON.stringify (the declared response shapes are for the document and tests).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(options.serializerCompiler ?? (() => (data) => JSON.stringify(data)));
  const { onRoute } = options;
  if (onRoute) {
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat())
        onRoute({ method, url: r.url, hidden: Boolean((r.schema as { hide?: boolean } | undefined)?.hide) });
    });
  }
  // Before the routes: the document is built from the routes registered after it.
  registerOpenApi(app, API_VERSION);
  installErrorHandlers(app);
  installRequestLimits(app, limits, metrics);
  installJsonBodyParser(app); // JSON only (anything else is a 415), and only valid UTF-8
  // Everything under /v1 needs a key: the routes live in the context that holds the auth hook.
  void app.register(
    protectedRoutes(options.ledger.keys, (v1) => {
      webhookRoutes(v1, { ledger: options.ledger, now, policy: { allowPrivate: false }, ...options.webhooks });
      eventsRoutes(v1, {
        ledger: options.ledger,
        metrics,
        now,
        validation: options.validation,
      });
      usageRoutes(v1, { ledger: options.ledger, receipts });
      classificationRoutes(v1, { ledger: options.ledger, now });
      meterRoutes(v1, { ledger: options.ledger, now });
      limitRoutes(v1, { ledger: options.ledger, now });
      correctionRoutes(v1, {
        ledger: options.ledger,
        now,
        windowMs: options.correctionWindowMs ?? options.validation.maxAgeMs,
        actions: options.validation.actions,
      });
      receiptRoutes(v1, { ledger: options.ledger, receipts, ...(options.chain && { chain: options.chain }) });
      eventProofRoute(v1, { ledger: options.ledger, receipts, ...(options.log && { log: options.log }) });
    }),
  );
  // The epoch log's checkpoint, origin and consistency proofs: public (no key), outside the auth context.
  void app.register(async (pub) => logRoutes(pub, { ledger: options.ledger, ...(options.log && { log: options.log }) }));
  if (options.web) void app.register(webRoutes, options.web);
  // In a plugin, like every route: registered after the document's route hook is in place.
  void app.register(async (ops) => operationsRoutes(ops, { ledger: options.ledger, metrics, health: options.health }));
  return app;
}
