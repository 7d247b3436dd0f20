// The page's time rules (src/web/time.ts), in a zone with daylight saving and a fixed one.
// Node reads TZ when a date is next formatted, so setting it here applies to this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatIn,
  formatLocal,
  isZone,
  nextWindowIn,
  offsetLabel,
  offsetMinutes,
  parseInputIn,
  readKey,
  windowStartIn,
  zoneChoices,
  zonedPlan,
} from '../../src/web/time.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
let saved: string | undefined;
beforeAll(() => {
  saved = process.env.TZ;
  process.env.TZ = 'America/New_York';
});
afterAll(() => {
  if (saved === undefined) delete process.env.TZ;
  else process.env.TZ = saved;
});

const NY = 'America/New_York';

describe('local time in and out', () => {
  it('reads a datetime-local value in the zone, across a daylight-saving change', () => {
    expect(parseInputIn(NY, '2026-03-08T01:30')).toBe(Date.parse('2026-03-08T06:30:00Z')); // EST
    expect(parseInputIn(NY, '2026-03-08T03:30')).toBe(Date.parse('2026-03-08T07:30:00Z')); // EDT
    expect(parseInputIn(NY, '2026-07-01T12:00:30')).toBe(Date.parse('2026-07-01T16:00:30Z'));
    expect(parseInputIn(NY, '2026-07-01T12:00:30.5')).toBe(Date.parse('2026-07-01T16:00:30.500Z'));
  });

  it('refuses what is not a date and time', () => {
    for (const bad of [
      '',
      '2026-03-08',
      '2026-02-31T00:00',
      '2026-13-01T00:00',
      'x2026-03-08T01:30',
      '2026-03-08T01:30Z',
      '2026-03-08T24:00',
    ])
      expect(parseInputIn(NY, bad)).toBeUndefined();
  });

  it('formats an instant in the local zone (the trust panel) and names a zone offset', () => {
    expect(formatLocal(Date.parse('2026-03-08T07:30:05Z'))).toBe('2026-03-08 03:30:05');
    expect(offsetLabel(offsetMinutes(NY, Date.parse('2026-01-01T00:00:00Z')))).toBe('UTC-05:00');
    expect(offsetLabel(offsetMinutes(NY, Date.parse('2026-07-01T00:00:00Z')))).toBe('UTC-04:00');
  });
});

describe('zonedPlan', () => {
  const now = Date.parse('2026-06-15T14:20:00Z'); // 10:20 in New York

  it('one hour of data: one bar in a window of a day, in hours', () => {
    const p = zonedPlan(NY, 'hour', [{ t: Date.parse('2026-06-15T13:00:00Z'), units: 7 }], {}, now);
    expect(p.max).toBe(Date.parse('2026-06-15T15:00:00Z'));
    expect(p.max - p.min).toBe(25 * HOUR);
    expect(p.units.filter((u) => u > 0)).toEqual([7]);
    expect(p.units).toHaveLength(25);
  });

  it('30 days of data: daily bars starting at midnight in the zone, not the local one', () => {
    const days = Array.from({ length: 30 }, (_, i) => ({ t: now - (30 - i) * DAY, units: 2 }));
    const p = zonedPlan('Asia/Kolkata', 'day', days, {}, now);
    expect(formatIn('Asia/Kolkata', p.min)).toBe('2026-05-16 00:00:00');
    expect(formatIn('Asia/Kolkata', p.max)).toBe('2026-06-16 00:00:00');
    expect(p.units).toHaveLength(31);
    expect(p.units.reduce((a, b) => a + b)).toBe(60);
  });

  it('a chosen range is shown as chosen; days are local days, 23 h across the DST change', () => {
    const from = parseInputIn(NY, '2026-03-01T00:00')!;
    const to = parseInputIn(NY, '2026-03-15T00:00')!;
    const p = zonedPlan(NY, 'day', [{ t: parseInputIn(NY, '2026-03-08T00:00')!, units: 4 }], { from, to }, now);
    expect(p).toMatchObject({ group: 'day', min: from, max: to });
    expect(p.starts).toHaveLength(14);
    expect(p.starts[8]! - p.starts[7]!).toBe(23 * HOUR); // March 8 is 23 hours long in New York
    expect(p.units[7]).toBe(4);
  });

  it('no data: the last day in hours, the last 90 days in months', () => {
    const p = zonedPlan(NY, 'hour', [], {}, now);
    expect(p.max - p.min).toBe(25 * HOUR);
    expect(p.units.every((u) => u === 0)).toBe(true);
    const m = zonedPlan(NY, 'month', [], {}, now);
    expect(m.starts.map((t) => formatIn(NY, t))).toEqual([
      '2026-03-01 00:00:00',
      '2026-04-01 00:00:00',
      '2026-05-01 00:00:00',
      '2026-06-01 00:00:00',
    ]);
  });
});

describe('a chosen zone, whatever the local one', () => {
  const LA = 'America/Los_Angeles';
  it('reads wall times in the zone across daylight saving: a skipped time moves forward, a repeated one is its first', () => {
    expect(parseInputIn(LA, '2026-03-08T01:30')).toBe(Date.parse('2026-03-08T09:30:00Z'));
    expect(parseInputIn(LA, '2026-03-08T02:30')).toBe(Date.parse('2026-03-08T10:30:00Z')); // = 03:30 PDT
    expect(parseInputIn(LA, '2026-11-01T01:30')).toBe(Date.parse('2026-11-01T08:30:00Z')); // PDT, the first
    expect(parseInputIn('Asia/Kolkata', '2026-01-10T00:00')).toBe(Date.parse('2026-01-09T18:30:00Z'));
    expect(parseInputIn('UTC', '0005-01-01T00:00')).toBe(Date.parse('0005-01-01T00:00:00Z'));
    expect(parseInputIn(LA, '2026-02-31T00:00')).toBeUndefined();
    expect(formatIn('Asia/Kolkata', Date.parse('2026-01-01T00:00:00Z'))).toBe('2026-01-01 05:30:00');
  });

  it('steps local days and months: the DST day is 23 hours, months start at local midnight', () => {
    const d = windowStartIn(LA, 'day', Date.parse('2026-03-08T12:00:00Z'));
    expect(d).toBe(Date.parse('2026-03-08T08:00:00Z'));
    expect(nextWindowIn(LA, 'day', d) - d).toBe(23 * HOUR);
    const m = windowStartIn('Asia/Kolkata', 'month', Date.parse('2026-03-08T12:00:00Z'));
    expect(m).toBe(Date.parse('2026-02-28T18:30:00Z'));
    expect(nextWindowIn('Asia/Kolkata', 'month', m)).toBe(Date.parse('2026-03-31T18:30:00Z'));
    expect(offsetLabel(offsetMinutes('Asia/Kolkata', 0))).toBe('UTC+05:30');
  });

  it('labels a key by its own local time and offset, and refuses what is not a zone', () => {
    expect(readKey('2026-03-08T00:00:00-08:00', 'day')).toEqual({
      t: Date.parse('2026-03-08T08:00:00Z'),
      label: '2026-03-08 (UTC-08:00)',
      offset: 'UTC-08:00',
    });
    expect(readKey('2026-03-08T05:00:00.000Z', 'hour')?.label).toBe('2026-03-08 05:00 (UTC+00:00)');
    expect(readKey('2026-03-01T00:00:00+05:30', 'month')?.label).toBe('2026-03 (UTC+05:30)');
    expect(readKey('acme', 'day')).toBeUndefined();
    expect(isZone('Asia/Kolkata')).toBe(true);
    for (const bad of ['Mars/Olympus', '', 'a'.repeat(100), '../etc', 'UTC\n']) expect(isZone(bad)).toBe(false);
    expect(zoneChoices()[0]).toBe('UTC');
    expect(zoneChoices()).toContain('Asia/Kolkata');
  });
});
