// `receipts keys create|list|revoke`: safe while the server runs on the same file (WAL, busy timeout).
import { Command, Option } from 'commander';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { KeyStore } from '../ledger/keys.ts';
import { dbOption, listOf, openLedger } from './options.ts';

function withKeys<T>(file: string, fn: (keys: KeyStore) => T, create = false): T {
  const { db, created } = openLedger(file, { create });
  let result: T;
  try {
    result = fn(new KeyStore(db));
  } catch (err) {
    db.close();
    // A refused `keys create` leaves no new, empty ledger behind.
    if (created) for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    throw err;
  }
  db.close();
  if (created) process.stderr.write(`created a new ledger at ${file} (${resolve(file)})\n`);
  return result;
}

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
    .option('--json', 'print JSON')
    .action((opts: { db: string; owner: string; namespace: string[]; json?: boolean }) => {
      const created = withKeys(opts.db, (k) => k.create(opts.owner, opts.namespace), true);
      const out = { key: created.key, id: created.id, owner: created.owner, namespaces: created.namespaces };
      if (opts.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else {
        process.stdout.write(
          `key:        ${out.key}\nid:         ${out.id}\nowner:      ${out.owner}\nnamespaces: ${out.namespaces.join(', ')}\n\n` +
            'The key is shown this once; only its hash is stored. Send it as: Authorization: Bearer <key>\n',
        );
      }
    });

  keys
    .command('list')
    .description('list keys (ids, owners, namespaces; never the keys themselves)')
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action((opts: { db: string; json?: boolean }) => {
      const list = withKeys(opts.db, (k) => k.list());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(list)}\n`);
        return;
      }
      if (list.length === 0) process.stdout.write('no keys; create one with `receipts keys create --owner NAME --namespace PATTERN`\n');
      for (const k of list) {
        const state = k.revoked_at ? `revoked ${new Date(k.revoked_at).toISOString()}` : 'active';
        process.stdout.write(`${k.id}  ${k.owner}  ${k.namespaces.join(',')}  created ${new Date(k.created_at).toISOString()}  ${state}\n`);
      }
    });

  keys
    .command('revoke')
    .description('revoke a key by id; takes effect at once, also in a running server')
    .argument('<id>', 'key id, as shown by `keys list`')
    .addOption(dbOption())
    .action((id: string, opts: { db: string }) => {
      const done = withKeys(opts.db, (k) => k.revoke(id));
      if (!done) throw new Error(`no active key with id ${id}; see \`receipts keys list\``);
      process.stdout.write(`revoked ${id}\n`);
    });
}
