// SQLite hands the seal a run's leaf hashes as one blob a slice, concatenated in the database. In
// a UTF-8 file the blobs are joined as they are; in any other text encoding that would change
// their bytes (the text is read back as UTF-8), so the seal joins them as hex there. Either way
// the epoch's root is the root of the tree over the stored leaf hashes, in ledger order.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent } from '../../src/event/validate.ts';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { buildTree, rootOf } from '../../src/merkle/tree.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { tempDir } from '../helpers.ts';

describe('sealing reads the leaf hashes byte for byte, whatever the ledger file’s text encoding', () => {
  for (const encoding of ['UTF-8', 'UTF-16le', 'UTF-16be']) {
    it(`${encoding}: the root is the tree's over the stored leaf hashes`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const file = join(dir, 'ledger.db');
        // A file's encoding is fixed when its first table is written.
        const raw = new Database(file);
        raw.pragma(`encoding = '${encoding}'`);
        raw.exec('CREATE TABLE made (x); DROP TABLE made;');
        raw.close();
        const ledger = new SqliteLedger(file, { synchronous: 'normal' });
        try {
          expect(ledger.db.pragma('encoding', { simple: true })).toBe(encoding);
          const now = Date.now();
          const items = Array.from({ length: 2_000 }, (_, i) => {
            const v = validateEvent(
              { request_id: `r-${i}`, namespace: 'acme/prod', action: 'recall', caller: `user-${i % 7}`, units: 1 + (i % 3) },
              { now, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS },
            );
            if (!v.ok) throw new Error(JSON.stringify(v.errors));
            return { event: v.event, owner: 'acme-inc', keyId: 'abcdefabcdef' };
          });
          await ledger.events.write(items);
          const epoch = (await sealNext(ledger, { maxEvents: 10_000 }))!;
          const stored = ledger.db.prepare('SELECT leaf_hash FROM events ORDER BY seq').pluck().all() as Buffer[];
          // 2,000 SHA-256 outputs hold every byte value, zero bytes and invalid UTF-8 and UTF-16 among them.
          expect(new Set(Buffer.concat(stored)).size).toBe(256);
          expect(epoch.size).toBe(2_000);
          expect(epoch.root).toBe(Buffer.from(rootOf(buildTree(new Uint8Array(Buffer.concat(stored))))).toString('hex'));
        } finally {
          await ledger.close();
        }
      } finally {
        cleanup();
      }
    });
  }
});
