// Every scan that sees client text must take linear time: each case feeds one pattern its worst
// input at 1 MiB (the largest body we accept) and bounds the time. Linear scans take a few ms;
// the quadratic JWT pattern this replaces took 1.3 s for 64 KiB (about 5 minutes for 1 MiB).
import { describe, expect, it } from 'vitest';
import { isSecretKey, looksLikeSecret, redactJson, redactUrl } from '../../src/event/redact.ts';
import { ACTION_PATTERN, NAMESPACE_PATTERN, parseRfc3339 } from '../../src/event/validate.ts';
import { event, testServer } from '../helpers.ts';

const MiB = 1024 * 1024;
const fill = (unit: string, bytes = MiB) => unit.repeat(Math.ceil(bytes / unit.length));
/**
 * Best of up to three runs, in ms: one slow run on a busy machine is noise, a quadratic scan is
 * not. Unloaded, each 1 MiB case here takes 5-70 ms; the bound leaves room for a machine shared
 * with other work while still failing anything quadratic (minutes at this size) by far.
 */
function time(fn: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < 3 && best >= BOUND_MS / 2; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}
const BOUND_MS = 1500;

// The worst case of each scanner: text that starts its pattern everywhere and never completes it.
const WORST: Array<[string, string]> = [
  ['JWT header runs (eyJa-)', fill('eyJa-')],
  ['JWT header without payload dot', fill('eyJaaaaaaa.aaaa-')],
  ['JWT overlapping header/payload', fill('eyJaaaaaaa.eyJaaaaaaa-')],
  ['own key prefix', fill('sr_')],
  ['own key id runs', fill('sr_aaaaaaaa_')],
  ['OpenAI prefix in a run', fill('sk-a')],
  ['OpenAI prefix only', fill('sk-')],
  ['AWS prefix', fill('AKIA')],
  ['GitHub prefix', fill('ghp_a')],
  ['Slack prefix', fill('xoxb-')],
  ['Google OAuth prefix', fill('ya29.')],
  ['SendGrid prefix', fill('SG.')],
  ['Sui key prefix', fill('suiprivkey1')],
  ['Sui key short runs', fill('suiprivkey1qqqq ')],
  ['PEM markers', fill('-----BEGIN ')],
  ['PEM labels', fill('-----BEGIN AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')],
  ['auth schemes', fill('Bearer ')],
  ['auth scheme words', fill('Token a ')],
  ['Digest params', fill('Digest ')],
  ['Basic runs', fill('Basic a ')],
  ['long word', fill('a')],
  ['name separators', fill('password ')],
  ['assignments without value', fill('password=,')],
  ['colons', fill('a:')],
  ['URL schemes', fill('://')],
  ['URL userinfo', fill('://a:')],
  ['URL userinfo, no at', fill('a://b:c')],
  ['percent signs', fill('%')],
  ['double-encoded percent', fill('%2525')],
  ['percent escapes', fill('%41')],
  ['plus signs', fill('+')],
  ['whitespace', fill(' ')],
  ['mixed case', fill('aB')],
  // issue 21's shapes
  ['Vault prefix', fill('hvs.')],
  ['DigitalOcean prefix in a hex run', fill('dop_v1_a')],
  ['PyPI prefix runs', fill('pypi-a')],
  ['Twilio prefix in a hex run', fill('SKa')],
  ['AccountKey names', fill('AccountKey=')],
  ['AccountKey with spaces', fill('AccountKey = a ')],
  ['sig names', fill('sig=')],
  ['sig values', fill('&sig=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')],
  ['session names', fill('session=session=')],
  ['base64 user:pass, whole value', fill('dXNlcjpwYXNzd29yZA==')],
  ['mnemonic words, never 12', fill(`${'abandon '.repeat(11)}the `)],
  ['mnemonic-length letter runs', fill('abandonx ')],
  ['long gaps between words', fill('abandon ,,,,,,,,,,,, ')],
  ['hex runs of key length', fill(`0x${'a'.repeat(64)} `)],
  ['hex runs after a name', fill(`digest=0x${'a'.repeat(64)} `)],
  ['near-key hex runs', fill(`${'a'.repeat(63)} `)],
];

describe('every pattern that sees client text runs in linear time (1 MiB worst cases)', () => {
  it.each(WORST)('looksLikeSecret: %s', (_name, text) => {
    expect(time(() => looksLikeSecret(text))).toBeLessThan(BOUND_MS);
  });

  it.each(WORST)('isSecretKey: %s', (_name, text) => {
    expect(time(() => isSecretKey(text))).toBeLessThan(BOUND_MS);
  });

  it.each(WORST)('redactUrl, path and query: %s', (_name, text) => {
    expect(time(() => redactUrl(`/v1/${text}?q=${text}&${text}`))).toBeLessThan(3 * BOUND_MS);
  });

  it('redactUrl with many segments and parameters', () => {
    expect(time(() => redactUrl(`/${fill('a/')}?${fill('a=b&')}`))).toBeLessThan(BOUND_MS);
    expect(time(() => redactUrl(`/${fill('token/')}`))).toBeLessThan(BOUND_MS);
  });

  it('redactJson over long arrays of mnemonic words and hex under key-material names', () => {
    const words = Array.from({ length: 100_000 }, (_, i) => (i % 11 === 10 ? 'the' : 'abandon'));
    expect(time(() => redactJson({ words }, 'metadata'))).toBeLessThan(4 * BOUND_MS);
    const seeds = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`seed_${i}`, `0x${'a'.repeat(63)}`]));
    expect(time(() => redactJson(seeds, 'metadata'))).toBeLessThan(4 * BOUND_MS);
  });

  it('redactJson over wide metadata', () => {
    const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 'eyJa-'.repeat(10)]));
    expect(time(() => redactJson(wide, 'metadata'))).toBeLessThan(4 * BOUND_MS);
  });

  it('the validation patterns: RFC 3339, namespace, action', () => {
    expect(time(() => parseRfc3339(`2026-01-01T00:00:00.${fill('1')}x`))).toBeLessThan(BOUND_MS);
    expect(time(() => NAMESPACE_PATTERN.test(`${fill('a/')}A`))).toBeLessThan(BOUND_MS);
    expect(time(() => ACTION_PATTERN.test(`${fill('a.')}A`))).toBeLessThan(BOUND_MS);
  });
});

describe('through HTTP, a hostile body or URL never freezes the server', () => {
  it('answers metadata of "eyJa-" x 52,000 (256 KiB) quickly: the size is checked before any scan', async () => {
    const s = await testServer();
    try {
      const body = JSON.stringify({ events: [event({ metadata: { x: 'eyJa-'.repeat(52_000) } }), event()] });
      const t = performance.now();
      const res = await s.post(body);
      const ms = performance.now() - t;
      expect(res.json().results.map((r: { status: string }) => r.status)).toEqual(['rejected', 'created']);
      expect(res.json().results[0].errors[0]).toMatchObject({ path: 'metadata', rule: 'max_bytes:4096' });
      expect(ms).toBeLessThan(BOUND_MS);
    } finally {
      await s.close();
    }
  });

  it('scrubs 4 KiB of worst-case metadata (the largest accepted) in every field quickly', async () => {
    const s = await testServer();
    try {
      const events = WORST.map(([, text]) =>
        event({ metadata: { a: text.slice(0, 2000), [text.slice(0, 1000)]: 1, l: [text.slice(0, 900)] } }),
      );
      const t = performance.now();
      const res = await s.post({ events });
      expect(res.statusCode).toBe(200);
      expect(performance.now() - t).toBeLessThan(4 * BOUND_MS);
    } finally {
      await s.close();
    }
  });

  it('logs a 1 MiB hostile URL quickly (the logging hook scrubs every request URL)', async () => {
    const s = await testServer();
    try {
      const t = performance.now();
      // inject has no header-size limit, so this reaches the hook at the largest size a
      // server started with a raised --max-http-header-size could see
      const res = await s.app.inject({ method: 'GET', url: `/v1/usage?namespace=acme/prod&q=${fill('eyJa-')}`, headers: s.auth });
      expect(res.statusCode).toBeLessThan(500);
      expect(performance.now() - t).toBeLessThan(4 * BOUND_MS);
      expect(s.logs.join('')).toContain('"url":"/v1/usage?');
    } finally {
      await s.close();
    }
  });
});
