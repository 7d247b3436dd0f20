// API key rules both engines share. A key is `sr_<id>_<secret>`; the id is public (lists, logs),
// the secret is 256 random bits. Only SHA-256 of the whole key is stored: a stolen database
// yields no usable key. A plain hash suffices because the secret is random, not a password.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A namespace pattern: the namespace alphabet, with `*` matching any run of characters (`/` too). */
export const NAMESPACE_PATTERN_RULE = /^[a-z0-9._/*-]{1,128}$/;

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
export function checkKeyRequest(owner: string, namespaces: string[]): void {
  if (owner.length < 1 || owner.length > 256) throw new Error('owner must be 1 to 256 characters');
  if (namespaces.length === 0) throw new Error('at least one --namespace pattern is required');
  for (const p of namespaces) {
    if (!NAMESPACE_PATTERN_RULE.test(p)) {
      throw new Error(`namespace pattern "${p}" must be 1 to 128 characters of a-z 0-9 . _ / - and *`);
    }
  }
}

/** A new key for a checked request: its public id, the key (shown once) and the hash to store. */
export function newKey(owner: string, namespaces: string[]): { id: string; key: string; hash: Buffer } {
  checkKeyRequest(owner, namespaces);
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
