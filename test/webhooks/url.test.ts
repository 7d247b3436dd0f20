// A webhook cannot be turned against the service's own network (issue 25): the address rule holds
// at connect time too. A name that resolved to a public address when the webhook was made and
// rebinds to 127.0.0.1 later is refused before any connection (the receiver on 127.0.0.1 gets
// nothing, the attempt says why); the connection goes to the address the check saw. With
// --webhook-allow-private the same name is delivered, through the same lookup.
import { afterEach, expect, it } from 'vitest';
import { SqliteLedger } from '../../src/ledger/index.ts';
import { WebhookDeliverer } from '../../src/webhooks/delivery.ts';
import { alertOf } from '../../src/webhooks/payload.ts';
import { checkWebhookTarget, isPublicAddress } from '../../src/webhooks/url.ts';
import { until } from '../helpers.ts';
import { crossing, startReceiver } from './receiver.ts';

const FAST = { pollMs: 20, backoff: { baseMs: 40, maxMs: 80 }, timeoutMs: 1000 };
const open: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});

it('judges addresses by their range: only public unicast passes, IPv4-mapped IPv6 as its IPv4', () => {
  for (const a of ['8.8.8.8', '93.184.215.14', '2606:4700::1111']) expect(isPublicAddress(a), a).toBe(true);
  for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1']) {
    expect(isPublicAddress(a), a).toBe(false);
  }
  for (const a of [
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '64:ff9b::7f00:1',
    '2002:7f00:1::',
    'ff02::1',
  ]) {
    expect(isPublicAddress(a), a).toBe(false);
  }
  expect(isPublicAddress('not an address')).toBe(false);
});

it('refuses a name that rebinds to a private address at connect time, before connecting; allows it with allowPrivate', async () => {
  const r = await startReceiver();
  open.push(r);
  const ledger = new SqliteLedger(':memory:');
  open.push(ledger);
  let lookups = 0;
  // The first answer (when the webhook is made) is public; every later one is the receiver's 127.0.0.1.
  const rebinding = async (host: string) => {
    expect(host).toBe('hooks.rebind.test');
    return lookups++ === 0 ? [{ address: '93.184.215.14', family: 4 }] : [{ address: '127.0.0.1', family: 4 }];
  };
  const url = `http://hooks.rebind.test:${r.port}/hook`;
  await checkWebhookTarget(url, { allowPrivate: false }, rebinding); // passes: public now
  const { webhook } = await ledger.webhooks.create('acme-inc', { url, namespaces: ['acme/*'] }, Date.now());
  await ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));

  const strict = new WebhookDeliverer({ store: ledger.webhooks, policy: { allowPrivate: false }, resolver: rebinding, ...FAST });
  strict.start();
  await until(async () => (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!.attempts.length >= 1);
  await strict.stop();
  const refused = (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!.attempts.at(-1)!;
  expect(refused).toMatchObject({ attempt: 1, status: null, outcome: 'retry' });
  expect(refused.error).toMatch(/hooks\.rebind\.test resolves to 127\.0\.0\.1, a loopback address: webhooks go to public addresses only/);
  expect(r.received).toHaveLength(0);

  // The same lookup with the address rule lifted: the connection goes where it said (the receiver).
  await ledger.webhooks.record({ ...refused, webhook_id: webhook.id, attempt: 2, outcome: 'retry', next_at_ms: 0 }); // due now
  const lenient = new WebhookDeliverer({ store: ledger.webhooks, policy: { allowPrivate: true }, resolver: rebinding, ...FAST });
  lenient.start();
  await until(() => r.received.length === 1);
  await until(async () => (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!.messages[0]!.state === 'delivered');
  await lenient.stop();
});

it('checks an IP-literal URL again when sending: a webhook made while private addresses were allowed is not sent once they are not', async () => {
  const r = await startReceiver();
  open.push(r);
  const ledger = new SqliteLedger(':memory:');
  open.push(ledger);
  const { webhook } = await ledger.webhooks.create('acme-inc', { url: r.url, namespaces: ['acme/*'] }, Date.now());
  await ledger.webhooks.enqueueAlert(alertOf(crossing(), Date.now()));
  const strict = new WebhookDeliverer({ store: ledger.webhooks, policy: { allowPrivate: false }, ...FAST });
  strict.start();
  await until(async () => (await ledger.webhooks.deliveries(webhook.id, undefined, 10))!.attempts.length >= 1);
  await strict.stop();
  expect((await ledger.webhooks.deliveries(webhook.id, undefined, 10))!.attempts[0]!.error).toMatch(/127\.0\.0\.1, a loopback address/);
  expect(r.received).toHaveLength(0);
});
