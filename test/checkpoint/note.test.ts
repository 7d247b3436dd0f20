// C2SP signed-note, held to Go's golang.org/x/mod/sumdb/note vectors and the spec's example
// (test/vectors/checkpoint/signed-note.json names the sources and commits): the same keys, key
// IDs, signature lines and refusals, so a note signed here opens in Go and the other way round.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_CODES,
  CheckpointError,
  MAX_SIGNATURES,
  ed25519Signer,
  formatSignerKey,
  generateSigningKey,
  keyNameProblem,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  splitNote,
  verifierKeyOf,
  verifierOf,
} from '../../src/checkpoint/index.ts';

const V = JSON.parse(readFileSync(join(import.meta.dirname, '../vectors/checkpoint/signed-note.json'), 'utf8'));
const go = V.go;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    expect(CHECKPOINT_CODES).toContain((err as CheckpointError).code);
    return (err as CheckpointError).code;
  }
  throw new Error('did not throw');
}

describe('keys (Go sumdb/note)', () => {
  it('reads the signer key and derives the verifier key Go derives', () => {
    const key = parseSignerKey(go.peter_skey);
    expect(key.name).toBe('PeterNeumann');
    expect(verifierKeyOf(key)).toBe(go.peter_vkey);
    expect(formatSignerKey(key)).toBe(go.peter_skey);
    const v = parseVerifierKey(go.peter_vkey);
    expect(v.keyId).toBe(0xc74f20a3);
    expect(v.type).toBe(1);
  });

  it('refuses every truncation and every one-character change of a vkey or skey (Go TestNewVerifier/TestNewSigner)', () => {
    for (const [k, parse] of [
      [go.peter_vkey, parseVerifierKey],
      [go.peter_skey, parseSignerKey],
    ] as const) {
      for (let i = 0; i <= k.length; i++) {
        for (let j = i + 1; j <= k.length; j++)
          if (i !== 0 || j !== k.length) expect(() => parse(k.slice(i, j)), k.slice(i, j)).toThrow(CheckpointError);
      }
      for (let i = 0; i < k.length; i++) {
        const mangled = k.slice(0, i) + String.fromCharCode(k.charCodeAt(i) + 1) + k.slice(i + 1);
        expect(() => parse(mangled), mangled).toThrow(CheckpointError);
      }
    }
  });

  it('refuses a key of the wrong length and an unknown type, with their codes', () => {
    expect(codeOf(() => parseVerifierKey(go.bad_vkeys[0]))).toBe('malformed_key');
    expect(codeOf(() => parseVerifierKey(go.bad_vkeys[1]))).toBe('unsupported_key_type');
    expect(codeOf(() => parseVerifierKey(go.peter_vkey.replace('c74f20a3', 'c74f20a4')))).toBe('key_id_mismatch');
  });

  it('validates key names as signed-note does (non-empty, no Unicode space, no +)', () => {
    for (const bad of ['', 'a b', 'a+b', 'a\tb', 'a\u00a0b', 'a\u2003b', 'a\u3000b', 'a\u0085b', 'a\u0001b', 'x'.repeat(257)]) {
      expect(keyNameProblem(bad), JSON.stringify(bad)).not.toBeNull();
      expect(codeOf(() => generateSigningKey(bad))).toBe('bad_key_name');
    }
    for (const good of ['PeterNeumann', 'receipts.example.com/acme', 'ключ/日本', 'a—b']) expect(keyNameProblem(good)).toBeNull();
  });

  it('a generated key round-trips through its skey and signs what its vkey verifies', () => {
    const key = generateSigningKey('receipts.example.com/acme');
    const again = parseSignerKey(formatSignerKey(key));
    expect(verifierKeyOf(again)).toBe(verifierKeyOf(key));
    expect(verifierKeyOf(key)).toMatch(/^receipts\.example\.com\/acme\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$/);
    const note = signNote('hello\n', [ed25519Signer(key)]);
    expect(openNote(note, [parseVerifierKey(verifierKeyOf(key))]).text).toBe('hello\n');
  });
});

describe('signing and opening notes', () => {
  const peter = parseVerifierKey(go.peter_vkey);
  const enoch = parseVerifierKey(go.enoch_vkey);

  it("signs Go's text to Go's exact note (Ed25519 is deterministic)", () => {
    expect(signNote(go.text, [ed25519Signer(parseSignerKey(go.peter_skey))])).toBe(go.signed_by_peter);
  });

  it('replaces an existing signature by the same key and keeps others (Go TestSign)', () => {
    const signer = ed25519Signer(parseSignerKey(go.peter_skey));
    const enochLine = splitNote(`${go.text}\n${go.enoch_sig}`).signatures[0]!;
    const note = signNote(
      go.text,
      [signer],
      [
        {
          name: 'PeterNeumann',
          keyId: 0xc74f20a3,
          base64: 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=',
        },
        enochLine,
      ],
    );
    expect(note).toBe(`${go.text}\n${go.enoch_sig}${go.peter_sig}`);
    expect(codeOf(() => signNote('abc', [signer]))).toBe('malformed_note');
  });

  it('opens with one known key, keeping the unknown signature unverified (Go TestOpen)', () => {
    const n = openNote(`${go.text}\n${go.peter_sig}${go.enoch_sig}`, [peter]);
    expect(n.text).toBe(go.text);
    expect(n.verified.map((s) => [s.name, s.keyId])).toEqual([['PeterNeumann', 0xc74f20a3]]);
    expect(n.unverified.map((s) => [s.name, s.keyId])).toEqual([['EnochRoot', 0xaf0cfe78]]);
    const both = openNote(`${go.text}\n${go.peter_sig}${go.enoch_sig}`, [peter, enoch]);
    expect(both.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(both.unverified).toEqual([]);
  });

  it('refuses a note no known key signed', () => {
    expect(codeOf(() => openNote(`${go.text}\n${go.peter_sig}${go.enoch_sig}`, []))).toBe('no_known_signature');
    // Same name, other key ID; same key ID, other name: unknown keys, ignored, so nothing verified.
    expect(codeOf(() => openNote(`${go.text}\n${go.peter_sig.replace('PeterNeumann', 'PeterNeuman')}`, [peter]))).toBe(
      'no_known_signature',
    );
  });

  it('refuses the whole note when a known key’s signature fails', () => {
    const broken = `${go.peter_sig.slice(0, 60)}ABCD${go.peter_sig.slice(60)}`;
    expect(codeOf(() => openNote(`${go.text}\n${broken}`, [peter]))).toBe('invalid_signature');
    const otherText = go.text.replace('answer', 'Answer');
    expect(codeOf(() => openNote(`${otherText}\n${go.peter_sig}`, [peter]))).toBe('invalid_signature');
  });

  it('ignores repeated lines, and an unknown key’s broken signature (Go TestOpen)', () => {
    const enochBroken = `${go.enoch_sig.slice(0, 60)}ABCD${go.enoch_sig.slice(60)}`;
    const n = openNote(`${go.text}\n${go.peter_sig}${go.peter_sig}${go.enoch_sig}${go.enoch_sig}${enochBroken}`, [peter]);
    expect(n.verified).toHaveLength(1);
    expect(n.unverified).toHaveLength(2);
  });

  it('refuses two verifiers for the same key when a line uses it', () => {
    expect(codeOf(() => openNote(`${go.text}\n${go.enoch_sig}`, [enoch, peter, enoch]))).toBe('ambiguous_key');
    expect(openNote(`${go.text}\n${go.peter_sig}`, [enoch, peter, enoch]).verified).toHaveLength(1);
  });

  it(`refuses more than ${MAX_SIGNATURES} signature lines, and a note over the size bound`, () => {
    expect(codeOf(() => openNote(`${go.text}\n${go.peter_sig.repeat(101)}`, [peter]))).toBe('malformed_note');
    expect(openNote(`${go.text}\n${go.peter_sig.repeat(100)}`, [peter]).verified).toHaveLength(1);
    expect(codeOf(() => openNote(`${'x'.repeat(70_000)}\n\n${go.peter_sig}`, [peter]))).toBe('note_too_large');
  });

  it("refuses Go's malformed notes (control characters, invalid UTF-8, no blank line, bad lines)", () => {
    for (const msg of go.bad_msgs as string[])
      expect(
        codeOf(() => openNote(msg, [peter])),
        JSON.stringify(msg.slice(0, 30)),
      ).toBe('malformed_note');
    expect(codeOf(() => openNote(Buffer.from(go.bad_msg_invalid_utf8_hex, 'hex'), [peter]))).toBe('malformed_note');
    expect(codeOf(() => openNote(`\ud800${go.text}\n${go.peter_sig}`, [peter]))).toBe('malformed_note');
    expect(openNote(new TextEncoder().encode(go.signed_by_peter), [peter]).text).toBe(go.text);
  });

  it("opens the spec's example note with the spec's example vkey", () => {
    const n = openNote(V.c2sp.note, [parseVerifierKey(V.c2sp.vkey)]);
    expect(n.text).toBe('This is an example message.\n');
  });

  it('the text is separated by the last blank line (a text may hold blank lines)', () => {
    const key = generateSigningKey('k');
    const note = signNote('a\n\nb\n', [ed25519Signer(key)]);
    expect(openNote(note, [verifierOf(key)]).text).toBe('a\n\nb\n');
  });
});

it('src/checkpoint is browser-safe: it imports no Node module', () => {
  const dir = join(import.meta.dirname, '../../src/checkpoint');
  for (const f of readdirSync(dir)) {
    const src = readFileSync(join(dir, f), 'utf8');
    const imports = [...src.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    for (const i of imports) expect(i.startsWith('.') || i.startsWith('@noble/'), `${f} imports ${i}`).toBe(true);
  }
});
