// A real service over HTTP and a small proxy in front of it that lies: each test gives the proxy
// a function that rewrites some answers (a tampered event, a forged root, another key's
// checkpoint, …), and the audit reads the service only through the proxy.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cosigner, generateSigningKey, signNote, splitNote, verifierKeyOf, type SigningKey } from '../../src/checkpoint/index.ts';
import { logSigner } from '../../src/ledger/index.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { event, testServer, type LedgerFactory, type TestServer } from '../helpers.ts';

/** Rewrites one answer: the path asked (with its query) and the body; returns the body to send. */
export type Lie = (path: string, body: string) => string;

export interface LyingSetup {
  s: TestServer;
  /** The honest service's URL. */
  upstream: string;
  /** The proxy's URL: what the audit is pointed at. */
  url: string;
  logKey: SigningKey;
  vkey: string;
  /** A witness whose cosignature the proxy adds to every checkpoint it relays (it checked nothing: a stand-in). */
  witness: SigningKey;
  witnessVkey: string;
  /** The lie of the current test (identity when honest). */
  lie: { fn: Lie };
  /** The period [from, to) holding the 7 acme/prod events. */
  period: { from: number; to: number };
  close(): Promise<void>;
}

/** Adds the witness's cosignature to a signed checkpoint note. */
export function cosign(note: string, witness: SigningKey): string {
  const { text, signatures } = splitNote(note);
  return signNote(text, [cosigner(witness)], signatures);
}

/**
 * The service with `logKey`, 7 events in acme/prod over 3 actions (recall ×3 units 1..3, embed ×2
 * units 10 and 20, ping ×2 units 5 each; ping non-billable from time 0) and one in acme/dev,
 * sealed into epochs of 3, 3 and 2 with a checkpoint each; and the proxy, which relays every checkpoint cosigned by `witness`.
 */
export async function lyingSetup(fresh?: LedgerFactory): Promise<LyingSetup> {
  const logKey = generateSigningKey('receipts.test/audit');
  const witness = generateSigningKey('witness.test/one');
  const s = await testServer({ logKey }, fresh);
  await s.ledger.classification.append({ billable: [], non_billable: ['ping'], other: 'billable' }, { fromMs: 0, now: Date.now() });
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 120_000;
  const events = [
    event({ action: 'recall', units: 1, ts: t0 + 1 }),
    event({ action: 'embed', units: 10, ts: t0 + 2 }),
    event({ action: 'ping', units: 5, ts: t0 + 3 }),
    event({ action: 'recall', units: 2, ts: t0 + 4 }),
    event({ action: 'embed', units: 20, ts: t0 + 5 }),
    event({ action: 'ping', units: 5, ts: t0 + 6 }),
    event({ action: 'recall', units: 3, ts: t0 + 7 }),
    event({ namespace: 'acme/dev', action: 'recall', units: 100, ts: t0 + 8 }),
  ];
  const res = await s.post({ events });
  if (res.statusCode !== 200) throw new Error(`ingest failed: ${res.body}`);
  const signer = logSigner(logKey);
  for (let i = 0; i < 3; i++) await sealNext(s.ledger, { maxEvents: 3, log: signer });
  const upstream = await s.app.listen({ port: 0, host: '127.0.0.1' });
  const lie = { fn: ((_p, b) => b) as Lie };
  const proxy: Server = createServer((req, res) => {
    void (async () => {
      try {
        const path = req.url ?? '/';
        const up = await fetch(upstream + path, {
          headers: req.headers.authorization ? { authorization: req.headers.authorization } : {},
        });
        let body = await up.text();
        if (up.status === 200) {
          if (path === '/checkpoint') body = cosign(body, witness);
          else if (path.includes('/proof')) {
            const b = JSON.parse(body);
            b.checkpoint = cosign(b.checkpoint, witness);
            body = JSON.stringify(b);
          }
          body = lie.fn(path, body);
        }
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
        res.end(body);
      } catch (err) {
        res.writeHead(502);
        res.end(String(err));
      }
    })();
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return {
    s,
    upstream,
    url,
    logKey,
    vkey: verifierKeyOf(logKey),
    witness,
    witnessVkey: verifierKeyOf(witness),
    lie,
    period: { from: t0, to: t0 + 1000 },
    async close() {
      await new Promise<void>((r) => proxy.close(() => r()));
      await s.close();
    },
  };
}

/** Rewrites the JSON answer of paths that match. */
export function onJson(match: (path: string) => boolean, edit: (json: any) => void): Lie {
  return (path, body) => {
    if (!match(path)) return body;
    const json = JSON.parse(body);
    edit(json);
    return JSON.stringify(json);
  };
}

export const isUsage = (p: string) => p.startsWith('/v1/usage?') && p.includes('receipts=true');

/** Another key of the same name: a checkpoint it signs looks like the log's at a glance. */
export const impostor = () => generateSigningKey('receipts.test/audit');
export { generateSigningKey, signNote, splitNote, verifierKeyOf };
