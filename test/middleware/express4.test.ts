// The Express middleware on Express 4 (the `express4` alias): its routers keep no mount paths,
// and reading `app.router` there throws; every request must still give its one event.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createMemorySink } from '../../src/index.ts';
import { meterRequests } from '../../src/middleware/express.ts';
import { expressApps } from './express-apps.ts';

const express4 = createRequire(import.meta.url)('express4') as typeof import('express');
const apps = expressApps();

describe('express meterRequests on Express 4', () => {
  it('one event per request under mounted routers, the route a pattern, never a value from the URL', async () => {
    expect((createRequire(import.meta.url)('express4/package.json') as { version: string }).version).toMatch(/^4\./);
    const sink = createMemorySink();
    const errors: Error[] = [];
    const app = express4();
    app.use(
      meterRequests({
        client: apps.client(sink),
        namespace: 'acme/prod',
        caller: () => 'u',
        action: 'recall',
        onError: (e) => errors.push(e),
      }),
    );
    app.get('/top/:id', (_req, res) => void res.send('x'));
    const items = express4.Router();
    items.get('/items/:id', (_req, res) => void res.send('x'));
    app.use('/v2', items);
    app.use('/users/:uid', items);
    const url = `http://127.0.0.1:${await apps.listen(app)}`;
    for (const [i, p] of ['/top/1', '/v2/items/2', '/users/alice@example.com/items/3'].entries()) {
      await (await fetch(`${url}${p}`, { headers: { 'x-request-id': `e4-${i}` } })).arrayBuffer();
    }
    await sink.until(3);
    const route = Object.fromEntries(sink.events.map((e) => [e.request_id, e.metadata!.route]));
    // Express 4 keeps no mount path: the pattern within the router (README).
    expect(route).toEqual({ 'e4-0': '/top/:id', 'e4-1': '/items/:id', 'e4-2': '/items/:id' });
    expect(JSON.stringify(sink.events)).not.toMatch(/alice/);
    expect(errors).toEqual([]);
  });
});
