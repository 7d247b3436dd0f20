// What the web page checks a result against, beyond the receipt's own root: the log key it
// pinned for this server (trust on first use) and the witness keys the user gave. The bundle
// itself is checked by the package's verifyProofBundle, as `receipts verify` does. Pure: no DOM,
// no fetch (storage is passed in).
import { type NoteVerifier, parseCosignerKey } from '../checkpoint/index.ts';

/** A bundle is an object with these four fields; anything else is checked as a plain receipt. */
export function isBundle(v: unknown): v is { receipt: unknown; epoch_header: unknown; epoch_proof: unknown; checkpoint: unknown } {
  return typeof v === 'object' && v !== null && 'receipt' in v && 'checkpoint' in v && 'epoch_header' in v && 'epoch_proof' in v;
}

/** Witness keys a user may give the page (a settings field): bounded, as any input. */
export const MAX_WITNESS_KEYS = 20;

/**
 * The witness keys of the settings field, one vkey per line (type 0x01 or 0x04, as
 * `receipts serve --witness` takes them); blank lines ignored, duplicates kept once. Each bad
 * line is a problem naming its line number and the rule.
 */
export function parseWitnessKeys(text: string): { keys: NoteVerifier[]; vkeys: string[]; problems: string[] } {
  const keys: NoteVerifier[] = [];
  const vkeys: string[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (keys.length === MAX_WITNESS_KEYS) {
      problems.push(`line ${i + 1}: at most ${MAX_WITNESS_KEYS} witness keys`);
      break;
    }
    try {
      const k = parseCosignerKey(line);
      const id = `${k.name}\n${k.keyId}`;
      if (seen.has(id)) continue;
      seen.add(id);
      keys.push(k);
      vkeys.push(line);
    } catch (err) {
      problems.push(`line ${i + 1}: ${(err as Error).message} (a witness key is name+hex8+base64, as the witness prints it)`);
    }
  }
  return { keys, vkeys, problems };
}

// ---- pinning the log key (trust on first use), per server

/** What the page remembers of a server's log key. */
export interface Pin {
  vkey: string;
  /** When this browser first saw it (epoch ms). */
  since: number;
}

export type PinState = { state: 'first' | 'same'; pin: Pin } | { state: 'changed'; pin: Pin; seen: string };

const pinName = (server: string) => `receipts-log-key ${server}`;

export function readPin(storage: Pick<Storage, 'getItem'>, server: string): Pin | null {
  try {
    const p = JSON.parse(storage.getItem(pinName(server)) ?? 'null') as Pin | null;
    return p && typeof p.vkey === 'string' && typeof p.since === 'number' ? p : null;
  } catch {
    return null; // an unreadable entry is as none: the next key seen is pinned again
  }
}

export function writePin(storage: Pick<Storage, 'setItem'>, server: string, vkey: string, now: number): Pin {
  const pin = { vkey, since: now };
  storage.setItem(pinName(server), JSON.stringify(pin));
  return pin;
}

/**
 * The key the server names (`seen`, already parsed as a verifier key) against the pin: pinned the
 * first time, the same later, or changed (the pin stays: only the user replaces it).
 */
export function checkPin(storage: Pick<Storage, 'getItem' | 'setItem'>, server: string, seen: string, now: number): PinState {
  const pin = readPin(storage, server);
  if (!pin) return { state: 'first', pin: writePin(storage, server, seen, now) };
  return pin.vkey === seen ? { state: 'same', pin } : { state: 'changed', pin, seen };
}
