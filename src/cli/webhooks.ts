// `receipts webhooks create|list|delete|deliveries`: an operator's view of the owners' alert
// webhooks (docs/operations.md "Webhooks"), safe while servers run on the same ledger. The URL
// rules are the API's (public addresses only unless --allow-private); the secret is printed once.
import { type Command, Option } from 'commander';
import { type Ledger, WebhookError } from '../ledger/index.ts';
import { checkWebhookTarget } from '../webhooks/url.ts';
import { CliError } from './errors.ts';
import { refuseWhileMigrating } from './lock.ts';
import { dbOption, integerIn, listOf, withLedger } from './options.ts';

const withWebhooks = <T>(db: string, fn: (ledger: Ledger) => Promise<T>): Promise<T> => {
  refuseWhileMigrating(db, 'the webhooks are not touched');
  return withLedger(db, fn);
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function addWebhooksCommands(program: Command): void {
  const webhooks = program.command('webhooks').description("create, list and delete the owners' limit-alert webhooks");

  webhooks
    .command('create')
    .description('add a webhook; its signing secret (whsec_…) is printed once')
    .addOption(dbOption())
    .requiredOption('--owner <name>', 'whose limit alerts it receives')
    .requiredOption('--url <url>', 'http(s) URL of the receiver (a public address unless --allow-private; no credentials)')
    .addOption(
      new Option('--namespace <pattern>', 'namespace pattern whose alerts it receives; * matches any run (repeatable)')
        .argParser(listOf)
        .makeOptionMandatory(),
    )
    .option(
      '--allow-private',
      'accept a loopback, private or link-local receiver (serve must run with --webhook-allow-private to send there)',
    )
    .option('--json', 'print JSON')
    .action(async (opts: { db: string; owner: string; url: string; namespace: string[]; allowPrivate?: boolean; json?: boolean }) => {
      try {
        await checkWebhookTarget(opts.url, { allowPrivate: opts.allowPrivate ?? false });
      } catch (err) {
        throw new CliError('usage', `--url: ${(err as Error).message}`);
      }
      const made = await withWebhooks(opts.db, async (ledger) => {
        try {
          return await ledger.webhooks.create(opts.owner, { url: opts.url, namespaces: opts.namespace }, Date.now());
        } catch (err) {
          if (err instanceof WebhookError)
            throw new CliError(
              'usage',
              `--${err.field === 'url' ? 'url' : err.field.replace(/^namespaces.*/, 'namespace')}: ${err.message}`,
            );
          throw err;
        }
      });
      const w = made.webhook;
      const out = { id: w.id, owner: w.owner, url: w.url, namespaces: w.namespaces, created_at: iso(w.created_at_ms), secret: made.secret };
      if (opts.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else
        process.stdout.write(
          `id:         ${out.id}\nowner:      ${out.owner}\nurl:        ${out.url}\nnamespaces: ${out.namespaces.join(', ')}\nsecret:     ${out.secret}\n\n` +
            'The secret is shown this once. Receivers verify each message with it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).\n',
        );
    });

  webhooks
    .command('list')
    .description('list webhooks (ids, owners, URLs, namespaces; never the secrets)')
    .addOption(dbOption())
    .option('--owner <name>', "only this owner's")
    .option('--json', 'print JSON')
    .action(async (opts: { db: string; owner?: string; json?: boolean }) => {
      const list = (await withWebhooks(opts.db, (l) => l.webhooks.list(opts.owner))).map((w) => ({
        id: w.id,
        owner: w.owner,
        url: w.url,
        namespaces: w.namespaces,
        created_at: iso(w.created_at_ms),
      }));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(list)}\n`);
        return;
      }
      if (list.length === 0)
        process.stdout.write('no webhooks; add one with `receipts webhooks create --owner NAME --url URL --namespace PATTERN`\n');
      for (const w of list) process.stdout.write(`${w.id}  ${w.owner}  ${w.url}  ${w.namespaces.join(',')}  created ${w.created_at}\n`);
    });

  webhooks
    .command('delete')
    .description('delete a webhook with its messages and attempt log (messages not yet delivered are discarded, and counted)')
    .argument('<id>', 'webhook id, as shown by `webhooks list`')
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { db: string; json?: boolean }) => {
      const done = await withWebhooks(opts.db, (l) => l.webhooks.delete(id));
      if (!done) throw new CliError('not_found', `no webhook with id ${id.slice(0, 64)}; see \`receipts webhooks list\``);
      if (opts.json) process.stdout.write(`${JSON.stringify({ id, deleted: true, discarded: done.discarded })}\n`);
      else process.stdout.write(`deleted ${id}${done.discarded > 0 ? ` (${done.discarded} undelivered messages discarded)` : ''}\n`);
    });

  webhooks
    .command('deliveries')
    .description("a webhook's messages and delivery attempts, newest first")
    .argument('<id>', 'webhook id')
    .addOption(dbOption())
    .addOption(new Option('--limit <n>', 'at most this many of each').default(20).argParser(integerIn(1, 1000)))
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { db: string; limit: number; json?: boolean }) => {
      const found = await withWebhooks(opts.db, (l) => l.webhooks.deliveries(id, undefined, opts.limit));
      if (!found) throw new CliError('not_found', `no webhook with id ${id.slice(0, 64)}; see \`receipts webhooks list\``);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ webhook_id: id, ...found })}\n`);
        return;
      }
      for (const m of found.messages)
        process.stdout.write(`${m.id}  ${m.state}  attempts ${m.attempts}  queued ${iso(m.created_at_ms)}  ${m.alert_key}\n`);
      for (const a of found.attempts)
        process.stdout.write(`  ${iso(a.at_ms)}  ${a.message_id} #${a.attempt}  ${a.outcome}  ${a.status ?? '-'}  ${a.error ?? ''}\n`);
    });
}
