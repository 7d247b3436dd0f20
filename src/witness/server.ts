// The witness's HTTP face (C2SP tlog-witness): POST /add-checkpoint and nothing else. Plain
// node:http so that the body is read as the bytes the spec defines, bounded before it is
// buffered, and every status is the spec's. The decision is protocol.ts's, the state store.ts's.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { SigningKey } from '../checkpoint/index.ts';
import {
  checkSubmission,
  decide,
  type KnownLogs,
  MAX_BODY_BYTES,
  parseAddCheckpoint,
  SIGNATURE_TYPE,
  SIZE_TYPE,
  WitnessError,
} from './protocol.ts';
import type { WitnessStore } from './store.ts';

export interface WitnessServerOptions {
  key: SigningKey;
  logs: KnownLogs;
  store: WitnessStore;
  logger: Logger;
  /** Seconds since the Unix epoch, for the cosignature's timestamp (tests). */
  now?: () => number;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** Reads a body up to `max` bytes; null (and the connection is closed after the answer) beyond. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) {
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.pause();
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function createWitnessServer(opts: WitnessServerOptions): Server {
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/add-checkpoint')
      return send(res, 404, 'text/plain; charset=utf-8', 'not found: this witness serves POST /add-checkpoint\n');
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return send(res, 405, 'text/plain; charset=utf-8', 'add-checkpoint is a POST\n');
    }
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === null) {
      res.setHeader('connection', 'close');
      return send(res, 413, 'text/plain; charset=utf-8', `the body is at most ${MAX_BODY_BYTES} bytes\n`);
    }
    try {
      const request = parseAddCheckpoint(body);
      const checked = checkSubmission(request, opts.logs);
      const out = opts.store.cosign(checked.origin, (state) => decide(request, checked, state, opts.key, now));
      opts.logger.info({ origin: out.origin, size: out.size, old: request.old }, 'cosigned');
      return send(res, 200, SIGNATURE_TYPE, out.signatures);
    } catch (err) {
      if (!(err instanceof WitnessError)) throw err;
      if (err.status === 409 || err.status === 422) {
        // Kept as evidence: a refused checkpoint with a valid log signature may show a fork.
        opts.logger.warn({ status: err.status, reason: err.message, body: body.toString('utf8').slice(0, 8192) }, 'checkpoint refused');
      }
      if (err.status === 409 && err.knownSize !== undefined) return send(res, 409, SIZE_TYPE, `${err.knownSize}\n`);
      return send(res, err.status, 'text/plain; charset=utf-8', `${err.message}\n`);
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      opts.logger.error({ err: { message: err.message } }, 'add-checkpoint failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error: nothing was cosigned\n');
      else res.destroy();
    });
  });
  // A slow or silent client holds a connection for seconds, not forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  return server;
}
