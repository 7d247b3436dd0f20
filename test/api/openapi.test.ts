// The API document: valid OpenAPI 3.1 (checked by a maintained validator), listing every route
// the server registers with its parameters, bodies, responses, errors and the auth scheme; and
// responses as the server sends them match what the document declares.
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/api/error-codes.ts';
import { sqliteLedger, testServer } from '../helpers.ts';

type Doc = { openapi: string; paths: Record<string, Record<string, any>>; components: any };

describe('GET /openapi.json', () => {
  let s: Awaited<ReturnType<typeof testServer>>;
  let doc: Doc;
  beforeAll(async () => {
    s = await testServer();
    const res = await s.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(() => s.close());

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(structuredClone(doc) as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('lists every route the server registers (the reference page and static files aside)', () => {
    const routes = s.routes.filter((r) => r.method !== 'HEAD' && !r.hidden && !r.url.startsWith('/docs') && !r.url.startsWith('/static/'));
    expect(routes.length).toBeGreaterThanOrEqual(8);
    for (const r of routes) {
      const path = r.url.replace(/:([a-z_]+)/g, '{$1}');
      expect(doc.paths[path]?.[r.method.toLowerCase()], `${r.method} ${r.url}`).toBeDefined();
    }
  });

  it('declares the key, the parameters, the bodies, and each error response with its codes', () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const post = doc.paths['/v1/events']!.post;
    expect(post.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(post.requestBody.content)).toEqual(
      expect.arrayContaining(['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json']),
    );
    for (const status of ['200', '400', '401', '413', '415', '503']) expect(post.responses[status], status).toBeDefined();
    expect(post.responses['413'].description).toMatch(/too_many_events/);
    const receipt = doc.paths['/v1/events/{id}/receipt']!.get;
    expect(receipt.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ in: 'path', name: 'id', required: true })]));
    const epochs = doc.paths['/v1/epochs']!.get;
    expect(epochs.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['after', 'before', 'limit', 'order']);
    const usage = doc.paths['/v1/usage']!.get;
    expect(usage.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['namespace', 'from', 'to', 'group_by', 'receipts', 'limit', 'cursor', 'order']),
    );
    expect(doc.paths['/healthz']!.get.security).toBeUndefined();
    // The error codes are in the document, each with its status.
    const text = JSON.stringify(doc);
    for (const code of Object.keys(ERROR_CODES)) expect(text, code).toContain(`\`${code}\``);
  });

  it('answers with what it declares: responses of each route validate against the document', async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema(doc as object, 'doc');
    const check = async (method: 'GET' | 'POST', url: string, path: string, body?: unknown) => {
      const res = await s.app.inject({
        method,
        url,
        headers: { ...s.auth, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { payload: JSON.stringify(body) }),
      });
      const response = doc.paths[path]![method.toLowerCase()].responses[String(res.statusCode)];
      expect(response, `${method} ${url} answered ${res.statusCode}, not declared`).toBeDefined();
      const ptr = `doc#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/${method.toLowerCase()}/responses/${res.statusCode}/content/application~1json/schema`;
      const validate = ajv.getSchema(ptr)!;
      expect(validate(res.json()), `${method} ${url}: ${JSON.stringify(validate.errors)}`).toBe(true);
      return res;
    };
    const e = { request_id: 'r1', namespace: 'acme/prod', action: 'recall', caller: 'c', units: 2 };
    await check('POST', '/v1/events', '/v1/events', { events: [e, { ...e, request_id: 'r2', units: -1 }] });
    await check('POST', '/v1/events', '/v1/events', e); // duplicate
    await check('POST', '/v1/events', '/v1/events', [1]); // 400
    await check('GET', '/v1/events/1/receipt', '/v1/events/{id}/receipt');
    await check('GET', '/v1/events/x/receipt', '/v1/events/{id}/receipt'); // 404
    await check('GET', '/v1/usage?namespace=acme/prod', '/v1/usage');
    await check('GET', '/v1/usage?namespace=acme/prod&receipts=true', '/v1/usage');
    await check('GET', '/v1/usage?namespace=acme/prod,acme/dev', '/v1/usage');
    await check('GET', '/v1/usage?namespace=globex', '/v1/usage'); // 403
    await check('GET', '/v1/epochs?order=desc', '/v1/epochs');
    await check('GET', '/v1/epochs?limit=0', '/v1/epochs'); // 400
    await check('GET', '/v1/epochs/0', '/v1/epochs/{epoch}'); // 404
    await check('GET', '/v1/epochs/0/chain', '/v1/epochs/{epoch}/chain'); // 404 anchoring_off
    await check('GET', '/healthz', '/healthz');
  });
});

describe("the tests' servers check every response against its declared schema", () => {
  // A ledger whose epoch record is malformed: the route answers something its schema refuses.
  const broken = async () => {
    const made = await sqliteLedger();
    made.ledger.epochs.get = async () => ({ epoch: 'zero' }) as unknown as Awaited<ReturnType<typeof made.ledger.epochs.get>>;
    return made;
  };

  it('with checkingSerializer (what testServer injects) a response that breaks its schema is a 500', async () => {
    const s = await testServer({}, broken);
    try {
      expect((await s.get('/v1/epochs/0')).statusCode).toBe(500);
    } finally {
      await s.close();
    }
  });

  it('without it (as `receipts serve` runs) the same answer goes out as JSON: the check is the test seam, not the service', async () => {
    const s = await testServer({ serializerCompiler: () => (data) => JSON.stringify(data) }, broken);
    try {
      const res = await s.get('/v1/epochs/0');
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ epoch: 'zero' });
    } finally {
      await s.close();
    }
  });
});
