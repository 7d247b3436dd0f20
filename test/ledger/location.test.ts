// describeLocation: the one function that hides a database URL's credentials before a location
// reaches a log line, a message or --help. Pure; the CLI and both engines use it.
import { describe, expect, it } from 'vitest';
import { describeLocation, redactUrlsIn, urlHasPassword } from '../../src/ledger/index.ts';

const SECRET = 'hunter2-Xy';

describe('describeLocation', () => {
  it.each([
    ['user-info password', `postgres://app:${SECRET}@db.example:5432/ledger`, 'postgres://app:***@db.example:5432/ledger'],
    ['postgresql:// scheme, empty user', `postgresql://:${SECRET}@db/ledger`, 'postgresql://:***@db/ledger'],
    ['password= parameter', `postgres://app@db/ledger?password=${SECRET}`, 'postgres://app@db/ledger?password=***'],
    ['PASSWORD= in any case', `postgres://app@db/ledger?PassWord=${SECRET}`, 'postgres://app@db/ledger?PassWord=***'],
    [
      'sslpassword and sslkey',
      `postgres://app@db/ledger?sslmode=verify-full&sslkey=/k/${SECRET}&SSLPASSWORD=${SECRET}`,
      'postgres://app@db/ledger?sslmode=verify-full&sslkey=***&SSLPASSWORD=***',
    ],
    ['a percent-encoded parameter name', `postgres://app@db/ledger?pass%77ord=${SECRET}`, 'postgres://app@db/ledger?password=***'],
    ['an @ inside the password', `postgres://app:${SECRET}@x@db/ledger`, 'postgres://app:***@db/ledger'],
    ['a fragment', `postgres://app@db/ledger#${SECRET}`, 'postgres://app@db/ledger'],
    ['another scheme (a mistyped --db)', `mysql://app:${SECRET}@db/x`, 'mysql://app:***@db/x'],
  ])('hides the %s', (_name, url, shown) => {
    expect(describeLocation(url)).toBe(shown);
    expect(describeLocation(url)).not.toContain(SECRET);
  });

  it('keeps what is not secret: user, host, port, database, other parameters', () => {
    expect(describeLocation('postgres://app@db:6432/ledger?sslmode=require&application_name=receipts')).toBe(
      'postgres://app@db:6432/ledger?sslmode=require&application_name=receipts',
    );
  });

  it('shows no part of a URL that does not parse', () => {
    expect(describeLocation(`postgres://app:${SECRET}@[db/ledger`)).toBe('postgres://(unparsable URL, not shown)');
  });

  it('leaves file paths as they are', () => {
    for (const f of ['./data/receipts.db', '/var/lib/receipts/ledger.db', ':memory:', 'C:\\ledgers\\a.db'])
      expect(describeLocation(f)).toBe(f);
  });
});

describe('urlHasPassword', () => {
  it.each([
    [`postgres://app:${SECRET}@db/l`, true],
    [`postgres://app@db/l?password=${SECRET}`, true],
    [`postgres://app@db/l?SSLPassword=${SECRET}`, true],
    ['postgres://app@db/l?sslmode=require', false],
    ['postgres://app@db/l', false],
    ['./a:b@c.db', false],
  ])('%s → %s', (url, has) => expect(urlHasPassword(url)).toBe(has));
});

describe('redactUrlsIn', () => {
  it('hides the credentials of every URL in a sentence, and nothing else', () => {
    const text = `connect to postgres://app:${SECRET}@db/l failed ("postgresql://a@b/c?password=${SECRET}"), see https://example.com/doc`;
    expect(redactUrlsIn(text)).toBe(
      'connect to postgres://app:***@db/l failed ("postgresql://a@b/c?password=***"), see https://example.com/doc',
    );
  });

  it('a URL run into another is not a hiding place', () => {
    expect(redactUrlsIn(`x://y,postgres://app:${SECRET}@db/l`)).not.toContain(SECRET);
    expect(redactUrlsIn(`postgres://app@db/l?next=postgres://a:${SECRET}@b`)).not.toContain(SECRET);
  });

  it('takes linear time on hostile text', () => {
    for (const unit of ['a', '://', 'a://', 'a:']) {
      const small = unit.repeat(20_000);
      const large = unit.repeat(200_000);
      const t0 = performance.now();
      redactUrlsIn(small);
      const t1 = performance.now();
      redactUrlsIn(large);
      const t2 = performance.now();
      // Ten times the input: well under a hundred times the time (quadratic would be ~100×).
      expect(t2 - t1, unit).toBeLessThan(Math.max(30 * (t1 - t0), 200));
    }
  });
});

describe('redactUrlsIn leaves what it need not hide exactly as written', () => {
  it('a URL without credentials, and the punctuation of the sentence around one', () => {
    expect(redactUrlsIn('cannot read registry 0x2 through http://127.0.0.1:1: fetch failed; check --rpc')).toBe(
      'cannot read registry 0x2 through http://127.0.0.1:1: fetch failed; check --rpc',
    );
    expect(redactUrlsIn('see (postgres://app:pw@db/l).')).toBe('see (postgres://app:***@db/l).');
    expect(redactUrlsIn('at postgres://app@db/l?sslpassword=pw, then')).toBe('at postgres://app@db/l?sslpassword=***, then');
  });
});
