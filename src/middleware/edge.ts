// sui-receipts/edge: wraps a fetch-style handler `(request, ctx) => Response` (Cloudflare Workers,
// Vercel/Next edge, Deno, Bun) to record one usage event per completed request. The event is
// recorded when the body has been sent to the end (or cancelled), and the client's flush is
// handed to `ctx.waitUntil`, so the answer never waits for metering. No Node-only import.
import type { UsageClient } from '../client/index.ts';
import { attributionContext, contentLength, createMeter, type Meter, type MeterOptions } from './common.ts';

export type { RequestOutcome } from './common.ts';

interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

export type EdgeMeterOptions<A extends unknown[] = unknown[]> = Omit<MeterOptions<Request, Response>, 'client'> & {
  /** A client, or a function of the handler's other arguments (Workers: `(env) => createUsageClient(...)`), called once. */
  client?: UsageClient | ((...args: A) => UsageClient);
  /** The route pattern of a request (there is no router to ask); default none. Never the raw path. */
  route?: (request: Request) => string | undefined;
};

export type FetchHandler<A extends unknown[]> = (request: Request, ...args: A) => Response | Promise<Response>;

export function meterHandler<A extends unknown[]>(
  handler: FetchHandler<A>,
  options: EdgeMeterOptions<A>,
): (request: Request, ...args: A) => Promise<Response> {
  if (typeof handler !== 'function') throw new Error('meterHandler: handler must be a function (request, ctx) => Response');
  let meter: Meter<Request, Response> | undefined;
  const meterFor = (args: A) => {
    if (!meter) {
      const c = options.client;
      meter = createMeter({ ...options, client: typeof c === 'function' ? c(...args) : c }, 'meterHandler');
    }
    return meter;
  };
  // Fail at start-up on bad options when the client does not depend on the handler's arguments.
  if (typeof options?.client !== 'function') meterFor([] as unknown as A);

  return async (request: Request, ...args: A): Promise<Response> => {
    const m = meterFor(args);
    const ctx = args.find((a): a is A[number] & WaitUntil => typeof (a as Partial<WaitUntil> | null)?.waitUntil === 'function');
    const ts = Date.now();
    const t0 = performance.now();
    const requestId = m.requestId(request, request.headers.get('x-request-id'));
    let bytesOut = 0;
    let over!: () => void;
    const finished = new Promise<void>((r) => (over = r));
    let done = false;
    const finish = (response: Response | undefined, status: number, aborted: boolean) => {
      if (done) return;
      done = true;
      let route: string | undefined;
      try {
        route = options.route?.(request) || undefined;
      } catch (err) {
        m.report(err);
      }
      const bytesIn = contentLength(request.headers.get('content-length'));
      m.record(
        request,
        response ?? new Response(null, { status }),
        ts,
        requestId,
        request.method,
        route,
        status,
        aborted,
        performance.now() - t0,
        bytesIn,
        bytesOut,
      );
      over();
    };
    // The client sends after the answer is complete; the runtime keeps that alive.
    if (ctx) {
      try {
        ctx.waitUntil(finished.then(() => m.client.flush()).catch(() => {}));
      } catch (err) {
        m.report(err);
      }
    }

    let response: Response;
    if (m.gated) {
      // The admission gate: refused, the handler never runs (the refusal is recorded as it ends).
      const refused = await m.admit(request);
      if (refused) {
        const answer = new Response(refused.body, { status: refused.status, headers: refused.headers });
        finish(answer, answer.status, false);
        return answer;
      }
    }
    try {
      const storage = attributionContext(); // only once a metered fetch exists
      const context = storage ? m.context(request, requestId) : undefined;
      response = await (context ? storage!.run(context, () => handler(request, ...args)) : handler(request, ...args));
    } catch (err) {
      finish(undefined, request.signal?.aborted ? 499 : 500, request.signal?.aborted === true);
      throw err; // the runtime answers it as it would without metering
    }
    try {
      if (!(response instanceof Response)) throw new Error('meterHandler: the handler did not return a Response');
      // No body to wait for (or one that cannot be rebuilt, a WebSocket upgrade): done now.
      if (response.body === null || response.status === 101 || (response as Response & { webSocket?: unknown }).webSocket) {
        finish(response, response.status, false);
        return response;
      }
      const reader = response.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done: end, value } = await reader.read();
            if (end) {
              controller.close();
              finish(response, response.status, false);
            } else {
              bytesOut += value?.byteLength ?? 0;
              controller.enqueue(value);
            }
          } catch (err) {
            controller.error(err);
            finish(response, response.status, true);
          }
        },
        cancel(reason) {
          finish(response, response.status, true); // the client went away mid-body
          return reader.cancel(reason);
        },
      });
      return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    } catch (err) {
      m.report(err);
      finish(undefined, 500, false);
      return response!;
    }
  };
}
