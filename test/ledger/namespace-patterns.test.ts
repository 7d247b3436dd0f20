// Key namespace patterns: `*` matches any run of characters. The matcher sees client text (the
// namespace of every event), so it must be linear: a pattern with several stars used to compile to
// a backtracking `.*` regex, polynomial in the namespace length.
import { expect, it } from 'vitest';
import { compileNamespacePatterns } from '../../src/ledger/api-keys.ts';
import { event, testServer } from '../helpers.ts';

const reference = (pattern: string, ns: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
  ).test(ns);

it('matches exactly what the `.*` reading of the pattern matches', () => {
  const patterns = ['acme/*', '*', 'a*b', '*/prod', 'acme/*/prod', 'a*a*b', '**', 'exact', 'x*', '*x', 'a*b*c*d'];
  const names = [
    'acme/prod',
    'acme/',
    'acme',
    'ab',
    'aab',
    'abab',
    'a',
    'b',
    '',
    'acme/x/prod',
    'acme/prod/x',
    'exact',
    'exactly',
    'x',
    'xx',
    'abcd',
    'aXbYcZd',
    'adcb',
    'a/b',
  ];
  for (const p of patterns) {
    const match = compileNamespacePatterns([p]);
    for (const n of names) expect(match(n), `${p} ~ ${n}`).toBe(reference(p, n));
  }
  // Seeded random patterns and names over a small alphabet, where overlaps are common.
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const word = (alphabet: string, len: number) => Array.from({ length: len }, () => alphabet[rand(alphabet.length)]).join('');
  for (let i = 0; i < 3000; i++) {
    const p = word('ab*', rand(7));
    const n = word('ab', rand(9));
    expect(compileNamespacePatterns([p])(n), `${p} ~ ${n}`).toBe(reference(p, n));
  }
});

it('answers a worst-case namespace for a many-star key at once, over HTTP', async () => {
  const s = await testServer();
  try {
    const key = (await s.ledger.keys.create('stars', ['a*a*a*a*a*a*a*a*b'])).key;
    const started = performance.now();
    const res = await s.post(event({ namespace: 'a'.repeat(128) }), { authorization: `Bearer ${key}` });
    expect(res.json().results[0].errors[0].rule).toBe('namespace_forbidden');
    // Linear: well under a millisecond of matching; the regex took seconds here.
    expect(performance.now() - started).toBeLessThan(500);
  } finally {
    await s.close();
  }
});
