// Node's http objects, as fastify and Express both expose them: byte counts and the one moment a
// response is over (finished, or its connection gone), whichever comes first.
// Nothing here replaces a method or adds a property on the request or response objects: own
// properties on them change their V8 shape and slowed every request of the app by ~30 µs
// (measured with bench:middleware) where the whole budget is a couple of µs. For the same
// budget the per-request state is one plain object and one close listener.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentLength } from './common.ts';

/** When a request started and how much its connection had carried before it. */
export interface Started {
  readonly t0: number;
  readonly ts: number;
  /** The socket's bytesWritten at the start (for answers without a Content-Length); -1 when not known. */
  readonly w0: number;
}

/** The global `performance` is an accessor (a slow global load on every request): read it once. */
const perf = performance;

export function started(req: IncomingMessage): Started {
  const t0 = perf.now();
  return { t0, ts: wallClock(t0), w0: socketBytes(req.socket) };
}

/** performance.now(), for callers that keep their own start (fastify's state holds more than Started). */
export function now(): number {
  return perf.now();
}

let offset = Date.now() - perf.now();
let rebased = perf.now();
/**
 * The wall-clock time (ms) of a performance.now() reading: Date.now() is a call into the
 * runtime on every request, the monotonic clock is not. The offset between the two is read
 * again once a second, so a step of the system clock shows within a second.
 */
export function wallClock(t: number): number {
  if (t - rebased > 1000 || t < rebased) {
    offset = Date.now() - perf.now();
    rebased = t;
  }
  return Math.round(t + offset);
}

/**
 * The socket's bytesWritten. The public getter copies the socket's write buffer into an array
 * on every read; with nothing buffered or pending it equals the bytes handed to the OS, which
 * Node keeps in a field.
 */
export function socketBytes(socket: IncomingMessage['socket'] | null | undefined): number {
  if (!socket) return 0;
  const s = socket as unknown as { _bytesDispatched?: unknown; _pendingData?: unknown };
  if (socket.writableLength === 0 && s._pendingData == null && typeof s._bytesDispatched === 'number') return s._bytesDispatched;
  return socket.bytesWritten ?? 0;
}

/** Milliseconds since `s` started. */
export function elapsed(s: Started): number {
  return perf.now() - s.t0;
}

/** Calls done(aborted) exactly once, when the response is over (res 'close' always comes, after 'finish' or without it). */
export function onOver(res: ServerResponse, done: (aborted: boolean) => void): void {
  res.on('close', () => done(!completed(res)));
}

/**
 * At 'close': whether the whole answer was handed over. Flushed to the connection; or ended
 * with its connection still open, which is how light-my-request (fastify's inject) ends, its
 * socket never flushing. A client that left before the end destroys the socket.
 */
export function completed(res: ServerResponse): boolean {
  if (res.writableFinished) return true;
  const socket = res.socket;
  return res.writableEnded && socket != null && !socket.destroyed;
}

/** The request's Content-Length (0 without one). */
export function bytesIn(req: IncomingMessage): number {
  return contentLength(req.headers['content-length']);
}

/**
 * The answer's Content-Length; for streamed (chunked) answers, the bytes written to the
 * connection after its headers (chunk framing included; HTTP/1.1), or 0 when the start was not seen.
 */
export function bytesOut(req: IncomingMessage, res: ServerResponse, s: Started): number {
  // Node keeps the Content-Length it sent, also one passed to writeHead() (fastify's way), which
  // getHeader() does not see; the socket count below is the slow way (a UTF-8 length of the header).
  const sent = (res as { _contentLength?: unknown })._contentLength;
  if (typeof sent === 'number' && !(res as { chunkedEncoding?: boolean }).chunkedEncoding) return contentLength(sent);
  const declared = res.getHeader('content-length');
  if (declared !== undefined) return contentLength(declared);
  if (s.w0 < 0) return 0; // not seen from its start: the socket's count would include earlier answers
  const header = (res as { _header?: unknown })._header; // the header block Node wrote
  const written = (req.socket ? socketBytes(req.socket) : s.w0) - s.w0 - (typeof header === 'string' ? Buffer.byteLength(header) : 0);
  return Math.max(0, written);
}
