// The pieces the middleware builds every event from, checked against what they replace: the
// cheap request id, the monotonic wall clock and the socket byte count.
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { newRequestId, usableRequestId } from '../../src/middleware/common.ts';
import { socketBytes, wallClock } from '../../src/middleware/node-http.ts';

describe('middleware building blocks', () => {
  it('generated request ids stay unique and usable across blocks of the sequence', () => {
    const ids = Array.from({ length: 3 * 4096 + 17 }, () => newRequestId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of [ids[0]!, ids[4095]!, ids[4096]!, ids.at(-1)!]) {
      expect(usableRequestId(id)).toBe(true);
      expect(id).toMatch(/^[0-9a-f-]{36}-[0-9a-z]+$/);
    }
    // One process prefix for all of them.
    expect(new Set(ids.map((id) => id.slice(0, 36))).size).toBe(1);
  });

  it('wallClock(performance.now()) is Date.now() to the millisecond', () => {
    for (let i = 0; i < 5; i++) {
      const before = Date.now();
      const t = wallClock(performance.now());
      const after = Date.now();
      expect(t).toBeGreaterThanOrEqual(before - 1);
      expect(t).toBeLessThanOrEqual(after + 1);
    }
  });

  it('socketBytes equals the socket’s bytesWritten, also while writes are buffered', async () => {
    const seen: Array<[number, number]> = [];
    const server = createServer((req, res) => {
      const socket = req.socket;
      seen.push([socketBytes(socket), socket.bytesWritten]);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(Buffer.alloc(4 << 20, 'a')); // more than the socket takes at once: some stays buffered
      seen.push([socketBytes(socket), socket.bytesWritten]);
      res.end('done', () => seen.push([socketBytes(socket), socket.bytesWritten]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      await new Promise<void>((resolve, reject) => {
        httpRequest({ port, host: '127.0.0.1', path: '/' }, (res) => res.resume().on('end', resolve))
          .on('error', reject)
          .end();
      });
    } finally {
      server.close();
    }
    expect(seen).toHaveLength(3);
    for (const [ours, node] of seen) expect(ours).toBe(node);
    expect(seen[2]![0]).toBeGreaterThan(4 << 20);
  });
});
