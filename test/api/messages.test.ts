// Messages a client reads: plain sentences with the right grammar, naming the field and the rule.
import { afterEach, expect, it } from 'vitest';
import { event, testServer, type TestServer } from '../helpers.ts';

let s: TestServer | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

it('a conflicting retry names the field: "a different value of units", not "a different units"', async () => {
  s = await testServer();
  const e = event({ units: 3 });
  expect((await s.post(e)).json().results[0].status).toBe('created');
  const conflict = (await s.post({ ...e, units: 4 })).json().results[0];
  expect(conflict.status).toBe('conflict');
  expect(conflict.errors).toEqual([
    {
      path: 'units',
      rule: 'same_as_recorded',
      message: `request_id "${e.request_id}" was already recorded with a different value of units; nothing was changed`,
    },
  ]);
});

it.each([
  [1, '1 day'],
  [2, '2 days'],
])('an event older than a window of %i day(s) says "%s"', async (days, words) => {
  s = await testServer({ maxEventAgeMs: days * 86_400_000 });
  const res = (await s.post(event({ ts: Date.now() - (days + 1) * 86_400_000 }))).json().results[0];
  expect(res.errors[0].message).toBe(`ts is older than the accepted window of ${words}`);
});
