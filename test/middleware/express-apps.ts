// Express apps for the middleware tests: each listening on a random port with a usage client of
// its own; everything a test opened is closed after it.
import type express from 'express';
import type { Server } from 'node:http';
import { afterEach } from 'vitest';
import { createUsageClient, type MemorySink, type UsageClient } from '../../src/index.ts';

export function expressApps() {
  const servers: Server[] = [];
  const clients: UsageClient[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    for (const client of clients.splice(0)) await client.close();
  });
  return {
    /** A client into `sink` that sends within milliseconds. */
    client(sink: MemorySink): UsageClient {
      const client = createUsageClient({ sink, flushIntervalMs: 5 });
      clients.push(client);
      return client;
    },
    /** Listens on 127.0.0.1 and gives the port. */
    async listen(app: express.Express): Promise<number> {
      const server = app.listen(0, '127.0.0.1');
      servers.push(server);
      await new Promise((r) => server.once('listening', r));
      return (server.address() as { port: number }).port;
    },
  };
}
