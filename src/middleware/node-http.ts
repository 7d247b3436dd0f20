// Node's http objects, as fastify and Express both expose them: byte counts and the one moment a
// response is over (finished, or its connection gone), whichever comes first.
// Nothing here replaces a method or adds a property on the request or response objects: own
// properties on them change their V8 shape and slowed every request of the app by ~30 µs
// (measured with bench:middleware) where the whole budget is a couple of µs. For the same
// budget the per-request state is one object, seen again when its response is over (watchResponse).
import { subscribe } from 'node:diagnostics_channel';
import { type IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { BEFORE_DRAIN, type UsageClient } from '../client/index.ts';
import { contentLength } from './common.ts';

const hrtime = process.hrtime;

/**
 * Monotonic milliseconds (as performance.now(), from another origin). Not performance.now()
 * itself: its brand check runs a builtin that is cold on every request (~250 cycles, README
 * "Overhead"), and it is read twice per request.
 */
export function now(): number {
  const t = hrtime();
  return t[0] * 1e3 + t[1] / 1e6;
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

/**
 * One request of fastify or Express (`request`/`reply` are the framework's own), watched until
 * its response is over; then `end` builds the event, once. Building it right away costs a
 * request more than the instructions suggest: a few KB of code that the rest of the request
 * has pushed out of the CPU's instruction cache (README, "Overhead"). So when the client can
 * take late events (BEFORE_DRAIN), `over` only notes what can still change (the time, the
 * connection's byte count) and queues the exchange; the events are built BATCH at a time,
 * within WAIT_MS, and before the client's flush(), close() or stats().
 */
export class Exchange<Req, Reply> implements Watch {
  // Declared and set in the constructor, not initialized as class fields (V8 would call a
  // separate initializer for those on every request); as few as will do, one store each.
  declare readonly request: Req;
  declare readonly reply: Reply;
  declare readonly res: ServerResponse;
  declare private readonly fin: Finisher<Exchange<Req, Reply>>;
  declare readonly t0: number;
  /** When the response was over (a now() reading); -1 until then. */
  declare t1: number;
  /** Taken at the start when something needs it then (upstream attribution), else at the end. */
  declare id: string | undefined;
  declare w0: number;
  /** The connection's bytesWritten when the response was over; -1 when not known. */
  declare w1: number;
  declare aborted: boolean;

  constructor(request: Req, reply: Reply, res: ServerResponse, fin: Finisher<Exchange<Req, Reply>>, t0: number) {
    this.request = request;
    this.reply = reply;
    this.res = res;
    this.fin = fin;
    this.t0 = t0;
    this.t1 = -1;
    this.id = undefined;
    this.w0 = -1;
    this.w1 = -1;
    this.aborted = false;
  }

  over(aborted: boolean, w1: number): void {
    if (this.t1 >= 0) return;
    this.t1 = now();
    this.aborted = aborted;
    this.w1 = w1;
    if (this.fin.batched) queueFinished(this);
    else this.build(Date.now() - now());
  }

  /** Builds the event (never throws); `offset` turns now() readings into wall-clock ms. */
  build(offset: number): void {
    try {
      this.fin.end(this, this.aborted, Math.round(this.t0 + offset));
    } catch {}
  }
}

/** What a meter does with its exchanges once they are over. */
export interface Finisher<X> {
  /** Builds and records the event; `ts` is the wall-clock ms the request started. */
  end(x: X, aborted: boolean, ts: number): void;
  /** Whether its events are built in batches (see batchesFor). */
  batched: boolean;
}

/** Exchanges over but not built yet, oldest first; never empty while `drainTimer` is unset. */
let finished: Array<{ build(offset: number): void }> = [];
let drainTimer: ReturnType<typeof setTimeout> | undefined;
/** A batch small enough that the requests it holds on to stay out of the GC's way. */
const BATCH = 32;
/** The longest an event waits to be built (under load, a batch fills well before). */
const WAIT_MS = 10;

function queueFinished(x: { build(offset: number): void }): void {
  const n = finished.push(x);
  if (n >= BATCH) drainFinished();
  else if (drainTimer === undefined) drainTimer = setTimeout(onDrainTimer, WAIT_MS);
}

function onDrainTimer(): void {
  drainTimer = undefined;
  drainFinished();
}

/** Builds the events of every finished exchange now (the client calls it before flush and stats). */
export function drainFinished(): void {
  if (finished.length === 0) return;
  const batch = finished;
  finished = [];
  const offset = Date.now() - now(); // one wall-clock read per batch
  for (let i = 0; i < batch.length; i++) batch[i]!.build(offset);
}

/**
 * Whether exchanges recorded through `client` can be built in batches: its flush(), close() and
 * stats() must build them first, which the package's own client does (BEFORE_DRAIN). Another
 * UsageClient gets each event as its response ends.
 */
export function batchesFor(client: UsageClient): boolean {
  const hook = (client as unknown as { [BEFORE_DRAIN]?: unknown })[BEFORE_DRAIN];
  if (typeof hook !== 'function') return false;
  hook.call(client, drainFinished);
  return true;
}

/** A request whose response is watched until it is over. */
export interface Watch {
  readonly res: ServerResponse;
  /**
   * The connection's bytesWritten when this answer started, for answers without a Content-Length
   * (set by watchResponse or when the answer is over); -1 when not known.
   */
  w0: number;
  /**
   * Called when the response is over, with the connection's bytesWritten then; may be called
   * again later (ignore all but the first).
   */
  over(aborted: boolean, w1: number): void;
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
  const conn = socket ? connections.get(socket) : undefined;
  // Per request this is the usual case, kept apart so the code it runs stays small.
  if (conn !== undefined && conn.first === null && channelSeen && !conn.gone) conn.first = w;
  else watchOther(w, socket, conn);
}

/** watchResponse for the rest: a new connection, pipelining, no channel, a client gone. */
function watchOther(w: Watch, socket: Socket | null | undefined, conn: Connection | undefined): void {
  const res = w.res;
  if (conn === undefined ? socket?.destroyed : conn.gone) {
    // The client left while earlier hooks ran: nothing will tell of this response again.
    over(w, true, socketBytes(socket));
    return;
  }
  if (conn === undefined) {
    if (!(socket instanceof Socket && res instanceof ServerResponse && subscribed())) {
      w.w0 = socketBytes(socket);
      res.on('close', () => over(w, !completed(res), socketBytes(socket)));
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
      if (c.delete(w)) over(w, !completed(res), socketBytes(socket));
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
  /** Behind `first`; null when none. */
  rest: Watch[] | null = null;
  /** -1: not known yet (the connection was first seen while another answer was being written). */
  sent: number;
  /** The socket has closed. */
  gone = false;

  constructor(socket: Socket, res: ServerResponse) {
    const writing = (socket as { _httpMessage?: unknown })._httpMessage;
    this.sent = writing == null || writing === res ? socketBytes(socket) : -1;
    socket.once('close', () => this.closed(socket));
  }

  add(w: Watch): void {
    if (this.first === null) this.first = w;
    else (this.rest ??= []).push(w);
  }

  /** Drops the first watch: the next one, if any, is first. */
  private shift(): void {
    const rest = this.rest;
    this.first = rest !== null ? rest.shift()! : null;
    if (rest !== null && rest.length === 0) this.rest = null;
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
    if (i < 0) return undefined;
    const [w] = rest!.splice(i, 1);
    if (rest!.length === 0) this.rest = null;
    return w;
  }

  /** Takes `w` off the list; false when it was not on it (already over). */
  delete(w: Watch): boolean {
    if (this.first === w) {
      this.shift();
      return true;
    }
    const i = this.rest === null ? -1 : this.rest.indexOf(w);
    if (i < 0) return false;
    this.rest!.splice(i, 1);
    if (this.rest!.length === 0) this.rest = null;
    return true;
  }

  /** The connection is gone: what was not finished was aborted. */
  private closed(socket: Socket): void {
    this.gone = true;
    const sent = socketBytes(socket);
    const open = this.first === null ? [] : [this.first, ...(this.rest ?? [])];
    this.first = null;
    this.rest = null;
    const first = open[0]?.res;
    for (const w of open) {
      // The answer being written started where the last one ended (when this runtime's channel
      // keeps that count); those queued behind it never started.
      if (w.res === first && channelSeen && this.sent >= 0) w.w0 = this.sent;
      over(w, !completed(w.res), sent);
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
  const w = conn.first;
  const start = conn.sent;
  // Per request this is the usual case (one answer in flight on the connection, its start known),
  // kept apart so the code it runs stays small.
  if (w !== null && w.res === response && conn.rest === null && start >= 0) {
    conn.first = null;
    const end = endOf(response, start, socket!);
    conn.sent = end;
    channelSeen = true;
    w.w0 = start;
    over(w, false, end);
  } else finishOther(conn, socket!, response, start);
}

function finishOther(conn: Connection, socket: Socket, response: ServerResponse | undefined, start: number): void {
  const end = response && start >= 0 ? endOf(response, start, socket) : socketBytes(socket);
  conn.sent = end;
  // Every meter watching this response (usually one).
  for (let w = conn.remove(response); w !== undefined; w = conn.remove(response)) {
    channelSeen = true;
    w.w0 = start;
    over(w, false, end);
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
function over(w: Watch, aborted: boolean, w1: number): void {
  try {
    w.over(aborted, w1);
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
 * connection after its headers (chunk framing included; HTTP/1.1), from the connection's count
 * when the answer started (w0) and when it was over (w1), or 0 when the start was not seen.
 */
export function bytesOut(res: ServerResponse, w0: number, w1: number): number {
  // Node keeps the Content-Length it sent, also one passed to writeHead() (fastify's way), which
  // getHeader() does not see; the socket count below is the slow way (a UTF-8 length of the header).
  const sent = (res as { _contentLength?: unknown })._contentLength;
  if (typeof sent === 'number' && !(res as { chunkedEncoding?: boolean }).chunkedEncoding) return contentLength(sent);
  const declared = res.getHeader('content-length');
  if (declared !== undefined) return contentLength(declared);
  if (w0 < 0 || w1 < 0) return 0; // not seen from its start: the socket's count would include earlier answers
  const header = (res as { _header?: unknown })._header; // the header block Node wrote
  return Math.max(0, w1 - w0 - (typeof header === 'string' ? Buffer.byteLength(header) : 0));
}
