// The log's side of tlog-witness: after each seal, the leader submits the latest signed
// checkpoint to every witness given with `serve --witness URL=VKEY`, with the consistency proof
// from the size that witness last cosigned (from the cosignatures stored, or learnt from its
// 409), verifies the cosignature it returns and stores it. Each witness has its own loop: one
// that is down or slow (bounded by a timeout) delays nothing but its own cosignature, retries
// with backoff, and catches up on the next seal. Nothing here blocks a seal.
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { formatVerifierKey, parseCosignerKey, type NoteVerifier } from '../checkpoint/index.ts';
import { epochLogTree, type Ledger, rootAt, type StoredCheckpoint } from '../ledger/index.ts';
import { consistencyProof } from '../merkle/consistency.ts';
import { equalBytes } from '../merkle/proof.ts';
import { memoryNodeReader, type Tree } from '../merkle/tree.ts';
import { cosignatureFrom, formatAddCheckpoint, parseSizeBody } from './protocol.ts';

/** A witness as `--witness URL=VKEY` names it. */
export interface WitnessTarget {
  /** The submission prefix: POST <url>/add-checkpoint. */
  url: string;
  /** Its cosigner verifier (type 0x04; a type 0x01 vkey is turned into it). */
  verifier: NoteVerifier;
}

/**
 * Parses `URL=VKEY`: the URL is everything before the first `=` (http or https, no query, no
 * fragment, no credentials), the vkey a type 0x01 or 0x04 verifier key. Throws naming the rule.
 */
export function parseWitnessArg(value: string): WitnessTarget {
  const at = value.indexOf('=');
  if (at < 0) throw new Error('must be URL=VKEY (the witness submission URL, "=", its verifier key)');
  const raw = value.slice(0, at);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${JSON.stringify(raw.slice(0, 200))} is not a URL (http://host:port[/prefix])`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('the witness URL must be http:// or https://');
  if (url.search || url.hash || url.username || url.password)
    throw new Error('the witness URL takes no query, fragment or credentials (it is a submission prefix)');
  let verifier: NoteVerifier;
  try {
    verifier = parseCosignerKey(value.slice(at + 1));
  } catch (err) {
    throw new Error(`the witness key must be a verifier key name+hex8+base64 (type 0x01 or 0x04): ${(err as Error).message}`);
  }
  return { url: url.href.replace(/\/+$/, ''), verifier };
}

export type WitnessStatus = 'pending' | 'ok' | 'unreachable' | 'refused' | 'conflict';

export interface WitnessHealth {
  url: string;
  /** The witness's cosigner vkey (type 0x04), as stored with its cosignatures. */
  vkey: string;
  /**
   * `pending` (nothing tried yet), `ok` (the latest attempt was cosigned), `unreachable` (down,
   * slow or 5xx: retried), `refused` (4xx: retried, needs a look), `conflict` (it holds a
   * checkpoint this log cannot extend: a fork, or a witness state from another log).
   */
  status: WitnessStatus;
  /** The largest checkpoint size it cosigned that is stored here (null: none yet). */
  cosigned_size: number | null;
  error: string | null;
}

export interface SubmitterOptions {
  ledger: Ledger;
  witnesses: readonly WitnessTarget[];
  logger?: FastifyBaseLogger;
  /** Metrics go here (receipts_witness_*). */
  registry?: Registry;
  /** Per request (default 5,000 ms). */
  timeoutMs?: number;
  /** Retry backoff after a failure (default 1 s doubling to 60 s); the next seal also retries at once. */
  backoff?: { baseMs: number; maxMs: number };
  now?: () => number;
}

const MAX_ANSWER_BYTES = 16 * 1024;

class Refused extends Error {
  readonly status: WitnessStatus;
  constructor(status: WitnessStatus, message: string) {
    super(message);
    this.status = status;
  }
}

interface State {
  target: WitnessTarget;
  vkey: string;
  name: string;
  health: WitnessHealth;
  /** The size it last cosigned, as learnt from it (undefined: read the stored cosignatures). */
  known: number | undefined;
  busy: Promise<void> | null;
  again: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

/** Reads at most `max` bytes of an answer (a witness is not trusted to be brief). */
async function readCapped(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw new Refused('refused', `the witness answered more than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class WitnessSubmitter {
  private readonly options: SubmitterOptions;
  private readonly states: State[];
  private running = false;
  private abort = new AbortController();
  private cachedLog: { size: number; root: Uint8Array; tree: Tree } | undefined;
  private readonly submissions: Counter<'witness' | 'result'> | undefined;
  private readonly cosignedSize: Gauge<'witness'> | undefined;

  constructor(options: SubmitterOptions) {
    this.options = options;
    this.states = options.witnesses.map((target) => {
      const vkey = formatVerifierKey(target.verifier);
      return {
        target,
        vkey,
        name: target.verifier.name,
        health: { url: target.url, vkey, status: 'pending', cosigned_size: null, error: null },
        known: undefined,
        busy: null,
        again: false,
        failures: 0,
        timer: undefined,
      };
    });
    if (options.registry) {
      this.submissions = new Counter({
        name: 'receipts_witness_submissions_total',
        help: 'Checkpoints submitted to each witness, by result (cosigned, conflict_409, refused, unreachable)',
        labelNames: ['witness', 'result'] as const,
        registers: [options.registry],
      });
      this.cosignedSize = new Gauge({
        name: 'receipts_witness_cosigned_size',
        help: 'The largest epoch-log size each witness has cosigned here (0 before the first)',
        labelNames: ['witness'] as const,
        registers: [options.registry],
      });
      for (const s of this.states) this.cosignedSize.set({ witness: s.name }, 0);
      const states = this.states;
      new Gauge({
        name: 'receipts_witness_up',
        help: '1 while the latest submission to the witness was answered with a cosignature (or none was due), 0 otherwise',
        labelNames: ['witness'] as const,
        registers: [options.registry],
        collect() {
          for (const s of states) this.set({ witness: s.name }, s.health.status === 'ok' || s.health.status === 'pending' ? 1 : 0);
        },
      });
    }
  }

  /** Starts submitting (this instance leads): the latest checkpoint goes out at once (catch-up). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.notify();
  }

  /** Stops: in-flight requests are aborted, timers cleared; resolves when every loop is idle. */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    for (const s of this.states) clearTimeout(s.timer);
    await Promise.all(this.states.map((s) => s.busy));
  }

  /** A new checkpoint may be stored: every witness gets it (a busy one right after its current attempt). */
  notify(): void {
    if (!this.running) return;
    for (const s of this.states) {
      clearTimeout(s.timer);
      s.timer = undefined;
      if (s.busy) s.again = true;
      else s.busy = this.loop(s);
    }
  }

  health(): WitnessHealth[] {
    return this.states.map((s) => ({ ...s.health }));
  }

  private async loop(s: State): Promise<void> {
    try {
      do {
        s.again = false;
        try {
          await this.submit(s);
          s.failures = 0;
          s.health.status = 'ok';
          s.health.error = null;
        } catch (err) {
          if (!this.running) return;
          const status = err instanceof Refused ? err.status : 'unreachable';
          const message = (err as Error).message;
          this.submissions?.inc({ witness: s.name, result: status });
          if (s.health.status !== status || s.health.error !== message)
            this.options.logger?.[status === 'conflict' ? 'error' : 'warn'](
              { witness: s.target.url, vkey: s.vkey, status, reason: message },
              status === 'conflict'
                ? 'a witness holds a checkpoint this log cannot extend (a fork, or another log under this origin): it will not cosign until this is investigated'
                : 'witness submission failed; retrying later and on the next seal',
            );
          s.health.status = status;
          s.health.error = message;
          if (!s.again) this.retryLater(s);
        }
      } while (s.again && this.running);
    } finally {
      s.busy = null;
    }
  }

  private retryLater(s: State): void {
    const { baseMs, maxMs } = this.options.backoff ?? { baseMs: 1000, maxMs: 60_000 };
    const delay = Math.min(maxMs, baseMs * 2 ** Math.min(s.failures, 30));
    s.failures++;
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (this.running && !s.busy) s.busy = this.loop(s);
    }, delay);
    s.timer.unref();
  }

  private async submit(s: State): Promise<void> {
    const { ledger } = this.options;
    const checkpoint = await ledger.epochs.checkpoint();
    if (!checkpoint) return;
    const stored = await ledger.cosignatures.latestSize(s.vkey);
    if (stored !== null) {
      s.health.cosigned_size = stored;
      this.cosignedSize?.set({ witness: s.name }, stored);
    }
    if (stored === checkpoint.size) return;
    let old = s.known ?? stored ?? 0;
    // At most three rounds: a 409 tells the size to start from, once.
    for (let round = 0; round < 3; round++) {
      if (old > checkpoint.size)
        throw new Refused(
          'conflict',
          `the witness has cosigned size ${old} of this origin, larger than this log's latest checkpoint (${checkpoint.size})`,
        );
      const proof = old === 0 ? [] : await this.proof(old, checkpoint);
      const answer = await this.post(s, formatAddCheckpoint({ old, proof, note: checkpoint.note }));
      if (answer.status === 200) {
        let cosig: ReturnType<typeof cosignatureFrom>;
        try {
          cosig = cosignatureFrom(checkpoint.note, answer.body, s.target.verifier);
        } catch (err) {
          throw new Refused('refused', `the witness answered 200 without a valid cosignature by ${s.vkey}: ${(err as Error).message}`);
        }
        await ledger.cosignatures.add({
          size: checkpoint.size,
          witness: s.vkey,
          line: cosig.line,
          cosigned_at: cosig.timestamp,
          received_at_ms: (this.options.now ?? Date.now)(),
        });
        s.known = checkpoint.size;
        s.health.cosigned_size = checkpoint.size;
        this.cosignedSize?.set({ witness: s.name }, checkpoint.size);
        this.submissions?.inc({ witness: s.name, result: 'cosigned' });
        return;
      }
      if (answer.status === 409) {
        this.submissions?.inc({ witness: s.name, result: 'conflict_409' });
        const size = parseSizeBody(answer.body);
        if (size === null) throw new Refused('refused', 'the witness answered 409 without a text/x.tlog.size body');
        if (size === old)
          throw new Refused('conflict', `the witness holds another checkpoint of size ${size} than this log signed (a fork)`);
        s.known = size;
        old = size;
        continue;
      }
      const why = answer.body.slice(0, 300).trim();
      if (answer.status >= 500) throw new Error(`the witness answered ${answer.status}: ${why}`);
      throw new Refused(answer.status === 422 ? 'conflict' : 'refused', `the witness answered ${answer.status}: ${why}`);
    }
    throw new Refused('refused', 'the witness kept answering 409 with another size');
  }

  private async post(s: State, body: string): Promise<{ status: number; body: string }> {
    const timeoutMs = this.options.timeoutMs ?? 5000;
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const res = await fetch(`${s.target.url}/add-checkpoint`, { method: 'POST', body, signal, redirect: 'error' });
      return { status: res.status, body: await readCapped(res, MAX_ANSWER_BYTES) };
    } catch (err) {
      if (err instanceof Refused) throw err;
      const e = err as Error & { cause?: { code?: string } };
      if (e.name === 'TimeoutError') throw new Error(`no answer from ${s.target.url} within ${timeoutMs} ms`);
      throw new Error(`cannot reach ${s.target.url}: ${e.cause?.code ?? e.message}`);
    }
  }

  /** The consistency proof from `old` to the checkpoint, from the epoch log checked against its root. */
  private async proof(old: number, checkpoint: StoredCheckpoint): Promise<Uint8Array[]> {
    let log = this.cachedLog;
    if (!log || log.size !== checkpoint.size || !equalBytes(log.root, checkpoint.root)) {
      const epochs = await this.options.ledger.epochs.list({ after: -1, before: checkpoint.size, limit: checkpoint.size });
      const tree = epochLogTree(epochs);
      if (tree.size !== checkpoint.size || !equalBytes(rootAt(tree, checkpoint.size), checkpoint.root))
        throw new Refused('refused', 'the stored epochs do not lead to the latest checkpoint root: nothing submitted');
      log = { size: checkpoint.size, root: checkpoint.root, tree };
      this.cachedLog = log;
    }
    return old === checkpoint.size ? [] : consistencyProof(old, checkpoint.size, memoryNodeReader(log.tree));
  }
}
