// Usage windows in a customer's time zone (issue 23): the pure arithmetic the rollups group by.
// Expected values come from tzdata as published (DST dates, offsets), not from the module.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BUCKET_MS,
  checkTimeZone,
  isBucketAligned,
  keyOf,
  type Window,
  windowStart,
  windowsOf,
  zoneEdgesAligned,
} from '../../src/usage/time-zone.ts';
import { mulberry32 as random } from '../support/random.ts';

const at = (iso: string) => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad date ${iso}`);
  return ms;
};
const H = 3_600_000;

/** [key, length in hours] of each window: the shape a reader checks a DST table by. */
function table(tz: string, window: Window, from: string, to: string): Array<[string, number]> {
  return windowsOf(tz, window, at(from), at(to)).map((w) => [w.key, (w.end - w.start) / H]);
}

describe('days across daylight-saving changes', () => {
  it('America/Los_Angeles: 2026-03-08 is 23 hours, 2026-11-01 is 25, each labelled by its local date and offset', () => {
    expect(table('America/Los_Angeles', 'day', '2026-03-07T08:00:00Z', '2026-03-10T07:00:00Z')).toEqual([
      ['2026-03-07T00:00:00-08:00', 24],
      ['2026-03-08T00:00:00-08:00', 23],
      ['2026-03-09T00:00:00-07:00', 24],
    ]);
    expect(table('America/Los_Angeles', 'day', '2026-10-31T07:00:00Z', '2026-11-03T08:00:00Z')).toEqual([
      ['2026-10-31T00:00:00-07:00', 24],
      ['2026-11-01T00:00:00-07:00', 25],
      ['2026-11-02T00:00:00-08:00', 24],
    ]);
  });

  it('Europe/Berlin: 2026-03-29 is 23 hours, 2026-10-25 is 25', () => {
    expect(table('Europe/Berlin', 'day', '2026-03-28T23:00:00Z', '2026-03-30T22:00:00Z')).toEqual([
      ['2026-03-29T00:00:00+01:00', 23],
      ['2026-03-30T00:00:00+02:00', 24],
    ]);
    expect(table('Europe/Berlin', 'day', '2026-10-24T22:00:00Z', '2026-10-26T23:00:00Z')).toEqual([
      ['2026-10-25T00:00:00+02:00', 25],
      ['2026-10-26T00:00:00+01:00', 24],
    ]);
  });

  it('the hour a fall-back repeats is two hours told apart by their offsets; the skipped hour is absent', () => {
    expect(table('America/Los_Angeles', 'hour', '2026-11-01T07:00:00Z', '2026-11-01T11:00:00Z')).toEqual([
      ['2026-11-01T00:00:00-07:00', 1],
      ['2026-11-01T01:00:00-07:00', 1],
      ['2026-11-01T01:00:00-08:00', 1],
      ['2026-11-01T02:00:00-08:00', 1],
    ]);
    expect(table('America/Los_Angeles', 'hour', '2026-03-08T08:00:00Z', '2026-03-08T11:00:00Z')).toEqual([
      ['2026-03-08T00:00:00-08:00', 1],
      ['2026-03-08T01:00:00-08:00', 1],
      ['2026-03-08T03:00:00-07:00', 1],
    ]);
  });
});

describe('offsets that are not whole hours', () => {
  it('Asia/Kolkata (+05:30): days start at 18:30Z, hours at half past in UTC', () => {
    expect(table('Asia/Kolkata', 'day', '2026-01-14T18:30:00Z', '2026-01-16T18:30:00Z')).toEqual([
      ['2026-01-15T00:00:00+05:30', 24],
      ['2026-01-16T00:00:00+05:30', 24],
    ]);
    expect(windowStart('Asia/Kolkata', 'hour', at('2026-01-15T04:29:59.999Z'))).toBe(at('2026-01-15T03:30:00Z'));
    expect(keyOf('Asia/Kolkata', 'hour', at('2026-01-15T04:30:00Z'))).toBe('2026-01-15T10:00:00+05:30');
  });

  it('Asia/Kathmandu (+05:45): a day starts at 18:15Z', () => {
    expect(keyOf('Asia/Kathmandu', 'day', at('2026-05-01T18:14:59.999Z'))).toBe('2026-05-01T00:00:00+05:45');
    expect(keyOf('Asia/Kathmandu', 'day', at('2026-05-01T18:15:00Z'))).toBe('2026-05-02T00:00:00+05:45');
    expect(windowStart('Asia/Kathmandu', 'day', at('2026-05-02T12:00:00Z'))).toBe(at('2026-05-01T18:15:00Z'));
  });

  it('Australia/Lord_Howe (30-minute DST): 2026-04-05 is 24.5 hours, 2026-10-04 is 23.5', () => {
    // DST (+11) ends 2026-04-05 02:00 local, back to 01:30 (+10:30); starts 2026-10-04 02:00, on to 02:30.
    expect(table('Australia/Lord_Howe', 'day', '2026-04-04T13:00:00Z', '2026-04-06T13:30:00Z')).toEqual([
      ['2026-04-05T00:00:00+11:00', 24.5],
      ['2026-04-06T00:00:00+10:30', 24],
    ]);
    expect(table('Australia/Lord_Howe', 'day', '2026-10-03T13:30:00Z', '2026-10-05T13:00:00Z')).toEqual([
      ['2026-10-04T00:00:00+10:30', 23.5],
      ['2026-10-05T00:00:00+11:00', 24],
    ]);
    // The half hour repeated at the fall-back is a window of its own, keyed by its local start.
    expect(table('Australia/Lord_Howe', 'hour', '2026-04-04T14:00:00Z', '2026-04-04T16:00:00Z')).toEqual([
      ['2026-04-05T01:00:00+11:00', 1],
      ['2026-04-05T01:30:00+10:30', 0.5],
      ['2026-04-05T02:00:00+10:30', 0.5],
    ]);
  });

  it('Pacific/Chatham (+12:45 / +13:45): months start at local midnight of the 1st', () => {
    // DST ends 2026-04-05 03:45 local (+13:45 to +12:45), starts 2026-09-27 02:45 local.
    expect(table('Pacific/Chatham', 'month', '2026-02-28T10:15:00Z', '2026-05-31T11:15:00Z')).toEqual([
      ['2026-03-01T00:00:00+13:45', 31 * 24],
      ['2026-04-01T00:00:00+13:45', 30 * 24 + 1],
      ['2026-05-01T00:00:00+12:45', 31 * 24],
    ]);
    expect(keyOf('Pacific/Chatham', 'day', at('2026-09-27T12:00:00Z'))).toBe('2026-09-28T00:00:00+13:45');
    expect(keyOf('Pacific/Chatham', 'day', at('2026-09-26T12:00:00Z'))).toBe('2026-09-27T00:00:00+12:45');
  });
});

describe('zones that change at midnight: the day starts at the first instant of its date', () => {
  it('Asia/Beirut: 2026-03-29 has no midnight and starts at 01:00+03:00 (23 hours); 2026-10-24 has 25', () => {
    // Lebanon: DST from the last Sunday of March 00:00, to the last Sunday of October 00:00.
    expect(table('Asia/Beirut', 'day', '2026-03-27T22:00:00Z', '2026-03-30T21:00:00Z')).toEqual([
      ['2026-03-28T00:00:00+02:00', 24],
      ['2026-03-29T01:00:00+03:00', 23],
      ['2026-03-30T00:00:00+03:00', 24],
    ]);
    expect(table('Asia/Beirut', 'day', '2026-10-23T21:00:00Z', '2026-10-25T22:00:00Z')).toEqual([
      ['2026-10-24T00:00:00+03:00', 25],
      ['2026-10-25T00:00:00+02:00', 24],
    ]);
  });

  it('America/Santiago: 2026-09-06 starts at 01:00-03:00; 2026-04-04 is 25 hours', () => {
    expect(keyOf('America/Santiago', 'day', at('2026-09-06T12:00:00Z'))).toBe('2026-09-06T01:00:00-03:00');
    expect(windowStart('America/Santiago', 'day', at('2026-09-06T12:00:00Z'))).toBe(at('2026-09-06T04:00:00Z'));
    expect(table('America/Santiago', 'day', '2026-04-04T03:00:00Z', '2026-04-05T04:00:00Z')).toEqual([['2026-04-04T00:00:00-03:00', 25]]);
  });
});

describe('the shortest daylight-saving period in tzdata', () => {
  it('America/Boa_Vista kept DST for 167 hours in October 2000: both ends are days of their own', () => {
    expect(table('America/Boa_Vista', 'day', '2000-10-07T04:00:00Z', '2000-10-16T04:00:00Z')).toEqual([
      ['2000-10-07T00:00:00-04:00', 24],
      ['2000-10-08T01:00:00-03:00', 23],
      ['2000-10-09T00:00:00-03:00', 24],
      ['2000-10-10T00:00:00-03:00', 24],
      ['2000-10-11T00:00:00-03:00', 24],
      ['2000-10-12T00:00:00-03:00', 24],
      ['2000-10-13T00:00:00-03:00', 24],
      ['2000-10-14T00:00:00-03:00', 25],
      ['2000-10-15T00:00:00-04:00', 24],
    ]);
  });
});

describe('months', () => {
  it('February and the months holding a DST change, in Europe/Berlin', () => {
    expect(table('Europe/Berlin', 'month', '2025-12-31T23:00:00Z', '2026-11-30T23:00:00Z')).toEqual([
      ['2026-01-01T00:00:00+01:00', 31 * 24],
      ['2026-02-01T00:00:00+01:00', 28 * 24],
      ['2026-03-01T00:00:00+01:00', 31 * 24 - 1],
      ['2026-04-01T00:00:00+02:00', 30 * 24],
      ['2026-05-01T00:00:00+02:00', 31 * 24],
      ['2026-06-01T00:00:00+02:00', 30 * 24],
      ['2026-07-01T00:00:00+02:00', 31 * 24],
      ['2026-08-01T00:00:00+02:00', 31 * 24],
      ['2026-09-01T00:00:00+02:00', 30 * 24],
      ['2026-10-01T00:00:00+02:00', 31 * 24 + 1],
      ['2026-11-01T00:00:00+01:00', 30 * 24],
    ]);
    expect(keyOf('Europe/Berlin', 'month', at('2028-02-29T12:00:00Z'))).toBe('2028-02-01T00:00:00+01:00');
    expect(windowsOf('Europe/Berlin', 'month', at('2028-01-31T23:00:00Z'), at('2028-02-29T23:00:00Z'))).toHaveLength(1);
  });
});

describe('the range', () => {
  it('from and to cut the first and last windows exactly; keys stay the windows own starts', () => {
    const from = at('2026-03-08T10:17:23.456Z');
    const to = at('2026-03-10T01:02:03.004Z');
    expect(windowsOf('America/Los_Angeles', 'day', from, to)).toEqual([
      { start: from, end: at('2026-03-09T07:00:00Z'), key: '2026-03-08T00:00:00-08:00' },
      { start: at('2026-03-09T07:00:00Z'), end: to, key: '2026-03-09T00:00:00-07:00' },
    ]);
    // A range inside one window is that window, cut at both ends.
    expect(windowsOf('Asia/Kolkata', 'month', from, to)).toEqual([{ start: from, end: to, key: '2026-03-01T00:00:00+05:30' }]);
  });

  it('an empty range has no windows; a reversed one is refused', () => {
    expect(windowsOf('Europe/Berlin', 'hour', at('2026-03-29T01:30:00Z'), at('2026-03-29T01:30:00Z'))).toEqual([]);
    expect(() => windowsOf('Europe/Berlin', 'hour', 2, 1)).toThrow(/to must not be before from/);
  });

  it('instants that are not integers in 0001..9999 are refused, naming the field', () => {
    expect(() => windowsOf('UTC', 'day', 0.5, 10)).toThrow(/^from must be an instant in epoch ms/);
    expect(() => windowsOf('UTC', 'day', 0, Number.MAX_SAFE_INTEGER)).toThrow(/^to must be an instant in epoch ms/);
    expect(() => keyOf('UTC', 'day', Number.NaN)).toThrow(/^ms must be/);
    expect(() => windowsOf('UTC', 'week' as Window, 0, 10)).toThrow('window must be one of hour, day, month, not "week"');
  });

  it('refuses more windows than the maximum before building any, naming from/to', () => {
    const from = at('2026-01-01T00:00:00Z');
    expect(windowsOf('UTC', 'hour', from, from + 10_000 * H)).toHaveLength(10_000);
    expect(() => windowsOf('UTC', 'hour', from, from + 10_000 * H + 1)).toThrow(
      /^from\/to: \[\d+, \d+\) spans more than 10000 hour windows, the most one request may ask for$/,
    );
    const berlinJanuary = at('2025-12-31T23:00:00Z');
    expect(windowsOf('Europe/Berlin', 'day', berlinJanuary, berlinJanuary + 31 * 24 * H, 31)).toHaveLength(31);
    expect(() => windowsOf('Europe/Berlin', 'day', berlinJanuary, berlinJanuary + 31 * 24 * H, 30)).toThrow(
      /spans more than 30 day windows/,
    );
    // All time by hour is refused by arithmetic alone (building it would take minutes).
    expect(() => windowsOf('Asia/Tehran', 'hour', at('0001-01-01T00:00:00Z'), at('9999-12-31T00:00:00Z'))).toThrow(/spans more than/);
    expect(() => windowsOf('UTC', 'hour', 0, 1, 0)).toThrow(/maxWindows must be a positive integer/);
  });
});

describe('UTC keys', () => {
  it('are exactly Date#toISOString of the window start, as GET /v1/usage group_by=hour|day answers today', () => {
    const ws = windowsOf('UTC', 'day', at('2026-03-07T12:00:00Z'), at('2026-03-09T12:00:00Z'));
    expect(ws.map((w) => w.key)).toEqual(['2026-03-07T00:00:00.000Z', '2026-03-08T00:00:00.000Z', '2026-03-09T00:00:00.000Z']);
    for (const ms of [0, at('2026-03-08T13:45:12.345Z'), at('1999-12-31T23:59:59.999Z')]) {
      expect(keyOf('UTC', 'hour', ms)).toBe(new Date(Math.floor(ms / H) * H).toISOString());
      expect(keyOf('Etc/UTC', 'day', ms)).toBe(new Date(Math.floor(ms / (24 * H)) * 24 * H).toISOString());
    }
    expect(keyOf('UTC', 'month', at('2026-02-14T00:00:00Z'))).toBe('2026-02-01T00:00:00.000Z');
  });

  it('Europe/London in winter keeps its zone: +00:00, not Z', () => {
    expect(keyOf('Europe/London', 'day', at('2026-01-10T12:00:00Z'))).toBe('2026-01-10T00:00:00+00:00');
  });
});

describe('checkTimeZone', () => {
  it('returns the canonical IANA name', () => {
    expect(checkTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(checkTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(checkTimeZone('Etc/UTC')).toBe('UTC');
    expect(checkTimeZone('GMT')).toBe('UTC');
    expect(checkTimeZone('Zulu')).toBe('UTC');
    expect(checkTimeZone('Etc/Universal')).toBe('UTC');
    expect(checkTimeZone('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(checkTimeZone('Asia/Calcutta')).toBe('Asia/Kolkata');
    expect(checkTimeZone('US/Pacific')).toBe('America/Los_Angeles');
    expect(checkTimeZone('Etc/GMT-2')).toBe('Etc/GMT-2');
  });

  it.each([
    ['an unknown name', 'Mars/Olympus_Mons', 'tz must be an IANA time zone name such as Europe/Berlin, not "Mars/Olympus_Mons"'],
    ['a UTC offset', '+02:00', 'tz must be an IANA time zone name such as Europe/Berlin, not "+02:00"'],
    ['an offset without colon', '-0800', 'tz must be an IANA time zone name such as Europe/Berlin, not "-0800"'],
    ['an empty string', '', 'tz must be an IANA time zone name such as Europe/Berlin (1 to 64 characters, got 0)'],
    ['65 characters', `Europe/${'x'.repeat(58)}`, 'tz must be an IANA time zone name such as Europe/Berlin (1 to 64 characters, got 65)'],
    ['a number', 2, 'tz must be an IANA time zone name such as Europe/Berlin, not number'],
    ['null', null, 'tz must be an IANA time zone name such as Europe/Berlin, not null'],
    ['a control character', 'Europe/Berlin\n', 'tz must be an IANA time zone name such as Europe/Berlin, not "Europe/Berlin\\n"'],
  ])('refuses %s with a RangeError naming tz and the rule', (_what, tz, message) => {
    expect(() => checkTimeZone(tz)).toThrow(RangeError);
    expect(() => checkTimeZone(tz)).toThrow(message);
  });

  it('a megabyte of input is refused by its length before any other work', () => {
    expect(() => checkTimeZone('A'.repeat(1 << 20))).toThrow('(1 to 64 characters, got 1048576)');
    expect(() => windowsOf('Nowhere/Land', 'day', 0, 1)).toThrow(/^tz must be/);
  });
});

describe('buckets', () => {
  it('BUCKET_MS is 15 minutes and isBucketAligned says whether an instant is on its edge', () => {
    expect(BUCKET_MS).toBe(15 * 60_000);
    expect(isBucketAligned(at('2026-03-08T10:45:00Z'))).toBe(true);
    expect(isBucketAligned(at('2026-03-08T10:45:00.001Z'))).toBe(false);
    expect(isBucketAligned(-BUCKET_MS)).toBe(true);
    expect(isBucketAligned(1.5)).toBe(false);
  });

  it('zoneEdgesAligned: true for offsets in use today, false over a local mean time', () => {
    const from = at('2020-01-01T00:00:00Z');
    const to = at('2027-01-01T00:00:00Z');
    for (const tz of ['UTC', 'Europe/Berlin', 'Asia/Kathmandu', 'Pacific/Chatham', 'Australia/Lord_Howe', 'Asia/Beirut'])
      expect([tz, zoneEdgesAligned(tz, from, to)]).toEqual([tz, true]);
    // Liberia kept Monrovia Mean Time (-00:44:30) until 1972-01-07; Brussels its LMT (+00:17:30) until 1880.
    expect(zoneEdgesAligned('Africa/Monrovia', at('1970-01-01T00:00:00Z'), at('1971-01-01T00:00:00Z'))).toBe(false);
    expect(zoneEdgesAligned('Africa/Monrovia', at('1973-01-01T00:00:00Z'), at('1974-01-01T00:00:00Z'))).toBe(true);
    expect(zoneEdgesAligned('Europe/Brussels', at('1850-01-01T00:00:00Z'), at('1850-01-02T00:00:00Z'))).toBe(false);
    // A range without any hour edge has nothing misaligned.
    expect(zoneEdgesAligned('Africa/Monrovia', at('1970-01-01T00:50:00Z'), at('1970-01-01T01:10:00Z'))).toBe(true);
  });

  it('a key under a local mean time keeps the seconds of its offset, so it still names the exact instant', () => {
    expect(keyOf('Africa/Monrovia', 'day', at('1970-06-01T12:00:00Z'))).toBe('1970-06-01T00:00:00-00:44:30');
    expect(windowStart('Africa/Monrovia', 'day', at('1970-06-01T12:00:00Z'))).toBe(at('1970-06-01T00:44:30Z'));
  });
});

describe('pure, for the browser bundle', () => {
  it('src/usage/time-zone.ts imports nothing and uses no Node global: its zone rules are Intl', () => {
    const src = readFileSync(new URL('../../src/usage/time-zone.ts', import.meta.url), 'utf8');
    const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
    expect(code).not.toMatch(/^\s*import\b[^;]*\bfrom\s/m);
    expect(code).not.toMatch(/\b(Buffer|process|require)\s*[.(]|\bimport\s*\(/);
  });
});

// ---- property: windows tile [from, to) and each key names its window's uncut start ----

/** The instant a key names (RFC 3339, or an offset with seconds under a local mean time). */
function instantOfKey(key: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?)(Z|([+-])(\d{2}):(\d{2})(?::(\d{2}))?)$/.exec(key);
  if (!m) throw new Error(`not a key: ${key}`);
  const local = Date.parse(`${m[1]}Z`);
  if (m[2] === 'Z') return local;
  const offset = (Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6] ?? 0)) * 1000;
  return m[3] === '-' ? local + offset : local - offset;
}

const formats = new Map<string, Intl.DateTimeFormat>();
/** An oracle independent of the module: the local label the runtime gives an instant. */
function labelOf(tz: string, window: Window, ms: number): string {
  let format = formats.get(tz);
  if (!format) {
    const options = { hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit' } as const;
    formats.set(tz, (format = new Intl.DateTimeFormat('en-US', { ...options, timeZone: tz, timeZoneName: 'longOffset' })));
  }
  const parts = format.formatToParts(ms);
  const part = (type: string) => parts.find((p) => p.type === type)?.value;
  const month = `${part('year')}-${part('month')}`;
  if (window === 'month') return month;
  if (window === 'day') return `${month}-${part('day')}`;
  return `${month}-${part('day')}T${part('hour')} ${part('timeZoneName')}`;
}

describe('property: windows tile the range exactly, in any zone', () => {
  const zones = Intl.supportedValuesOf('timeZone');
  const seed = Number(process.env.TZ_PROPERTY_SEED ?? 20261206);
  const next = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const span: Record<Window, number> = { hour: 200 * H, day: 120 * 24 * H, month: 30 * 31 * 24 * H };
  const lo = at('1900-01-01T00:00:00Z');
  const hi = at('2100-01-01T00:00:00Z');

  it(`300 random zones, windows and ranges (seed ${seed}; TZ_PROPERTY_SEED=<n> to replay)`, () => {
    for (let run = 0; run < 300; run++) {
      const tz = pick(zones);
      const window = pick(['hour', 'day', 'month'] as const);
      const from = lo + Math.floor(next() * (hi - lo));
      // Some ranges land on whole seconds or hours, where edges and DST changes sit.
      const round = pick([1, 1000, H]);
      const a = Math.floor(from / round) * round;
      const b = a + Math.floor(next() * span[window]);
      const label = `${tz} ${window} [${new Date(a).toISOString()}, ${new Date(b).toISOString()})`;
      const ws = windowsOf(tz, window, a, b);
      expect(ws.length, label).toBeGreaterThan(0);
      expect(ws[0]!.start, label).toBe(a);
      expect(ws.at(-1)!.end, label).toBe(b);
      for (const [i, w] of ws.entries()) {
        const where = `${label} window ${i} ${w.key}`;
        expect(w.start, where).toBeLessThan(w.end);
        if (i > 0) expect(w.start, where).toBe(ws[i - 1]!.end);
        const uncut = instantOfKey(w.key);
        if (i > 0) expect(uncut, where).toBe(w.start);
        else expect(uncut, where).toBeLessThanOrEqual(w.start);
        // The runtime agrees: one label from the uncut start to the end, another just before it.
        expect(labelOf(tz, window, w.end - 1), where).toBe(labelOf(tz, window, uncut));
        expect(labelOf(tz, window, uncut - 1), where).not.toBe(labelOf(tz, window, uncut));
        if (i + 1 < ws.length) expect(labelOf(tz, window, w.end), where).not.toBe(labelOf(tz, window, w.end - 1));
        // One instant's own answers agree with the list.
        const inside = w.start + Math.floor(next() * (w.end - w.start));
        expect(windowStart(tz, window, inside), where).toBe(uncut);
        expect(keyOf(tz, window, inside), where).toBe(w.key);
      }
    }
  });
});
