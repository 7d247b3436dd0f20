// auditPeriod against a real service behind a proxy that lies: the honest period passes with exact
// figures (both engines); each lie is caught with its own code, and nothing else is reported.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ed25519Signer, generateSigningKey, signNote, splitNote, verifierKeyOf } from '../../src/checkpoint/index.ts';
import { auditPeriod, type AuditOptions, type AuditReport } from '../../src/index.ts';
import { forEachEngine } from '../support/engines.ts';
import { impostor, isUsage, lyingSetup, onJson, type LyingSetup } from './audit-lies.ts';

const codes = (r: AuditReport) => [...new Set(r.problems.map((p) => p.code))].sort();

function options(t: LyingSetup, extra: Partial<AuditOptions> = {}): AuditOptions {
  return {
    url: t.url,
    key: t.s.key,
    namespace: 'acme/prod',
    ...t.period,
    logKeys: [t.vkey],
    witnesses: [t.witnessVkey],
    minWitnesses: 1,
    pageSize: 2,
    ...extra,
  };
}

forEachEngine((fresh) => {
  describe('auditPeriod, honest server', () => {
    it('backs every number of the period: receipts, epochs, the signed and cosigned log, totals per action', async () => {
      const t = await lyingSetup(fresh);
      try {
        const progress: Array<{ pages: number; events: number }> = [];
        const report = await auditPeriod(options(t, { onProgress: (p) => progress.push(p) }));
        expect(report.problems).toEqual([]);
        expect(report.ok).toBe(true);
        expect(report.trust).toBe('log');
        expect(report.warnings).toEqual([]);
        expect(report).toMatchObject({
          events: 7,
          units: 46,
          billable_events: 5,
          billable_units: 36,
          pages: 4,
          epochs: 3,
          checkpoints: 1,
          witnesses: 1,
          log_key: t.vkey,
        });
        expect(report.by_action).toEqual({
          embed: { events: 2, units: 30, billable_events: 2, billable_units: 30 },
          ping: { events: 2, units: 10, billable_events: 0, billable_units: 0 },
          recall: { events: 3, units: 6, billable_events: 3, billable_units: 6 },
        });
        expect(report.server_totals).toEqual(report.recomputed_totals);
        expect(report.server_by_action).toEqual(report.by_action);
        expect(progress).toEqual([
          { pages: 1, events: 2 },
          { pages: 2, events: 4 },
          { pages: 3, events: 6 },
          { pages: 4, events: 7 },
        ]);
        // The API key is sent, never reported.
        expect(JSON.stringify(report)).not.toContain(t.s.key);
      } finally {
        await t.close();
      }
    });
  });
});

describe('auditPeriod, a server that lies', () => {
  let t: LyingSetup;
  beforeEach(async () => {
    t = await lyingSetup();
  });
  afterEach(async () => {
    await t.close();
  });

  it('tampered_event: an event altered after it was hashed', async () => {
    t.lie.fn = onJson(isUsage, (page) => {
      for (const r of page.events) if (r.event.units === 20) r.event.caller = 'someone-else';
    });
    const report = await auditPeriod(options(t));
    expect(report.ok).toBe(false);
    expect(codes(report)).toEqual(['tampered_event']);
    expect(report.problems[0]!.message).toMatch(/leaf hash does not match the event fields/);
  });

  it('unsigned_root: a receipt under a root of its own making, self-consistent but not in the signed log', async () => {
    t.lie.fn = onJson(isUsage, (page) => {
      for (const r of page.events) if (r.event.units === 3) Object.assign(r, { leaf_index: 0, tree_size: 1, proof: [], root: r.leaf_hash });
    });
    const report = await auditPeriod(options(t));
    expect(codes(report)).toEqual(['unsigned_root']);
    expect(report.problems[0]!.epoch).toBe(2);
  });

  it('wrong_log_key: checkpoints signed by another key of the same name', async () => {
    const other = impostor();
    t.lie.fn = onJson(
      (p) => p.includes('/proof'),
      (b) => {
        b.checkpoint = signNote(splitNote(b.checkpoint).text, [ed25519Signer(other)]);
      },
    );
    const report = await auditPeriod(options(t));
    expect(codes(report)).toEqual(['wrong_log_key']);
    expect(report.problems).toHaveLength(3); // one per epoch
  });

  it('too_few_witnesses: one cosignature where two are required', async () => {
    const second = verifierKeyOf(generateSigningKey('witness.test/two'));
    const report = await auditPeriod(options(t, { witnesses: [t.witnessVkey, second], minWitnesses: 2 }));
    expect(codes(report)).toEqual(['too_few_witnesses']);
    expect(report.witnesses).toBe(1);
  });

  it('fork: two checkpoints of the same size, both signed by the log key, with different roots', async () => {
    t.lie.fn = (path, body) => {
      if (path !== '/checkpoint') return body;
      const { text } = splitNote(body);
      const [origin, size] = text.split('\n');
      const forged = `${origin}\n${size}\n${Buffer.alloc(32, 7).toString('base64')}\n`;
      return signNote(forged, [ed25519Signer(t.logKey)]);
    };
    const report = await auditPeriod(options(t));
    expect(codes(report)).toEqual(['fork']);
    expect(report.problems[0]!.message).toMatch(/two checkpoints of size 3/);
  });

  it('totals_mismatch: totals that are not the sums of the receipts', async () => {
    t.lie.fn = onJson(isUsage, (page) => {
      page.totals.units += 7;
      page.totals.billable_units += 7;
      for (const g of page.groups) if (g.key === 'recall') Object.assign(g, { units: g.units + 7, billable_units: g.billable_units + 7 });
    });
    const report = await auditPeriod(options(t));
    expect(codes(report)).toEqual(['totals_mismatch']);
    expect(report.server_totals).toMatchObject({ units: 53, billable_units: 43 });
    expect(report.recomputed_totals).toMatchObject({ units: 46, billable_units: 36 });
    expect(report.problems.map((p) => p.action ?? 'all')).toEqual(['all', 'recall']);
  });

  it('omitted_events: a page that leaves an event out', async () => {
    t.lie.fn = onJson(
      (p) => isUsage(p) && !p.includes('cursor='),
      (page) => {
        page.events.shift();
      },
    );
    const report = await auditPeriod(options(t));
    expect(codes(report)).toEqual(['omitted_events']);
    expect(report.events).toBe(6);
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/holds 1 receipts of the 2 asked for[\s\S]*counts 7 events/);
  });

  it('out_of_order and omitted_events: a cursor that skips an event between two full pages', async () => {
    t.lie.fn = onJson(
      (p) => isUsage(p) && !p.includes('cursor='),
      (page) => {
        // The cursor after event 2 (ts, id, snapshot) is moved on to after event 3: page 2 starts at 4.
        const [ts, id, max] = JSON.parse(Buffer.from(page.next_cursor, 'base64url').toString());
        page.next_cursor = Buffer.from(JSON.stringify([ts + 1, id + 1, max])).toString('base64url');
      },
    );
    const report = await auditPeriod(options(t));
    expect(codes(report)).toEqual(['omitted_events', 'out_of_order']);
    expect(report.problems.find((p) => p.code === 'out_of_order')!.message).toMatch(
      /page 1 ends at event 2 .* but its cursor continues after event 3/,
    );
    expect(report.events).toBe(6);
  });

  it('duplicate_event: the same event billed twice', async () => {
    t.lie.fn = onJson(
      (p) => isUsage(p) && p.includes('cursor='),
      (page) => {
        // The last page holds the 7th event alone: bill it a second time under a new id.
        if (page.events.length === 1) page.events.push({ ...page.events[0], id: page.events[0].id + 1 });
      },
    );
    const report = await auditPeriod(options(t));
    expect(codes(report)).toContain('duplicate_event');
    expect(report.problems.find((p) => p.code === 'duplicate_event')!.message).toMatch(/is billed twice in acme\/prod/);
  });

  it('chain_mismatch: with a chain reader, an anchored root that the registry does not hold', async () => {
    const anchor = { network: 'localnet', package_id: '0x1', registry_id: '0x2', tx_digest: null, checkpoint: null };
    t.lie.fn = onJson(isUsage, (page) => {
      for (const r of page.events) Object.assign(r, { status: 'anchored', anchor });
    });
    const roots = new Map<number, { root: string; size: number }>();
    for (const id of [1, 4, 7]) {
      const r = await t.s.receipt(id);
      roots.set(r.epoch!, { root: r.root!, size: r.tree_size! });
    }
    const asked: number[] = [];
    const honest = await auditPeriod(
      options(t, {
        readAnchor: async (a, epoch) => {
          expect(a).toEqual(anchor);
          asked.push(epoch);
          return roots.get(epoch) ?? null;
        },
      }),
    );
    expect(honest.problems).toEqual([]);
    expect(honest.chain).toEqual({ checked: 3, unanchored: 0 });
    expect(asked.sort()).toEqual([0, 1, 2]);
    const lying = await auditPeriod(options(t, { readAnchor: async (_a, epoch) => (epoch === 1 ? null : roots.get(epoch)!) }));
    expect(codes(lying)).toEqual(['chain_mismatch']);
    expect(lying.problems[0]!.message).toMatch(/epoch 1 is not anchored in registry 0x2 on localnet/);
  });

  it('trustServer with log keys still checks the log: a forged root is caught', async () => {
    t.lie.fn = onJson(isUsage, (page) => {
      for (const r of page.events) if (r.event.units === 3) Object.assign(r, { leaf_index: 0, tree_size: 1, proof: [], root: r.leaf_hash });
    });
    const report = await auditPeriod(options(t, { trustServer: true }));
    expect(report.trust).toBe('log');
    expect(codes(report)).toEqual(['unsigned_root']);
  });

  it("trustServer: passes on the server's own roots, and says loudly that nothing outside the server was checked", async () => {
    const report = await auditPeriod(options(t, { logKeys: [], witnesses: [], minWitnesses: 0, trustServer: true }));
    expect(report.ok).toBe(true);
    expect(report.trust).toBe('server');
    expect(report.warnings[0]).toMatch(/^TRUSTING THE SERVER: .*nothing outside the server was checked/);
    expect(report).toMatchObject({ events: 7, epochs: 3, checkpoints: 0, log_key: null });
  });

  it('refuses options it cannot audit with, naming the field and the rule', async () => {
    await expect(auditPeriod(options(t, { logKeys: [] }))).rejects.toThrow(/logKeys must hold at least one log verifier key/);
    await expect(auditPeriod(options(t, { logKeys: ['nope'] }))).rejects.toThrow(/logKeys\[0\] is not a verifier key/);
    await expect(auditPeriod(options(t, { minWitnesses: 2 }))).rejects.toThrow(/minWitnesses must be an integer from 0 to the 1/);
    await expect(auditPeriod(options(t, { from: 'yesterday' }))).rejects.toThrow(/from must be epoch milliseconds/);
  });

  it("server_error: a wrong API key stops the audit with the server's answer, not a pass", async () => {
    const report = await auditPeriod(options(t, { key: 'sr_nope_nope' }));
    expect(report.ok).toBe(false);
    expect(codes(report)).toEqual(['server_error']);
    expect(report.problems[0]!.message).toMatch(/answered 401/);
  });
});
