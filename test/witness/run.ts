// The real `receipts witness serve` in a child process, and a fake log to feed it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  ed25519Signer,
  formatCheckpoint,
  generateSigningKey,
  signNote,
  verifierKeyOf,
  type SigningKey,
} from '../../src/checkpoint/index.ts';
import { consistencyProof } from '../../src/merkle/consistency.ts';
import { buildTree, memoryNodeReader, rootOf } from '../../src/merkle/tree.ts';
import { writeKeyFile } from '../../src/cli/signing-key.ts';
import { MAIN } from '../cli/run.ts';

export interface Witness {
  proc: ChildProcess;
  url: string;
  vkey: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop: () => Promise<void>;
}

/** Starts `receipts witness serve … --port PORT` and resolves once it listens, with the vkey it printed. */
export function startWitness(args: string[], port = 0): Promise<Witness> {
  const proc = spawn(process.execPath, [MAIN, 'witness', 'serve', '--port', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`witness did not start:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"vkey"')) continue;
        const { url, vkey } = JSON.parse(line) as { url: string; vkey: string };
        clearTimeout(timer);
        resolve({ proc, url, vkey, output: () => out, exited, stop });
        return;
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`witness exited before listening:\n${out}`));
    });
  });
}

let files = 0;
/** A new key file (as signing-key create writes it, written here: one process fewer per test) and its 0x01 vkey. */
export function keyFile(dir: string, name: string): { file: string; vkey: string } {
  const key = generateSigningKey(name);
  const file = `${dir}/key-${process.pid}-${++files}.key`;
  writeKeyFile(file, key);
  return { file, vkey: verifierKeyOf(key) };
}

/** A log of random leaves, signed with its own key: checkpoints and consistency proofs at any size. */
export class FakeLog {
  readonly key: SigningKey;
  readonly leaves: Uint8Array;
  constructor(name = 'fake.example/log', size = 64) {
    this.key = generateSigningKey(name);
    this.leaves = randomBytes(size * 32);
  }
  get vkey(): string {
    return verifierKeyOf(this.key);
  }
  tree(size: number) {
    return buildTree(this.leaves.subarray(0, size * 32));
  }
  checkpoint(size: number, key = this.key): string {
    const text = formatCheckpoint({ origin: this.key.name, size, root: rootOf(this.tree(size)), extensions: [] });
    return signNote(text, [ed25519Signer(key)]);
  }
  proof(from: number, to: number): Uint8Array[] {
    return from === 0 ? [] : consistencyProof(from, to, memoryNodeReader(this.tree(to)));
  }
}

export async function addCheckpoint(url: string, body: string) {
  const res = await fetch(`${url}/add-checkpoint`, { method: 'POST', body });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}
