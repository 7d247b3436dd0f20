// `receipts serve`: the API on the ledger, with a clean stop on SIGINT/SIGTERM.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import pino from 'pino';
import { buildService } from '../service.ts';
import { describeLocation, isPostgresUrl, openLedger } from '../ledger/index.ts';
import { ACTION_PATTERN, MAX_ACTION_LENGTH } from '../event/limits.ts';
import { CliError } from './errors.ts';
import { readKeyFile, writeKeyFile } from './signing-key.ts';
import { generateSigningKey, verifierKeyOf, type SigningKey } from '../checkpoint/index.ts';
import { dbOption, integerIn, listOf } from './options.ts';
import { loadSuiConfig, NETWORKS, type Network } from '../chain/config.ts';
import { SuiChain } from '../chain/sui.ts';
import { buildWeb, WEB_DIST, webBuilt } from '../web/build.ts';
import { acquireServeLock, type ServeLock } from './lock.ts';
import { actionListArg, instantArg, policyFromFlags, type ClassificationFlags } from './classification.ts';
import { configureClassification } from '../ledger/classification-periods.ts';
import { ACTION_CLASSES } from '../event/classification.ts';
import { parseWitnessArg, type WitnessTarget } from '../witness/submitter.ts';

/** --host: an IP address or a host name; dotted digits that are no IPv4 address (999.1.1.1) are refused here. */
export function hostArg(value: string): string {
  if (/^[0-9.]+$/.test(value) && isIP(value) !== 4)
    throw new InvalidArgumentError(
      `must be an address of this machine: ${value} is not a valid IPv4 address (four numbers from 0 to 255, e.g. 127.0.0.1)`,
    );
  if (value === '' || value.length > 253 || /[\s/]/.test(value))
    throw new InvalidArgumentError('must be an IP address or a host name of this machine, e.g. 127.0.0.1 or 0.0.0.0');
  return value;
}

export interface ServeOptions extends ClassificationFlags {
  db: string;
  host: string;
  port: number;
  actions?: string[];
  maxEventAgeDays: number;
  correctionWindowDays?: number;
  synchronous: 'full' | 'normal';
  logLevel: string;
  epochMs: number;
  epochMaxEvents: number;
  suiConfig?: string;
  network?: Network;
  logKey?: string;
  witness?: WitnessTarget[];
  webhookAllowPrivate?: boolean;
}

/** --witness URL=VKEY, repeatable; the same witness key twice is refused. */
function witnessArg(value: string, previous: WitnessTarget[] | undefined): WitnessTarget[] {
  let target: WitnessTarget;
  try {
    target = parseWitnessArg(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (previous?.some((w) => w.verifier.name === target.verifier.name && w.verifier.keyId === target.verifier.keyId))
    throw new InvalidArgumentError(`the witness key ${target.verifier.name} is given twice`);
  return [...(previous ?? []), target];
}

/** Log redaction as a second line of defence: request lines never carry headers anyway. */
export const LOG_REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'apiKey',
  'api_key',
  'key',
];

export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP API on the ledger')
    .addOption(dbOption())
    .addOption(new Option('--host <host>', 'address to listen on').env('RECEIPTS_HOST').default('127.0.0.1').argParser(hostArg))
    .addOption(new Option('--port <n>', 'port (0: any free port)').env('RECEIPTS_PORT').default(8080).argParser(integerIn(0, 65535)))
    .addOption(
      new Option('--actions <list>', 'comma-separated allow-list of actions (default: any)').env('RECEIPTS_ACTIONS').argParser(listOf),
    )
    .addOption(
      new Option('--max-event-age-days <n>', 'oldest accepted event time, in days')
        .env('RECEIPTS_MAX_EVENT_AGE_DAYS')
        .default(35)
        .argParser(integerIn(1, 3650)),
    )
    .addOption(
      new Option(
        '--correction-window-days <n>',
        'how old an event may be and still be voided or amended, in days (default: --max-event-age-days)',
      )
        .env('RECEIPTS_CORRECTION_WINDOW_DAYS')
        .argParser(integerIn(1, 3650)),
    )
    .addOption(
      new Option('--synchronous <mode>', 'full: acknowledged events survive power loss; normal: they survive a process crash')
        .env('RECEIPTS_SYNCHRONOUS')
        .choices(['full', 'normal'])
        .default('full'),
    )
    .addOption(
      new Option('--epoch-ms <n>', 'seal when the oldest unsealed event has waited this long')
        .env('RECEIPTS_EPOCH_MS')
        .default(10_000)
        .argParser(integerIn(10, 86_400_000)),
    )
    .addOption(
      new Option('--epoch-max-events <n>', 'seal when this many events wait (and never put more in one epoch)')
        .env('RECEIPTS_EPOCH_MAX_EVENTS')
        .default(100_000)
        .argParser(integerIn(1, 10_000_000)),
    )
    .addOption(
      new Option('--sui-config <file>', 'anchor epochs on Sui with this config (package, registry, cap, key); off without it').env(
        'RECEIPTS_SUI_CONFIG',
      ),
    )
    .addOption(
      new Option(
        '--log-key <file>',
        'the key file (signing-key create) the epoch log is signed with; its name is the log origin (default on SQLite: <db>.log-key, created on first start; required on PostgreSQL)',
      ).env('RECEIPTS_LOG_KEY'),
    )
    .addOption(
      new Option(
        '--witness <url=vkey>',
        "a witness (C2SP tlog-witness) the leader submits each new checkpoint to: its URL, '=', its verifier key (type 0x01 or 0x04); repeatable",
      ).argParser(witnessArg),
    )
    .addOption(new Option('--network <name>', 'the network the Sui config must be for').env('RECEIPTS_NETWORK').choices(NETWORKS))
    .addOption(
      new Option('--billable-actions <list>', 'comma-separated actions that are billable (see "Billable classification" in the README)')
        .env('RECEIPTS_BILLABLE_ACTIONS')
        .argParser(actionListArg),
    )
    .addOption(
      new Option('--non-billable-actions <list>', 'comma-separated actions that are recorded but not billable')
        .env('RECEIPTS_NON_BILLABLE_ACTIONS')
        .argParser(actionListArg),
    )
    .addOption(
      new Option('--other-actions <class>', 'the class of actions in neither list (default: info)')
        .env('RECEIPTS_OTHER_ACTIONS')
        .choices(ACTION_CLASSES),
    )
    .addOption(
      new Option('--classification <file>', 'the classification as JSON: {"billable":[…],"non_billable":[…],"other":"info"}').env(
        'RECEIPTS_CLASSIFICATION',
      ),
    )
    .addOption(
      new Option(
        '--classification-from <time>',
        'a changed classification applies to events from this time (RFC 3339 or epoch ms; default: now, never earlier)',
      )
        .env('RECEIPTS_CLASSIFICATION_FROM')
        .argParser(instantArg),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .env('RECEIPTS_LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'silent'])
        .default('info'),
    )
    .addOption(
      new Option(
        '--webhook-allow-private',
        'let webhooks reach loopback, private and link-local addresses (receivers inside your own network; tests); refused by default',
      ).env('RECEIPTS_WEBHOOK_ALLOW_PRIVATE'),
    )
    .action(async (opts: ServeOptions, cmd: Command) => {
      // Bad flags, refused before taking the lock or opening the ledger: the message and the
      // usage, exit 2, like the flags commander checks itself.
      let wanted: ReturnType<typeof policyFromFlags>;
      try {
        for (const a of opts.actions ?? []) {
          if (a.length > MAX_ACTION_LENGTH || !ACTION_PATTERN.test(a))
            throw new CliError(
              'bad_config',
              `--actions: "${a.slice(0, MAX_ACTION_LENGTH)}" must match ${ACTION_PATTERN} (at most ${MAX_ACTION_LENGTH} characters)`,
            );
        }
        wanted = policyFromFlags(opts);
        if (isPostgresUrl(opts.db) && !opts.logKey)
          throw new CliError(
            'usage',
            '--log-key FILE is required on PostgreSQL: every instance signs the epoch log with the same key. Create one once with `receipts signing-key create --name ORIGIN --out FILE` and give every instance that file',
          );
      } catch (err) {
        cmd.error(`error: ${(err as Error).message}`, { exitCode: 2, code: 'receipts.badFlag' });
      }
      await serve(opts, wanted); // the file as checked here, not read a second time
    });
}

export async function serve(opts: ServeOptions, wanted = policyFromFlags(opts)): Promise<void> {
  // First of all: a second server on the same SQLite ledger would seal and anchor beside the
  // first. (On PostgreSQL several instances share the ledger and elect one leader.)
  const lock: ServeLock = isPostgresUrl(opts.db) ? { release: () => {}, listening: () => {} } : acquireServeLock(opts.db, opts.host);
  try {
    await start(opts, lock, wanted);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function start(opts: ServeOptions, lock: ServeLock, wanted: ReturnType<typeof policyFromFlags>): Promise<void> {
  const logger = pino({ level: opts.logLevel, redact: { paths: LOG_REDACT, censor: '[redacted]' } });
  let anchoring: { chain: SuiChain } | undefined;
  if (opts.suiConfig) {
    const config = loadSuiConfig(opts.suiConfig);
    if (opts.network && opts.network !== config.network) {
      throw new CliError(
        'bad_config',
        `--network ${opts.network} but ${opts.suiConfig} is for ${config.network}: point --sui-config at the ${opts.network} config`,
      );
    }
    if (!config.privateKey)
      throw new CliError('bad_config', `anchoring needs a signing key: set private_key in ${opts.suiConfig} or RECEIPTS_SUI_PRIVATE_KEY`);
    anchoring = { chain: new SuiChain(config) };
  } else if (opts.network) {
    throw new CliError(
      'bad_config',
      `--network ${opts.network} needs --sui-config FILE (package, registry and cap ids; \`npm run localnet\` writes one)`,
    );
  }
  if (!webBuilt()) {
    logger.info('building the web page (web-dist/ is missing) …');
    await buildWeb();
  }
  const newLedger = !isPostgresUrl(opts.db) && opts.db !== ':memory:' && !existsSync(opts.db);
  const log = logKeyFor(opts);
  const ledger = await openLedger(opts.db, { synchronous: opts.synchronous });
  if (wanted) {
    try {
      const { changed, period } = await configureClassification(ledger, wanted.policy, {
        ...(wanted.fromMs !== undefined && { fromMs: wanted.fromMs }),
        now: Date.now(),
      });
      logger.info(
        { classification: period, from: new Date(period.from_ms).toISOString() },
        changed ? 'billable classification changed: a new period starts' : 'billable classification unchanged',
      );
    } catch (err) {
      await ledger.close();
      throw err;
    }
  }
  const app = buildService({
    web: { dir: WEB_DIST },
    ledger,
    logger,
    maxEventAgeMs: opts.maxEventAgeDays * 86_400_000,
    correctionWindowMs: (opts.correctionWindowDays ?? opts.maxEventAgeDays) * 86_400_000,
    sealing: { epochMs: opts.epochMs, maxEvents: opts.epochMaxEvents },
    ...(anchoring && { anchoring }),
    ...(opts.actions && { actions: opts.actions }),
    logKey: log.key,
    ...(opts.witness && { witnesses: opts.witness }),
    ...(opts.webhookAllowPrivate && { webhooks: { allowPrivate: true } }),
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: draining in-flight requests');
    try {
      await app.close(); // stops accepting, waits for in-flight requests
      await ledger.close(); // commits anything queued, closes the file
      lock.release();
      logger.info('stopped cleanly');
      process.exit(0);
    } catch (err) {
      logger.error({ err: { message: (err as Error).message } }, 'error while stopping');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await app.close(); // stops the sealer and its worker
    await ledger.close();
    throw new CliError('listen_failed', listenProblem(opts.host, opts.port, err as NodeJS.ErrnoException), { cause: err });
  }
  const address = app.server.address();
  lock.listening(opts.host, typeof address === 'object' && address ? address.port : opts.port);
  logger.info(
    {
      db: describeLocation(opts.db),
      engine: ledger.engine,
      ...(newLedger && { created: 'a new, empty ledger (no file was at --db)' }),
      // SQLite's durability setting; PostgreSQL's is the server's own (synchronous_commit).
      ...(ledger.engine === 'sqlite' && { synchronous: opts.synchronous }),
      // The verifier key only: the private key never reaches a log line.
      log: { origin: log.key.name, vkey: verifierKeyOf(log.key), key_file: log.file, ...(log.created && { created: true }) },
      witnesses: (opts.witness ?? []).map((w) => w.url),
      anchoring: anchoring
        ? { network: anchoring.chain.network, registry: anchoring.chain.registryId, sender: anchoring.chain.address }
        : 'off',
    },
    'receipts serving',
  );
}

/**
 * The log key: --log-key's file; else, on SQLite, `<db>.log-key` beside the database, created
 * (mode 0600) on first start with a random origin; for ':memory:' a key for this process only.
 * PostgreSQL requires the flag (checked with the other flags).
 */
export function logKeyFor(opts: Pick<ServeOptions, 'db' | 'logKey'>): { key: SigningKey; file: string | null; created: boolean } {
  if (opts.logKey) return { key: readKeyFile(opts.logKey), file: opts.logKey, created: false };
  if (isPostgresUrl(opts.db)) throw new CliError('usage', '--log-key FILE is required on PostgreSQL');
  const origin = `${hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'localhost'}/receipts-${randomBytes(4).toString('hex')}`;
  if (opts.db === ':memory:') return { key: generateSigningKey(origin), file: null, created: true };
  const file = `${opts.db}.log-key`;
  if (existsSync(file)) return { key: readKeyFile(file), file, created: false };
  const key = generateSigningKey(origin);
  writeKeyFile(file, key);
  return { key, file, created: true };
}

/** Why listening failed, and what to change: the port for EADDRINUSE, the host for an address that is not here. */
export function listenProblem(host: string, port: number, err: NodeJS.ErrnoException): string {
  const at = `cannot listen on ${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `${at}: the port is in use by another process; choose another --port (0 picks a free one)`;
    case 'EACCES':
      return `${at}: permission denied (ports below 1024 need privileges); choose a --port of 1024 or more`;
    case 'EADDRNOTAVAIL':
      return `${at}: ${host} is not an address of this machine; choose a local --host such as 127.0.0.1, or 0.0.0.0 for every interface`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return `${at}: --host ${host} is not a valid IP address or a host name that resolves here; use a local address such as 127.0.0.1, or 0.0.0.0 for every interface`;
    default:
      return `${at}: ${err.message}; check --host and --port`;
  }
}
