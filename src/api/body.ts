// Request bodies: JSON only, and only valid UTF-8. Fastify's default parser decodes bytes
// leniently, turning invalid UTF-8 into U+FFFD, so a client's text would change on the way in
// (and a byte-identical retry could then conflict with itself). We read the raw bytes, refuse
// invalid UTF-8 with 400 invalid_utf8, and hand valid text to Fastify's own JSON parser, which
// keeps its empty-body, bad-JSON and prototype-poisoning errors (and the body limit) as before.
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.ts';

export function installJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is a 415
  app.removeContentTypeParser('application/json');
  // CloudEvents in structured and batch mode are JSON too (POST /v1/events maps them).
  app.addContentTypeParser(
    ['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json'],
    { parseAs: 'buffer' },
    (request, body, done) => {
      const bytes = body as Buffer;
      if (!isUtf8(bytes)) {
        done(new ApiError('invalid_utf8'), undefined);
        return;
      }
      parseJson(request, bytes.toString('utf8'), done);
    },
  );
}
