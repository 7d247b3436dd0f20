// Node's http objects, as fastify and Express both expose them: byte counts and the one moment a
// response is over (finished, or its connection gone), whichever comes first.
// Nothing here replaces a method or adds a property on the request or response objects: own
// properties on them change their V8 shape and slowed every request of the app by ~30 µs
// (measured with bench:middleware) where the whole budget is a couple of µs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentLength } from './common.ts';

export interface Tracked {
  readonly t0: number;
  readonly ts: number;
  bytesIn(): number;
  bytesOut(): number;
}

/**
 * Byte counts and done(aborted), called exactly once when the response is over.
 * - in: the request's Content-Length (0 without one).
 * - out: the answer's Content-Length; for streamed (chunked) answers, the bytes written to the
 *   connection after its headers (chunk framing included; HTTP/1.1).
 */
export function track(req: IncomingMessage, res: ServerResponse, done: (aborted: boolean) => void): Tracked {
  const socket = req.socket;
  const w0 = socket?.bytesWritten ?? 0;
  let over = false;
  res.once('close', () => {
    if (over) return;
    over = true;
    done(!res.writableFinished);
  });
  return {
    t0: performance.now(),
    ts: Date.now(),
    bytesIn: () => contentLength(req.headers['content-length']),
    bytesOut: () => {
      const declared = res.getHeader('content-length');
      if (declared !== undefined) return contentLength(declared);
      const header = (res as { _header?: unknown })._header; // the header block Node wrote
      const written = (socket?.bytesWritten ?? w0) - w0 - (typeof header === 'string' ? Buffer.byteLength(header) : 0);
      return Math.max(0, written);
    },
  };
}
