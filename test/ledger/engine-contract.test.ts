// The Ledger interface behaves the same on both engines where review found them apart: a throwing
// commit hook, what sealNext checks of its request and of the tree it is handed, what the usage
// store checks, and the anchor cache that now lives once above the engines.
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, validateEvent, type NormalizedEvent } from '../../src/event/validate.ts';
import type { EventToWrite, GroupBy, Ledger, SealRequest } from '../../src/ledger/index.ts';
import { buildTree, rootOf } from '../../src/merkle/tree.ts';
import { forEachEngine } from '../support/engines.ts';

const NOW = Date.now();
let counter = 0;

function ev(fields: Record<string, unknown> = {}): NormalizedEvent {
  const input = { request_id: `c-${++counter}`, namespace: 'acme/prod', action: 'recall', caller: 'user-1', units: 1, ...fields };
  const v = validateEvent(input, { now: NOW, maxAgeMs: DEFAULT_MAX_AGE_MS, maxFutureMs: DEFAULT_MAX_FUTURE_MS });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.event;
}
const item = (e: NormalizedEvent): EventToWrite => ({ event: e, owner: 'acme-inc', keyId: 'abcdefabcdef' });

const build = ((leaves) => {
  const tree = buildTree(leaves);
  return { root: rootOf(tree), levels: tree.levels };
}) satisfies SealRequest['build'];
const request = (fields: Partial<SealRequest> = {}): SealRequest => ({ maxEvents: 1000, now: NOW, build, ...fields });

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

forEachEngine((fresh) => {
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  const open = async () => {
    ({ ledger, cleanup } = await fresh());
    // PostgreSQL seals only as the elected leader; SQLite's one process always leads.
    await ledger.leadership.start(() => {});
    await until(() => ledger.leadership.role() === 'leader');
    return ledger;
  };
  afterEach(async () => {
    await ledger.close();
    await cleanup();
  });

  describe('group commit', () => {
    it('a commit hook that throws still answers the batch, and the next batch commits too', async () => {
      await open();
      const seen: number[] = [];
      ledger.events.onCommit = (n) => {
        seen.push(n);
        throw new Error('metrics backend down');
      };
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on('warning', onWarning);
      try {
        const [a, b] = await Promise.all([ledger.events.write([item(ev())]), ledger.events.write([item(ev()), item(ev())])]);
        expect(a.map((r) => r.status)).toEqual(['created']);
        expect(b.map((r) => r.status)).toEqual(['created', 'created']);
        const [c] = await ledger.events.write([item(ev())]);
        expect(c!.status).toBe('created');
        expect(await ledger.events.get((c as { id: number }).id)).toMatchObject({ request_id: `c-${counter}` });
        expect(seen.reduce((x, y) => x + y, 0)).toBe(4);
        // Not silent: the failure is reported once (rate-limited), with what it threw.
        await new Promise((r) => setImmediate(r));
        expect(warnings.filter((w) => /onCommit hook threw: metrics backend down/.test(w))).toHaveLength(1);
      } finally {
        process.off('warning', onWarning);
      }
    });
  });

  describe('sealNext checks its request and the tree it is handed', () => {
    it.each([0, -1, 1.5, Number.NaN])('refuses maxEvents %s, naming the field and the rule, and seals nothing', async (maxEvents) => {
      await open();
      await ledger.events.write([item(ev()), item(ev())]);
      await expect(ledger.epochs.sealNext(request({ maxEvents }))).rejects.toThrow(/maxEvents must be a positive integer/);
      expect(await ledger.epochs.latest()).toBeUndefined();
      expect((await ledger.epochs.sealNext(request()))!.size).toBe(2);
    });

    it('refuses a tree whose leaf level is not the leaves it was given, and stores nothing', async () => {
      await open();
      await ledger.events.write([item(ev()), item(ev()), item(ev())]);
      const short: SealRequest['build'] = (leaves) => {
        const t = build(leaves);
        return { root: t.root, levels: [leaves.subarray(32), ...t.levels.slice(1)] };
      };
      await expect(ledger.epochs.sealNext(request({ build: short }))).rejects.toThrow(/leaf level/);
      const badRoot: SealRequest['build'] = (leaves) => ({ ...build(leaves), root: new Uint8Array(31) });
      await expect(ledger.epochs.sealNext(request({ build: badRoot }))).rejects.toThrow(/root/);
      expect(await ledger.epochs.latest()).toBeUndefined();
      const epoch = (await ledger.epochs.sealNext(request()))!;
      expect(epoch).toMatchObject({ epoch: 0, first_seq: 1, last_seq: 3, size: 3 });
    });

    it('a node that is not stored is an error naming it, not an empty value', async () => {
      await open();
      await ledger.events.write([item(ev()), item(ev())]);
      await ledger.epochs.sealNext(request());
      expect((await ledger.epochs.node(0, 0, 1)).length).toBe(32);
      await expect(ledger.epochs.node(0, 0, 2)).rejects.toThrow(/no stored node at epoch 0, level 0, index 2/);
      await expect(ledger.epochs.node(7, 0, 0)).rejects.toThrow(/no stored node at epoch 7/);
    });
  });

  describe('usage checks its query', () => {
    it('refuses an unknown group_by and a bad limit, naming the rule', async () => {
      await open();
      const q = { namespace: 'acme/prod', from: 0, to: NOW + 1 };
      for (const groupBy of ['week', 'constructor', 'toString']) {
        await expect(ledger.usage.query({ ...q, groupBy: groupBy as GroupBy })).rejects.toThrow(
          /group_by must be one of action, caller, hour, day/,
        );
      }
      await expect(ledger.usage.query({ ...q, groupBy: 'action', limit: 0 })).rejects.toThrow(/limit must be a positive integer/);
      await expect(ledger.usage.query({ ...q, groupBy: 'hour', after: 'yesterday' })).rejects.toThrow(/after must be a hour key/);
    });
  });

  describe('anchors', () => {
    it('an anchor once recorded is read back the same; one not recorded is null', async () => {
      await open();
      await ledger.events.write([item(ev())]);
      await ledger.epochs.sealNext(request());
      expect(await ledger.anchors.get(0)).toBeNull();
      const anchor = { network: 'localnet', package_id: '0x1', registry_id: '0x2', tx_digest: 'D1', checkpoint: '9', anchored_at_ms: NOW };
      await ledger.anchors.record([0], anchor);
      expect(await ledger.anchors.get(0)).toEqual(anchor);
      expect(await ledger.anchors.get(0)).toEqual(anchor);
      await ledger.anchors.record([0], { ...anchor, tx_digest: 'D2' });
      expect(await ledger.anchors.get(0)).toEqual(anchor);
      expect(await ledger.anchors.anchoredThrough()).toBe(0);
    });
  });
});
