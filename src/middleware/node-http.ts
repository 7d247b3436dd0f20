// Node's http objects, as fastify and Express both expose them: byte counts and the one moment a
// response is over (finished, or its connection gone), whichever comes first.
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
 * Calls watch.over(aborted) when the response is over: finished (aborted = false), or its
 * connection gone first (aborted = true, unless the whole answer had been handed over).
 *
 * The cheap way, for Node's own HTTP/1 server: one diagnostics-channel message per finished
 * response (http.server.response.finish) and one close listener per connection. A close listener
 * per response (the way for everything else: fastify's inject, HTTP/2, other runtimes) costs
 * more than the rest of the metering, in Node's listener bookkeeping.
 */
export function watchResponse(w: Watch, socket: Socket | null | undefined): void {
  const res = w.res;
  let conn = socket ? connections.get(socket) : undefined;
  if (conn === undefined ? socket?.destroyed : conn.gone) {
    // The client left while earlier hooks ran: nothing will tell of this response again.
    over(w, true);
    return;
  }
  if (conn === undefined) {
    if (!(socket instanceof Socket && res instanceof ServerResponse && subscribed())) {
      w.w0 = socketBytes(socket);
      res.on('close', () => over(w, !completed(res)));
      return;
    }
    conn = new Connection(socket, res);
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

  constructor(socket: Socket, res: ServerResponse) {
    const writing = (socket as { _httpMessage?: unknown })._httpMessage;
    this.sent = writing == null || writing === res ? socketBytes(socket) : -1;
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

function onResponseFinish(message: unknown): void {
  const { socket, response } = message as { socket?: Socket; response?: ServerResponse };
  const conn = socket ? connections.get(socket) : undefined;
  if (conn === undefined) return; // another server's request, or one that is not metered
  const start = conn.sent;
  conn.sent = response && start >= 0 ? endOf(response, start, socket!) : socketBytes(socket);
  // Every meter watching this response (usually one).
  for (let w = conn.remove(response); w !== undefined; w = conn.remove(response)) {
    channelSeen = true;
    w.w0 = start;
    over(w, false);
  }
}

/**
 * The connection's bytesWritten once `res` is finished, having been `start` when it began. Counted
 * for an answer with a Content-Length (its header block and that many bytes of body): the socket's
 * own count is a call into Node's C++ on every request. Read from the socket for streamed
 * answers and after a 100 Continue. Not seen: 102/103 interim answers, header values beyond
 * ASCII sent as UTF-8, and a body shorter or longer than its Content-Length. Each only shifts
 * the byte count of a later streamed answer on the same connection, by its own size.
 */
function endOf(res: ServerResponse, start: number, socket: Socket): number {
  const r = res as unknown as { _header?: unknown; _contentLength?: unknown; chunkedEncoding?: boolean; _hasBody?: boolean; _sent100?: boolean };
  const header = r._header;
  const body = r._contentLength;
  if (typeof header === 'string' && typeof body === 'number' && !r.chunkedEncoding && !r._sent100) return start + header.length + (r._hasBody === false ? 0 : body);
  return socketBytes(socket);
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
 * The answer's Content-Length; for streamed (chunked) answers, the bytes written to the
 * connection after its headers (chunk framing included; HTTP/1.1), or 0 when the start was not seen.
 */
export function bytesOut(req: IncomingMessage, res: ServerResponse, w0: number): number {
  // Node keeps the Content-Length it sent, also one passed to writeHead() (fastify's way), which
  // getHeader() does not see; the socket count below is the slow way (a UTF-8 length of the header).
  const sent = (res as { _contentLength?: unknown })._contentLength;
  if (typeof sent === 'number' && !(res as { chunkedEncoding?: boolean }).chunkedEncoding) return contentLength(sent);
  const declared = res.getHeader('content-length');
  if (declared !== undefined) return contentLength(declared);
  if (w0 < 0) return 0; // not seen from its start: the socket's count would include earlier answers
  const header = (res as { _header?: unknown })._header; // the header block Node wrote
  const written = (req.socket ? socketBytes(req.socket) : w0) - w0 - (typeof header === 'string' ? Buffer.byteLength(header) : 0);
  return Math.max(0, written);
}
