// Alert webhooks on the leader (issue 25): the crossing detector queues alerts in the ledger's
// outbox, the delivery loop sends them. The service starts this when the instance leads and
// stops it when it no longer does; the routes (src/api/routes/webhooks.ts) run on every instance.
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { Ledger } from '../ledger/index.ts';
import { AlertDetector, type CrossingSource } from './alerts.ts';
import { limitCrossings } from './crossings.ts';
import { type DeliveryOptions, WebhookDeliverer } from './delivery.ts';
import type { Resolver } from './url.ts';

export interface WebhookServiceOptions {
  /** Allow loopback, private and link-local receivers (serve --webhook-allow-private). Default false. */
  allowPrivate?: boolean;
  resolver?: Resolver;
  /** Delivery tuning (DeliveryOptions): deadline, concurrency, poll, backoff, retry window. */
  delivery?: Pick<DeliveryOptions, 'timeoutMs' | 'concurrency' | 'pollMs' | 'backoff' | 'retryWindowMs'>;
  /** Which thresholds are crossed: the limits' (default), another source, or false for none. */
  crossings?: CrossingSource | false;
  /** How often the detector looks, ms (default 2,000). */
  detectIntervalMs?: number;
}

export class WebhookRunner {
  readonly deliverer: WebhookDeliverer;
  readonly detector: AlertDetector | undefined;

  /** now: the detector's clock (which period a limit is in); delivery runs on the real one. */
  constructor(ledger: Ledger, options: WebhookServiceOptions & { logger?: FastifyBaseLogger; registry?: Registry; now?: () => number }) {
    const policy = { allowPrivate: options.allowPrivate ?? false };
    this.deliverer = new WebhookDeliverer({
      store: ledger.webhooks,
      policy,
      ...(options.resolver && { resolver: options.resolver }),
      ...(options.logger && { logger: options.logger }),
      ...(options.registry && { registry: options.registry }),
      ...options.delivery, // on the real clock: retries must fall due even where the service's clock is fixed (tests)
    });
    const source = options.crossings === undefined ? limitCrossings(ledger) : options.crossings;
    this.detector = source
      ? new AlertDetector({
          ledger,
          source,
          onQueued: () => this.deliverer.notify(),
          ...(options.detectIntervalMs !== undefined && { intervalMs: options.detectIntervalMs }),
          ...(options.logger && { logger: options.logger }),
          ...(options.now && { now: options.now }),
        })
      : undefined;
  }

  start(): void {
    this.deliverer.start();
    this.detector?.start();
  }

  async stop(): Promise<void> {
    await this.detector?.stop();
    await this.deliverer.stop();
  }
}

export { AlertDetector, type CrossingSource } from './alerts.ts';
export { limitCrossings } from './crossings.ts';
export { signedHeaders, WebhookDeliverer } from './delivery.ts';
export { ALERT_TYPE, alertOf, alertPayload, type Crossing, receiptsLink } from './payload.ts';
export { checkWebhookTarget, checkWebhookUrl, isPublicAddress, type Resolver, type UrlPolicy } from './url.ts';
