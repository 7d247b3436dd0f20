// `receipts keys create|list|revoke`: safe while servers run on the same ledger.
import { type Command, Option } from 'commander';
import { DEFAULT_RIGHTS, type KeyStore, parseRights, RIGHTS, type Right } from '../ledger/index.ts';
import { refuseWhileMigrating } from './lock.ts';
import { CliError } from './errors.ts';
import { dbOption, listOf, withLedger } from './options.ts';

const withKeys = <T>(db: string, fn: (keys: KeyStore) => Promise<T>, create = false): Promise<T> => {
  refuseWhileMigrating(db, 'the keys are not touched'); // a change now would be missing from the copy
  return withLedger(db, (ledger) => fn(ledger.keys), { create });
};

export function addKeysCommands(program: Command): void {
  const keys = program.command('keys').description('create, list and revoke API keys');

  keys
    .command('create')
    .description('create an API key; the key is printed once and only its hash is stored')
    .addOption(dbOption())
    .requiredOption('--owner <name>', 'who the key belongs to (recorded with every event it sends)')
    .addOption(
      new Option('--namespace <pattern>', 'namespace the key may write and read; * matches any run (repeatable)')
        .argParser(listOf)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--rights <list>',
        `what the key may do, comma-separated: ${RIGHTS.join(', ')} (record: post events; read: usage, receipts, events, epochs; correct: void and amend; admin: meters, limits, webhooks of its namespaces); default ${DEFAULT_RIGHTS.join(',')}`,
      )
        // No commander default: listOf would add the given rights to it.
        .argParser(listOf),
    )
    .option('--json', 'print JSON')
    .action(async (opts: { db: string; owner: string; namespace: string[]; rights?: string[]; json?: boolean }) => {
      let rights: Right[];
      try {
        rights = parseRights(opts.rights ?? DEFAULT_RIGHTS);
      } catch (err) {
        throw new CliError('usage', (err as Error).message); // before the ledger is opened or created
      }
      const created = await withKeys(opts.db, (k) => k.create(opts.owner, opts.namespace, undefined, rights), true);
      const out = { key: created.key, id: created.id, owner: created.owner, namespaces: created.namespaces, rights: created.rights };
      if (opts.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else {
        process.stdout.write(
          `key:        ${out.key}\nid:         ${out.id}\nowner:      ${out.owner}\nnamespaces: ${out.namespaces.join(', ')}\nrights:     ${out.rights.join(', ')}\n\n` +
            'The key is shown this once; only its hash is stored. Send it as: Authorization: Bearer <key>\n',
        );
      }
    });

  keys
    .command('list')
    .description('list keys (ids, owners, namespaces, rights; never the keys themselves)')
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (opts: { db: string; json?: boolean }) => {
      const list = await withKeys(opts.db, (k) => k.list());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(list)}\n`);
        return;
      }
      if (list.length === 0) process.stdout.write('no keys; create one with `receipts keys create --owner NAME --namespace PATTERN`\n');
      for (const k of list) {
        const state = k.revoked_at ? `revoked ${new Date(k.revoked_at).toISOString()}` : 'active';
        // Right names this build does not know are shown (marked), never hidden: they grant nothing here.
        const rights = [...k.rights, ...(k.unknown_rights ?? []).map((r) => `${r}(unknown)`)].join(',') || 'no rights';
        process.stdout.write(
          `${k.id}  ${k.owner}  ${k.namespaces.join(',')}  ${rights}  created ${new Date(k.created_at).toISOString()}  ${state}\n`,
        );
      }
    });

  keys
    .command('revoke')
    .description('revoke a key by id; takes effect at once, also in a running server')
    .argument('<id>', 'key id, as shown by `keys list`')
    .addOption(dbOption())
    .action(async (id: string, opts: { db: string }) => {
      const done = await withKeys(opts.db, (k) => k.revoke(id));
      if (!done) throw new CliError('not_found', `no active key with id ${id}; see \`receipts keys list\``);
      process.stdout.write(`revoked ${id}\n`);
    });
}
