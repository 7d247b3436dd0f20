// `receipts signing-key create|show`: the Ed25519 key a log signs its checkpoints with (its name
// is the log's origin) and a witness cosigns with. The file holds one line, the signer key as Go's
// golang.org/x/mod/sumdb/note writes it (`PRIVATE+KEY+name+hex8+base64(0x01 ‖ seed)`), so Go
// tools read it too. Only the verifier key is ever printed; the private key never reaches
// stdout, stderr or a message (CheckpointError messages never quote a key).
import { closeSync, fchmodSync, fstatSync, fsyncSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  CheckpointError,
  formatSignerKey,
  generateSigningKey,
  keyNameProblem,
  parseSignerKey,
  verifierKeyOf,
  type SigningKey,
} from '../checkpoint/index.ts';
import { CliError } from './errors.ts';

/** A key file is one line of about 100 bytes; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 4096;

function printVkey(vkey: string, json: boolean | undefined): void {
  process.stdout.write(json ? `${JSON.stringify({ vkey })}\n` : `${vkey}\n`);
}

/** Creates `file` for the owner alone, refusing one that exists (O_EXCL: no race, no overwrite). */
export function writeKeyFile(file: string, key: SigningKey): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new CliError(
        'usage',
        `${file} (${resolve(file)}) already exists: signing-key create never overwrites a key file (it may be the key a log or witness signs with); choose a new name`,
      );
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CliError('usage', `--out ${file}: its directory does not exist`);
    throw new CliError('failed', `cannot create ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The mode given to open is cut by the umask but never widened; set it outright all the same.
    if (process.platform !== 'win32') fchmodSync(fd, 0o600);
    writeSync(fd, `${formatSignerKey(key)}\n`);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(file); // half a key file is worse than none
    throw new CliError('failed', `cannot write ${file}: ${(err as Error).message}; nothing was kept`, { cause: err });
  }
  closeSync(fd);
}

/**
 * Reads a key file: one signer key line (a final newline allowed). Warns on stderr when the file
 * is readable by group or others (the key stays usable: refusing would only lock an operator out
 * of printing a public key), naming the fix.
 */
export function readKeyFile(file: string): SigningKey {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new CliError(
        'usage',
        `no key file at ${file} (${resolve(file)}); create one with \`receipts signing-key create --name NAME --out FILE\``,
      );
    throw new CliError('unreadable', `cannot read the key file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CliError('unreadable', `${file} is not a file`);
    if (st.size > MAX_KEY_FILE_BYTES)
      throw new CliError('unreadable', `${file} is ${st.size} bytes: a key file is one line (at most ${MAX_KEY_FILE_BYTES} bytes)`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      process.stderr.write(
        `warning: ${file} is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): anyone who reads it can sign as this key; run chmod 600 ${file}\n`,
      );
    }
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    text = buf.subarray(0, n).toString('utf8');
    buf.fill(0);
  } finally {
    closeSync(fd);
  }
  const line = text.endsWith('\n') ? text.slice(0, -1) : text;
  try {
    return parseSignerKey(line);
  } catch (err) {
    if (err instanceof CheckpointError)
      throw new CliError(
        'unreadable',
        `${file} is not a signing key file (one line PRIVATE+KEY+name+hex8+base64, as signing-key create writes): ${err.message}`,
        { cause: err },
      );
    throw err;
  }
}

export function addSigningKeyCommands(program: Command): void {
  const cmd = program
    .command('signing-key')
    .description('create and show Ed25519 keys for signing checkpoints (a log) or cosigning them (a witness)');

  cmd
    .command('create')
    .description('write a new Ed25519 signing key to a file only its owner can read, and print its verifier key')
    .requiredOption('--name <name>', "the key's name: a log's origin (e.g. receipts.example.com/acme) or a witness's name; no spaces, no +")
    .requiredOption('--out <file>', 'the key file to create (never overwritten; mode 0600)')
    .option('--json', 'print JSON: { "vkey" }')
    .action((opts: { name: string; out: string; json?: boolean }) => {
      const problem = keyNameProblem(opts.name);
      if (problem) throw new CliError('usage', `--name ${JSON.stringify(opts.name.slice(0, 80))}: ${problem} (signed-note key name rules)`);
      const key = generateSigningKey(opts.name);
      writeKeyFile(opts.out, key);
      printVkey(verifierKeyOf(key), opts.json);
      if (!opts.json)
        process.stderr.write(
          `wrote the signing key ${opts.name} to ${opts.out} (mode 0600); keep it secret: whoever holds it signs as this key. The line above is its verifier key, safe to publish.\n`,
        );
    });

  cmd
    .command('show')
    .description("print a key file's verifier key (never the private key)")
    .argument('<file>', 'a key file written by signing-key create')
    .option('--json', 'print JSON: { "vkey" }')
    .action((file: string, opts: { json?: boolean }) => {
      printVkey(verifierKeyOf(readKeyFile(file)), opts.json);
    });
}
