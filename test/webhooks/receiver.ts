// A real local HTTP receiver for webhook tests: records every request (headers and raw body) and
// answers as the test says (a status, or never).
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Crossing } from '../../src/webhooks/payload.ts';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** answer(n, request): the status for the n-th request (1-based), or 'hang' to never answer. */
export async function startReceiver(answer: (n: number, r: Received) => number | 'hang' = () => 200) {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      const a = answer(received.length, r);
      if (a === 'hang') hanging.push(res);
      else res.writeHead(a).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let n = 0;
/** A crossing as the limits detector reports one (the 80 % threshold of a 1,000-unit monthly limit). */
export function crossing(overrides: Partial<Crossing> = {}): Crossing {
  return {
    owner: 'acme-inc',
    namespace: 'acme/prod',
    limit: { id: `monthly-${++n}`, version: 1, meter: null, actions: ['chat'], measure: 'units', hard: 1000 },
    period: { kind: 'month', tz: 'UTC', from_ms: Date.parse('2026-03-01T00:00:00Z'), to_ms: Date.parse('2026-04-01T00:00:00Z') },
    threshold: { name: 'soft:80', kind: 'soft', at: 800, percent: 80 },
    used: 812,
    as_of: 42,
    measured_at_ms: Date.parse('2026-03-12T12:00:00Z'),
    ...overrides,
  };
}
