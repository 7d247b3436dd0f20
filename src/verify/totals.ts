// netTotals: net usage per action recomputed from a set of receipts, corrections included
// (docs/design.md, "Leaf (version 2)"): an event's versions form a chain through `corrects`, and
// only the chain's head counts, at the original's time; a void head counts nothing. Every receipt
// is verified first (leaf rebuilt, path walked to its own root), and a set that cannot say what a
// correction nets out (its target missing, two heads) is refused rather than totalled.
// Pure and browser-safe.
import { bytesToHex } from '../encoding/hex.ts';
import { type CorrectionFields, leafHash, leafHashV2 } from '../event/leaf.ts';
import type { ReceiptEvent } from '../receipt/format.ts';
import { VerificationError, type VerifyCode } from './error.ts';
import { correctionMismatch, readReceiptEvent, verifyReceipt } from './index.ts';

export interface NetTotalsOptions {
  /**
   * Count pending receipts (epoch not sealed: no proof yet) instead of refusing the set. Their
   * leaves are still rebuilt from their fields and must match their leaf hash; the result says
   * how many there were. Default false: a total is only as good as its proofs.
   */
  allowPending?: boolean;
}

/** Units as the API writes them: a number up to 2^53 − 1, a decimal string beyond. */
export type Units = number | string;

export interface NetTotalGroup {
  namespace: string;
  /** The head's action (an amendment may change it). */
  action: string;
  /** Chains whose head is not a void. */
  events: number;
  units: Units;
}

export interface NetTotals {
  /** One per namespace and action with a counting head, sorted by namespace then action. */
  groups: NetTotalGroup[];
  totals: { events: number; units: Units };
  /** Distinct receipts read (duplicates left out). */
  receipts: number;
  /** The same receipt (same leaf at the same place) given more than once, counted once. */
  duplicates: number;
  /** Originals (leaf v1): one chain each. */
  chains: number;
  /** Chains with at least one correction, and those of them whose head is a void. */
  corrected: number;
  voided: number;
  /** Receipts counted without a proof (only with allowPending). */
  pending: number;
}

interface Node {
  index: number;
  event: ReceiptEvent | CorrectionFields;
  correction: CorrectionFields | undefined;
  hash: string;
  place: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

const label = (n: { index: number; event: ReceiptEvent }) =>
  `receipt ${n.index} (${n.event.namespace} / ${JSON.stringify(n.event.request_id).slice(0, 140)})`;

const fail = (code: VerifyCode, message: string) => new VerificationError(code, message);

/**
 * Net totals of a set of receipts (receipt v1 and v2, e.g. every page of GET
 * /v1/usage?receipts=true for a period). Throws a VerificationError: the failing receipt's own code
 * when one does not verify; `correction_target_missing` when a correction's target is not in the
 * set; `two_heads` when two corrections replace the same version; `correction_mismatch` when a
 * correction changes what never changes; `duplicate_event` when one leaf is at two places.
 */
export function netTotals(receipts: Iterable<unknown>, options: NetTotalsOptions = {}): NetTotals {
  const byHash = new Map<string, Node>();
  let index = -1;
  let duplicates = 0;
  let pending = 0;
  for (const receipt of receipts) {
    index++;
    const result = verifyReceipt(receipt);
    let place: string;
    if (!result.ok) {
      if (result.code !== 'not_sealed' || !options.allowPending) {
        const where = readReceiptEvent(receipt);
        const name = where.ok ? label({ index, event: where.event }) : `receipt ${index}`;
        throw fail(
          result.code,
          `${name}: ${result.reason}${result.code === 'not_sealed' ? ' (pass allowPending to count it unproven)' : ''}`,
        );
      }
      place = `pending ${isObject(receipt) ? String(receipt.id) : ''}`;
    } else place = `epoch ${result.epoch} leaf ${result.leaf_index}`;
    const read = readReceiptEvent(receipt);
    if (!read.ok) throw fail('malformed', `receipt ${index}: ${read.reason}`);
    const correction = read.version === 2 ? (read.event as CorrectionFields) : undefined;
    const hash = bytesToHex(correction ? leafHashV2(correction) : leafHash(read.event));
    // verifyReceipt has compared it for a sealed receipt; a pending one is compared here.
    if (hash !== read.leaf_hash)
      throw fail('leaf_mismatch', `${label({ index, event: read.event })}: the leaf hash does not match the event fields`);
    const seen = byHash.get(hash);
    if (seen) {
      if (seen.place === place) {
        duplicates++;
        continue;
      }
      throw fail(
        'duplicate_event',
        `${label({ index, event: read.event })} has the same leaf as ${label(seen)} at another place (${place}, ${seen.place}): one event recorded twice`,
      );
    }
    if (!result.ok) pending++;
    byHash.set(hash, { index, event: read.event, correction, hash, place });
  }

  // Each version has at most one successor; a correction's target must be in the set.
  const next = new Map<string, Node>();
  for (const node of byHash.values()) {
    const c = node.correction;
    if (!c) continue;
    const target = byHash.get(c.corrects);
    if (!target)
      throw fail(
        'correction_target_missing',
        `${label(node)} is ${c.kind === 'amend' ? 'an amend' : 'a void'} of the leaf ${c.corrects}, which no receipt of the set has: add the corrected event's receipt (same period, same namespace)`,
      );
    const mismatch = correctionMismatch(c, target.event, target.hash);
    if (mismatch !== undefined) throw fail('correction_mismatch', `${label(node)}: ${mismatch}`);
    const other = next.get(target.hash);
    if (other)
      throw fail(
        'two_heads',
        `${label(node)} and ${label(other)} both replace ${label(target)}: its chain has two heads, so its net value is undefined`,
      );
    next.set(target.hash, node);
  }

  const groups = new Map<string, { namespace: string; action: string; events: number; units: bigint }>();
  let chains = 0;
  let corrected = 0;
  let voided = 0;
  let reached = 0;
  for (const node of byHash.values()) {
    if (node.correction) continue;
    chains++;
    let head = node;
    reached++;
    for (let n = next.get(head.hash); n; n = next.get(head.hash)) {
      head = n;
      reached++;
    }
    if (head !== node) corrected++;
    if (head.correction?.kind === 'void') {
      voided++;
      continue;
    }
    // The head's action and units; namespace and time are the original's (a correction keeps them).
    const key = JSON.stringify([node.event.namespace, head.event.action]);
    const g = groups.get(key) ?? { namespace: node.event.namespace, action: head.event.action, events: 0, units: 0n };
    g.events++;
    g.units += BigInt(head.event.units);
    groups.set(key, g);
  }
  // Every correction hangs off an original through distinct hashes, so this holds unless SHA-256
  // has a cycle; checked so that nothing in the set is left out unsaid.
  if (reached !== byHash.size) throw fail('correction_target_missing', 'some corrections lead back to no original');

  const sorted = [...groups.values()].sort((a, b) =>
    a.namespace === b.namespace ? (a.action < b.action ? -1 : 1) : a.namespace < b.namespace ? -1 : 1,
  );
  let events = 0;
  let units = 0n;
  for (const g of sorted) {
    events += g.events;
    units += g.units;
  }
  return {
    groups: sorted.map((g) => ({ namespace: g.namespace, action: g.action, events: g.events, units: asUnits(g.units) })),
    totals: { events, units: asUnits(units) },
    receipts: byHash.size,
    duplicates,
    chains,
    corrected,
    voided,
    pending,
  };
}

const asUnits = (n: bigint): Units => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());

/**
 * The receipts of a page set as people save it: a JSON array of receipts, one page of GET
 * /v1/usage?receipts=true (its `events`), or an array of such pages. Throws a VerificationError
 * (`malformed`) for anything else.
 */
export function receiptsOfPageSet(json: unknown): unknown[] {
  const isPage = (v: unknown): v is { events: unknown[] } => isObject(v) && Array.isArray(v.events) && !('version' in v);
  if (isPage(json)) return json.events;
  if (Array.isArray(json)) {
    if (json.length > 0 && json.every(isPage)) return json.flatMap((p) => p.events);
    if (!json.some(isPage)) return json;
  }
  throw fail(
    'malformed',
    'a page set is a JSON array of receipts, a page of GET /v1/usage?receipts=true (an object with "events"), or an array of such pages',
  );
}
