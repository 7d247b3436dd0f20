// `receipts witness serve`: a C2SP tlog-witness for the logs given with --log, cosigning with a
// key file made by `signing-key create` (as signature type 0x04), its state in its own SQLite
// file. The start line logs the cosigner's verifier key (never the private key).
import { type Command, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import {
  type CheckpointError,
  cosignerVerifierOf,
  formatVerifierKey,
  parseVerifierKey,
  SIG_ED25519,
  type NoteVerifier,
} from '../checkpoint/index.ts';
import { createWitnessServer } from '../witness/server.ts';
import { WitnessStore } from '../witness/store.ts';
import { CliError } from './errors.ts';
import { integerIn } from './options.ts';
import { hostArg, listenProblem } from './serve.ts';
import { readKeyFile } from './signing-key.ts';

interface WitnessServeOptions {
  key: string;
  db: string;
  host: string;
  port: number;
  log: NoteVerifier[];
  logLevel: string;
}

/** --log VKEY: a log's Ed25519 verifier key (type 0x01, as signing-key create prints); its name is the origin. */
function logKeyArg(value: string, previous: NoteVerifier[] | undefined): NoteVerifier[] {
  let v: NoteVerifier;
  try {
    v = parseVerifierKey(value);
  } catch (err) {
    throw new InvalidArgumentError(`must be a log's verifier key name+hex8+base64: ${(err as CheckpointError).message}`);
  }
  if (v.type !== SIG_ED25519) throw new InvalidArgumentError("must be a log's Ed25519 verifier key (type 0x01), not a cosigner key");
  return [...(previous ?? []), v];
}

export function addWitnessCommands(program: Command): void {
  const cmd = program.command('witness').description('run a transparency-log witness (C2SP tlog-witness) that cosigns checkpoints');
  cmd
    .command('serve')
    .description('serve POST /add-checkpoint: cosign each checkpoint of a known log that is consistent with the last one cosigned')
    .requiredOption(
      '--key <file>',
      'the key file (signing-key create) the witness cosigns with, as type 0x04; its name is the witness name',
    )
    .requiredOption('--db <file>', "the witness's own SQLite file: the latest checkpoint cosigned per log (created if missing)")
    .requiredOption('--log <vkey>', "a log's verifier key (repeat for several logs, or several keys of one log)", logKeyArg)
    .addOption(new Option('--host <host>', 'address to listen on').default('127.0.0.1').argParser(hostArg))
    .addOption(new Option('--port <n>', 'port (0: any free port)').default(8090).argParser(integerIn(0, 65535)))
    .addOption(
      new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'),
    )
    .action(async (opts: WitnessServeOptions) => {
      const key = readKeyFile(opts.key);
      const logs = new Map<string, NoteVerifier[]>();
      for (const v of opts.log) logs.set(v.name, [...(logs.get(v.name) ?? []), v]);
      const logger = pino({ level: opts.logLevel });
      const store = new WitnessStore(opts.db);
      const server = createWitnessServer({ key, logs, store, logger });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          store.close();
          reject(new CliError('listen_failed', listenProblem(opts.host, opts.port, err), { cause: err }));
        });
        server.listen(opts.port, opts.host, resolve);
      });
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : opts.port;
      const stop = (signal: string) => {
        logger.info({ signal }, 'witness stopping');
        server.close(() => {
          store.close();
          process.exit(0);
        });
        server.closeIdleConnections();
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      logger.info(
        {
          url: `http://${opts.host}:${port}`,
          // What a log gives `serve --witness URL=VKEY`; the 0x01 vkey of the same key file works too.
          vkey: formatVerifierKey(cosignerVerifierOf(key)),
          logs: [...logs.keys()],
          db: opts.db,
        },
        `witness ${key.name} listening at http://${opts.host}:${port}`,
      );
    });
}
