// auditPeriod over a period with corrections, against a real service on both engines: the
// server's totals count the head of each chain, and the audit recomputes them net from the pages
// of receipts (originals and corrections alike), each correction checked against the version it
// replaces. Before, every receipt was counted as listed: a void or an amendment was a mismatch.
import { describe, expect, it } from 'vitest';
import { generateSigningKey, verifierKeyOf } from '../../src/checkpoint/index.ts';
import { auditPeriod } from '../../src/index.ts';
import { logSigner } from '../../src/ledger/index.ts';
import { sealNext } from '../../src/seal/sealer.ts';
import { event, testServerOn } from '../helpers.ts';
import { forEachEngine } from '../support/engines.ts';

forEachEngine((fresh) => {
  describe('auditPeriod with corrections', () => {
    it('recomputes the totals net of voids and amendments, chains across pages, and finds them equal to the server’s', async () => {
      const logKey = generateSigningKey('receipts.test/audit-corrections');
      const s = await testServerOn(fresh, { logKey });
      try {
        await s.ledger.classification.append({ billable: [], non_billable: ['ping'], other: 'billable' }, { fromMs: 0, now: Date.now() });
        const t0 = Math.floor(Date.now() / 1000) * 1000 - 120_000;
        const posted = (
          await s.post({
            events: [
              event({ action: 'recall', units: 1, ts: t0 + 1 }),
              event({ action: 'embed', units: 10, ts: t0 + 2 }),
              event({ action: 'ping', units: 5, ts: t0 + 3 }),
              event({ action: 'recall', units: 2, ts: t0 + 4 }),
            ],
          })
        ).json().results as Array<{ id: number }>;
        const correct = async (target: number, kind: 'void' | 'amend', changes?: { units?: number; action?: string }) => {
          const [r] = await s.ledger.events.correct([
            {
              kind,
              target: { id: target },
              request_id: `fix-${target}-${kind}`,
              ...(changes && { changes }),
              owner: 'acme-inc',
              keyId: s.keyId,
              notBeforeMs: 0,
              receivedAtMs: Date.now(),
            },
          ]);
          if (r?.status !== 'created') throw new Error(JSON.stringify(r));
          return r.id;
        };
        // recall 1 → embed 7 (a billable action amended into another), embed 10 voided,
        // ping 5 → ping 50 → voided, recall 2 untouched.
        await correct(posted[0]!.id, 'amend', { units: 7, action: 'embed' });
        await correct(posted[1]!.id, 'void');
        const amended = await correct(posted[2]!.id, 'amend', { units: 50 });
        await correct(amended, 'void');
        const signer = logSigner(logKey);
        while ((await s.ledger.events.unsealed()).events > 0) await sealNext(s.ledger, { maxEvents: 3, log: signer });
        await s.app.listen({ port: 0, host: '127.0.0.1' });
        const url = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;

        const usage = (await s.get(`/v1/usage?namespace=acme/prod&from=${t0}&to=${t0 + 1000}&group_by=action`)).json();
        expect(usage.totals).toMatchObject({ events: 2, units: 9, billable_events: 2, billable_units: 9 });

        const report = await auditPeriod({
          url,
          key: s.key,
          namespace: 'acme/prod',
          from: t0,
          to: t0 + 1000,
          logKeys: [verifierKeyOf(logKey)],
          pageSize: 2,
        });
        expect(report.problems).toEqual([]);
        expect(report.ok).toBe(true);
        expect(report).toMatchObject({ events: 2, units: 9, billable_events: 2, billable_units: 9 });
      } finally {
        await s.close();
      }
    });
  });
});
