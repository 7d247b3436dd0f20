// Node's http objects, as fastify and Express both expose them: byte counts and the one moment a
// response is over (finished, or its connection gone), whichever comes first.
// Only Node's public API (no underscore fields: they change without notice between releases).
// Nothing here replaces a method or adds a property on the request or response objects: own
// properties on them change their V8 shape and slowed every request of the app by ~30 µs
// (measured with bench:middleware) where the whole budget is a couple of µs. For the same
// budget the per-request state is one object, seen again when its response is over (watchResponse).
import { subscribe } from 'node:diagnostics_channel';
import { type IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { contentLength } from './common.ts';

/** The global `performance` is an accessor (a slow global load on every request): read it once. */
const perf = performance;

/** performance.now(). */
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

/** The socket's bytesWritten (public: everything handed to the socket, buffered or not). */
export function socketBytes(socket: IncomingMessage['socket'] | null | undefined): number {
  return socket?.bytesWritten ?? 0;
}

/** Milliseconds since `t0` (a now() reading). */
export function elapsed(t0: number): number {
  return perf.now() - t0;
}

/**
 * One request of fastify or Express (`request`/`reply` are the framework's own), watched until
 * its response is over; then `end` builds the event, once.
 */
export class Exchange<Req, Reply> implements Watch {
  readonly request: Req;
  readonly reply: Reply;
  readonly res: ServerResponse;
  readonly t0: number;
  readonly ts: number;
  /** Taken at the start when something needs it then (upstream attribution), else at the end. */
  id: string | undefined = undefined;
  w0 = -1;
  private done = false;
  private readonly end: (x: Exchange<Req, Reply>, aborted: boolean) => void;

  constructor(request: Req, reply: Reply, res: ServerResponse, end: Exchange<Req, Reply>['end'], t0 = perf.now(), ts = wallClock(t0)) {
    this.request = request;
    this.reply = reply;
    this.res = res;
    this.end = end;
    this.t0 = t0;
    this.ts = ts;
  }

  over(aborted: boolean): void {
    if (this.done) return;
    this.done = true;
    this.end(this, aborted);
  }
}

/** A request whose response is watched until it is over. */
export interface Watch {
  readonly res: ServerResponse;
  /**
   * The connection's bytesWritten when this answer started, for answers without a Content-Length
   * (set by watchResponse or when the answer is over); -1 when not known.
   */
  w0: number;
  /** Called when the response is over; may be called again later (ignore all but the first). */
  over(aborted: boolean): void;
}

/**
 * Returns whether the channel tells of this response's end (else a close listener does).
 * Calls watch.over(aborted) when the response is over: finished (aborted = false), or its
 * connection gone first (aborted = true, unless the whole answer had been handed over).
 *
 * The cheap way, for Node's own HTTP/1 server: one diagnostics-channel message per finished
 * response (http.server.response.finish) and one close listener per connection. A close listener
 * per response (the way for everything else: fastify's inject, HTTP/2, other runtimes) costs
 * more than the rest of the metering, in Node's listener bookkeeping.
 */
export function watchResponse(w: Watch, socket: Socket | null | undefined): boolean {
  const res = w.res;
  let conn = socket ? connections.get(socket) : undefined;
  if (conn === undefined ? socket?.destroyed : conn.gone) {
    // The client left while earlier hooks ran: nothing will tell of this response again.
    over(w, true);
    return false;
  }
  if (conn === undefined) {
    if (!(socket instanceof Socket && res instanceof ServerResponse && subscribed())) {
      w.w0 = socketBytes(socket);
      res.on('close', () => over(w, !completed(res)));
      return false;
    }
    conn = new Connection(socket);
    connections.set(socket, conn);
  }
  // Behind an answer still being written (pipelining), or until this runtime has shown that it
  // publishes the channel, also the per-response way: a queued response the app destroys ends
  // with its own close event only.
  if (conn.first !== null || !channelSeen) {
    if (!channelSeen) w.w0 = socketBytes(socket);
    const c = conn;
    res.on('close', () => {
      if (c.delete(w)) over(w, !completed(res));
    });
  }
  conn.add(w);
  return channelSeen;
}

/**
 * Whether `res` is watched through the finished-response channel on `socket` (its connection):
 * still under way, or the last answer the channel finished there. What a framework hook that
 * runs after the channel (fastify's onResponse) asks instead of keeping a map of every request.
 */
export function watchedOnChannel(res: ServerResponse, socket: Socket | null | undefined): boolean {
  const conn = socket ? connections.get(socket) : undefined;
  return conn !== undefined && (conn.lastDone === res || conn.holds(res));
}

/**
 * Responses not over yet on one connection, oldest first: more than one only with pipelining
 * (or with two meters on one app). Also the connection's bytesWritten at the end of its last
 * answer, which is where the next one starts: HTTP/1 answers on a connection are written one
 * after the other.
 */
class Connection {
  first: Watch | null = null;
  rest: Watch[] | null = null;
  /** -1: not known yet (the connection was first seen while another answer was being written). */
  sent: number;
  /** The socket has closed. */
  gone = false;
  /** The last response the channel finished on this connection. */
  lastDone: unknown = null;

  constructor(socket: Socket) {
    // Nothing written yet: this answer starts at 0. Else another answer may be being written
    // (Node's public API does not say which): unknown until the next one finishes.
    this.sent = socket.bytesWritten === 0 ? 0 : -1;
    socket.once('close', () => this.closed());
  }

  add(w: Watch): void {
    if (this.first === null) this.first = w;
    else (this.rest ??= []).push(w);
  }

  /** Drops the first watch: the next one, if any, is first. */
  private shift(): void {
    this.first = this.rest !== null && this.rest.length > 0 ? this.rest.shift()! : null;
  }

  /** A watch of `res`, taken off the list. */
  remove(res: unknown): Watch | undefined {
    const first = this.first;
    if (first !== null && first.res === res) {
      this.shift();
      return first;
    }
    const rest = this.rest;
    const i = rest === null ? -1 : rest.findIndex((w) => w.res === res);
    return i < 0 ? undefined : rest!.splice(i, 1)[0];
  }

  /** Whether a watch of `res` is on the list. */
  holds(res: unknown): boolean {
    return (this.first !== null && this.first.res === res) || (this.rest?.some((w) => w.res === res) ?? false);
  }

  /** Takes `w` off the list; false when it was not on it (already over). */
  delete(w: Watch): boolean {
    if (this.first === w) {
      this.shift();
      return true;
    }
    const i = this.rest === null ? -1 : this.rest.indexOf(w);
    if (i >= 0) this.rest!.splice(i, 1);
    return i >= 0;
  }

  /** The connection is gone: what was not finished was aborted. */
  private closed(): void {
    this.gone = true;
    const open = this.first === null ? [] : [this.first, ...(this.rest ?? [])];
    this.first = null;
    this.rest = null;
    const first = open[0]?.res;
    for (const w of open) {
      // The answer being written started where the last one ended (when this runtime's channel
      // keeps that count); those queued behind it never started.
      if (w.res === first && channelSeen && this.sent >= 0) w.w0 = this.sent;
      over(w, !completed(w.res));
    }
  }
}

/** Per connection (socket) of Node's HTTP/1 server; dropped with the socket. */
const connections = new WeakMap<Socket, Connection>();
let channelSeen = false;
let subscription: boolean | undefined;

/** Subscribes (once per copy of this module) to Node's finished-response channel; false where there is none. */
function subscribed(): boolean {
  if (subscription === undefined) {
    try {
      subscribe('http.server.response.finish', onResponseFinish);
      subscription = true;
    } catch {
      subscription = false;
    }
  }
  return subscription;
}

/** Servers whose answers are all expected to be watched, with what to call for one that was not. */
const unwatched = new WeakMap<object, (response: ServerResponse) => void>();

/**
 * Calls `report` for each answer of `server` that finishes without having been watched (its
 * start never seen: answered by a hook that ran before the meter's). Node's HTTP/1 server only.
 */
export function reportUnwatched(server: object, report: (response: ServerResponse) => void): void {
  if (subscribed()) unwatched.set(server, report);
}

function onResponseFinish(message: unknown): void {
  const { socket, response, server } = message as { socket?: Socket; response?: ServerResponse; server?: object };
  const conn = socket ? connections.get(socket) : undefined;
  let seen = false;
  if (conn !== undefined) {
    const start = conn.sent;
    conn.sent = socketBytes(socket);
    // Every meter watching this response (usually one).
    for (let w = conn.remove(response); w !== undefined; w = conn.remove(response)) {
      channelSeen = seen = true;
      w.w0 = start;
      over(w, false);
    }
    if (seen) conn.lastDone = response;
  }
  if (!seen && server !== undefined && response !== undefined) {
    const report = unwatched.get(server);
    if (report !== undefined) {
      try {
        report(response);
      } catch {}
    }
  }
}

/** Never throws into Node's channel or close event (a watch reports its own errors). */
function over(w: Watch, aborted: boolean): void {
  try {
    w.over(aborted);
  } catch {}
}

/**
 * At 'close': whether the whole answer was handed over. Flushed to the connection; or ended
 * with its connection still open, which is how light-my-request (fastify's inject) ends, its
 * socket never flushing. A client that left before the end destroys the socket.
 */
export function completed(res: ServerResponse): boolean {
  // HTTP/2: a response whose stream the client reset reports writableFinished once destroyed.
  const stream = (res as { stream?: { aborted?: boolean; rstCode?: number } }).stream;
  if (stream !== undefined && (stream.aborted === true || (stream.rstCode ?? 0) > 0)) return false;
  if (res.writableFinished) return true;
  const socket = res.socket;
  return res.writableEnded && socket != null && !socket.destroyed;
}

/** The request's Content-Length (0 without one). */
export function bytesIn(req: IncomingMessage): number {
  return contentLength(req.headers['content-length']);
}

/**
 * The answer's body size: 0 for HEAD, 204 and 304; else its Content-Length as declared (`declared`, the framework's view of the header; else
 * the response's own). Without one (a streamed, chunked answer): the bytes written to the
 * connection for this answer, its status line, headers and chunk framing included (Node's public
 * API does not give the size of the header block it wrote), or 0 when its start was not seen.
 */
export function bytesOut(
  req: IncomingMessage,
  res: ServerResponse,
  w0: number,
  declared: unknown = res.getHeader('content-length'),
): number {
  // No body whatever the headers say (RFC 9110 §6.4.1).
  if (req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return 0;
  if (declared !== undefined) return contentLength(declared);
  if (w0 < 0) return 0; // not seen from its start: the socket's count would include earlier answers
  return Math.max(0, socketBytes(req.socket) - w0);
}
