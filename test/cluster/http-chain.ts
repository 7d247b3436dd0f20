// The fake chain shared by several service processes: one FakeChain (the registry twin) lives in
// the test process behind a tiny HTTP server, and each instance talks to it through HttpChain.
// `holdAnchorMs` makes the chain execute a transaction and then hold its answer, so a test can
// kill the sender after execution and before it learns the result.
import { createServer, type Server } from 'node:http';
import type { AnchorChain, AnchoredEpoch, AnchorSubmission } from '../../src/chain/chain.ts';
import type { EpochToAnchor } from '../../src/chain/ptb.ts';
import { FakeChain } from '../anchor/fake-chain.ts';

export class ChainServer {
  readonly chain = new FakeChain();
  /** Hold each anchor answer this long after execution (ms). */
  holdAnchorMs = 0;
  /** Called when a transaction has executed and its answer is being held. */
  onExecuted: (epochs: number[]) => void = () => {};
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        void this.handle(req.url ?? '', body).then(
          (out) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out)),
          (err: Error) =>
            res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message, name: err.name })),
        );
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as { port: number }).port}`;
  }

  private async handle(path: string, body: string): Promise<unknown> {
    if (path === '/next') return this.chain.nextEpoch();
    if (path.startsWith('/read/')) return this.chain.readEpoch(Number(path.slice(6)));
    if (path.startsWith('/checkpoint/')) return this.chain.checkpointOf(decodeURIComponent(path.slice(12)));
    if (path === '/digest') return `Digest${this.chain.calls + 1}`;
    if (path === '/anchor') {
      const submission = await this.chain.anchor(JSON.parse(body) as EpochToAnchor[]);
      if (this.holdAnchorMs > 0) {
        this.onExecuted(this.chain.executed.at(-1)!.epochs);
        await new Promise((r) => setTimeout(r, this.holdAnchorMs));
      }
      return submission;
    }
    throw new Error(`no route ${path}`);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

/** An AnchorChain in a service process, backed by a ChainServer. */
export class HttpChain implements AnchorChain {
  readonly network = 'localnet';
  readonly packageId = `0x${'a'.repeat(64)}`;
  readonly registryId = `0x${'b'.repeat(64)}`;
  private readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  private async call<T>(path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const out = (await res.json()) as T & { error?: string };
    if (res.status !== 200) throw new Error(`chain: ${out.error}`);
    return out;
  }

  nextEpoch(): Promise<number> {
    return this.call('/next');
  }
  readEpoch(epoch: number): Promise<AnchoredEpoch | null> {
    return this.call(`/read/${epoch}`);
  }
  checkpointOf(digest: string): Promise<string | null> {
    return this.call(`/checkpoint/${encodeURIComponent(digest)}`);
  }
  async anchor(epochs: EpochToAnchor[], hooks?: { beforeSend?: (digest: string) => void | Promise<void> }): Promise<AnchorSubmission> {
    // The digest is known before sending, as with a signed Sui transaction.
    await hooks?.beforeSend?.(await this.call<string>('/digest'));
    return this.call('/anchor', epochs);
  }
}
