// API key rules both engines share. A key is `sr_<id>_<secret>`; the id is public (lists, logs),
// the secret is 256 random bits. Only SHA-256 of the whole key is stored: a stolen database
// yields no usable key. A plain hash suffices because the secret is random, not a password.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKey } from './types.ts';

/** A namespace pattern: the namespace alphabet, with `*` matching any run of characters (`/` too). */
export const NAMESPACE_PATTERN_RULE = /^[a-z0-9._/*-]{1,128}$/;

/**
 * What a key may do, beside the namespaces it may touch: `record` events, `read` usage, receipts,
 * events and epochs, `correct` (void and amend) recorded events, `admin` (meters, limits and
 * webhooks of its namespaces). In this order wherever rights are listed or stored.
 */
export const RIGHTS = ['record', 'read', 'correct', 'admin'] as const;
export type Right = (typeof RIGHTS)[number];
/** What a key gets without --rights, and what every key made before rights existed keeps (migration 007). */
export const DEFAULT_RIGHTS: readonly Right[] = ['record', 'read'];

const isRight = (name: string): name is Right => (RIGHTS as readonly string[]).includes(name);

/**
 * The rights of a request (`record,read`, or a list), deduplicated and in RIGHTS order; throws a
 * message naming `subject` (the flag or field), the unknown name and the allowed values.
 */
export function parseRights(given: string | readonly string[], subject = '--rights'): Right[] {
  const names = (typeof given === 'string' ? given.split(',') : given).map((n) => String(n).trim()).filter((n) => n !== '');
  const unknown = names.filter((n) => !isRight(n));
  if (unknown.length > 0) {
    const shown = unknown
      .slice(0, 5)
      .map((n) => JSON.stringify(n.slice(0, 40)))
      .join(', ');
    throw new Error(
      `${subject}: unknown right${unknown.length > 1 ? 's' : ''} ${shown}${unknown.length > 5 ? ', …' : ''}; a right is one of ${RIGHTS.join(', ')} (comma-separated)`,
    );
  }
  if (names.length === 0) throw new Error(`${subject} must name at least one right of ${RIGHTS.join(', ')}`);
  return RIGHTS.filter((r) => names.includes(r));
}

/** The stored form of a set of rights: a JSON array in RIGHTS order (as namespaces are a JSON array). */
export function rightsJson(rights: readonly Right[]): string {
  return JSON.stringify(RIGHTS.filter((r) => rights.includes(r)));
}

/** The whole presented key; group 1 is the public id. Anything else is not a key of ours. */
export const KEY_FORMAT = /^sr_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export function compileNamespacePatterns(patterns: string[]): (namespace: string) => boolean {
  const compiled = patterns.map((p) => p.split('*'));
  return (namespace) => compiled.some((parts) => wildcardMatch(parts, namespace));
}

/**
 * Whether `text` matches a pattern split at its stars. Greedy-leftmost matching of each literal
 * part: linear in the text (no backtracking), unlike a `.*` regex, which a pattern with several
 * stars would make polynomial in the client's namespace.
 */
function wildcardMatch(parts: string[], text: string): boolean {
  const first = parts[0]!;
  if (parts.length === 1) return text === first;
  const last = parts.at(-1)!;
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]!;
    const found = text.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

export function hashKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** The public id of a presented key, or null when it is not shaped like one of ours. */
export function keyIdOf(presented: string): string | null {
  return KEY_FORMAT.exec(presented)?.[1] ?? null;
}

/** Whether the presented key hashes to the stored hash (constant time). */
export function sameKeyHash(stored: Uint8Array, presented: string): boolean {
  const h = hashKey(presented);
  return stored.length === h.length && timingSafeEqual(stored, h);
}

/** Checks what `keys create` was given; throws a message naming the rule. */
export function checkKeyRequest(owner: string, namespaces: string[], rights: readonly string[] = DEFAULT_RIGHTS): void {
  if (owner.length < 1 || owner.length > 256) throw new Error('owner must be 1 to 256 characters');
  if (namespaces.length === 0) throw new Error('at least one --namespace pattern is required');
  for (const p of namespaces) {
    if (!NAMESPACE_PATTERN_RULE.test(p)) {
      throw new Error(`namespace pattern "${p}" must be 1 to 128 characters of a-z 0-9 . _ / - and *`);
    }
  }
  parseRights(rights, 'rights');
}

/** A new key for a checked request: its public id, the key (shown once) and the hash to store. */
export function newKey(
  owner: string,
  namespaces: string[],
  rights: readonly string[] = DEFAULT_RIGHTS,
): { id: string; key: string; hash: Buffer } {
  checkKeyRequest(owner, namespaces, rights);
  const id = randomBytes(8).toString('hex').slice(0, 12);
  const key = `sr_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, key, hash: hashKey(key) };
}

/** Parsed and compiled pattern sets, by their stored JSON text: few distinct sets, each done once. */
export class PatternCache {
  private readonly sets = new Map<string, { namespaces: string[]; allows: (namespace: string) => boolean }>();

  get(json: string): { namespaces: string[]; allows: (namespace: string) => boolean } {
    let set = this.sets.get(json);
    if (!set) {
      const namespaces = JSON.parse(json) as string[];
      // Shared between principals: read-only.
      set = { namespaces: Object.freeze(namespaces) as string[], allows: compileNamespacePatterns(namespaces) };
      if (this.sets.size >= 10_000) this.sets.clear();
      this.sets.set(json, set);
    }
    return set;
  }
}

/** What a principal may do. A set of its own per principal: a route that mutated it changes no other request. */
export function rightsOf(list: readonly Right[]): { rights: ReadonlySet<Right>; may(right: Right): boolean } {
  const rights = new Set(list);
  return { rights, may: (right) => rights.has(right) };
}

/**
 * Parsed rights by their stored JSON text (few distinct sets, each parsed once). A name this
 * build does not know (a hand-edited row, a later build's right) grants nothing, and is kept in
 * `unknown` so that `keys list` shows it rather than dropping it.
 */
export class RightsCache {
  private readonly sets = new Map<string, { list: readonly Right[]; unknown: readonly string[] }>();

  get(json: string): { list: readonly Right[]; unknown: readonly string[] } {
    let set = this.sets.get(json);
    if (!set) {
      let names: unknown;
      try {
        names = JSON.parse(json);
      } catch {
        names = [json];
      }
      const all = Array.isArray(names) ? names.map(String) : [String(names)];
      set = { list: Object.freeze(RIGHTS.filter((r) => all.includes(r))), unknown: Object.freeze(all.filter((n) => !isRight(n))) };
      if (this.sets.size >= 1000) this.sets.clear();
      this.sets.set(json, set);
    }
    return set;
  }
}

/** A row of `keys list` as both engines read it: namespaces and rights as their stored JSON. */
export type ListRow = Omit<ApiKey, 'namespaces' | 'rights' | 'unknown_rights'> & { namespaces: string; rights: string };

/** A listed key from its row; stored right names this build does not know are shown, not dropped. */
export function listed(row: ListRow, rightSets: RightsCache): ApiKey {
  const { list, unknown } = rightSets.get(row.rights);
  return {
    id: row.id,
    owner: row.owner,
    namespaces: JSON.parse(row.namespaces) as string[],
    rights: [...list],
    ...(unknown.length > 0 && { unknown_rights: [...unknown] }),
    created_at: row.created_at,
    revoked_at: row.revoked_at,
  };
}
