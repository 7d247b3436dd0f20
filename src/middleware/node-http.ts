// Node's http objects, as fastify and Express both expose them: byte counts and the one moment a
// response is over (finished, or its connection gone), whichever comes first.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentLength } from './common.ts';

export interface Tracked {
  readonly t0: number;
  readonly ts: number;
  bytesIn(): number;
  bytesOut(): number;
}

/**
 * Counts body bytes written through the response (plain, streamed and chunked replies alike)
 * and read (Content-Length, else counted for chunked uploads), and calls done(aborted) exactly once when the response is over.
 */
export function track(req: IncomingMessage, res: ServerResponse, done: (aborted: boolean) => void): Tracked {
  let written = 0;
  let read = 0;
  const write = res.write;
  const end = res.end;
  const count = (chunk: unknown, encoding: unknown) => {
    if (typeof chunk === 'string') written += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) written += chunk.byteLength;
  };
  let ending = false; // some responses' end() calls this.write(): count that chunk once
  res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown) {
    if (!ending) count(chunk, encoding);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, encoding, cb);
  } as typeof res.write;
  res.end = function (this: ServerResponse, chunk?: unknown, encoding?: unknown, cb?: unknown) {
    if (typeof chunk !== 'function') count(chunk, encoding);
    ending = true;
    try {
      return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, encoding, cb);
    } finally {
      ending = false;
    }
  } as typeof res.end;
  const declaredIn = req.headers['content-length'];
  if (declaredIn === undefined && req.headers['transfer-encoding'] !== undefined) {
    // Chunked upload: count what the parser pushes (a listener on 'data' would start the flow
    // before the body parser is attached and lose bytes).
    const push = req.push;
    req.push = function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) {
      if (chunk instanceof Uint8Array) read += chunk.byteLength;
      return push.call(this, chunk, encoding);
    };
  }
  let over = false;
  res.once('close', () => {
    if (over) return;
    over = true;
    done(!res.writableFinished);
  });
  return {
    t0: performance.now(),
    ts: Date.now(),
    bytesIn: () => (declaredIn !== undefined ? contentLength(declaredIn) : read),
    bytesOut: () => written,
  };
}
