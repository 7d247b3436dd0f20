// The web page: /, /verify and /usage serve the page, /static/* its files. Everything is served
// from here (no external request), and the Content-Security-Policy holds the page to that.
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export async function webRoutes(app: FastifyInstance, opts: { dir: string }): Promise<void> {
  const page = readFileSync(join(opts.dir, 'index.html'), 'utf8');
  await app.register(fastifyStatic, { root: opts.dir, prefix: '/static/', index: false, wildcard: true });
  for (const path of ['/', '/verify', '/usage']) {
    app.get(
      path,
      {
        schema: {
          tags: ['web'],
          summary: 'The web page (verify receipts, read usage)',
          response: { 200: { content: { 'text/html': { schema: z.string() } } } },
        },
      },
      async (_request, reply) => reply.header('content-security-policy', CSP).type('text/html; charset=utf-8').send(page),
    );
  }
}
