// Every command shown in README.md and docs/ runs as written in a fresh checkout. A doc marks its
// fenced blocks:
//   ```sh runnable         run, in the order of the doc, by bash (set -e), in one fresh directory
//                          per doc; variables a block sets (KEY=…) reach the blocks after it
//   ```sh runnable-server  a command that serves in the foreground (npm start): started in the
//                          background, waited for (/healthz), stopped at the end of the doc
//   ```ts file=NAME        written to NAME in that directory before the blocks after it run
//   ```sh ci               run by .ci/run (the set-up commands): checked to be there
// Any other sh block must say in its first line why it is not run here ("# not run by …", or
// "# a template …" for one with placeholders) and which test covers it.
// The fresh directory links every top-level entry of this checkout (package.json, node_modules,
// src, dist, test, …) except data/, so ./data/receipts.db is new for each doc. The service listens
// on a free port, given as RECEIPTS_PORT; the one substitution made in the commands (and in the
// files written) is that port for the documented 8080. Relative links (images included) must point at files and headings
// that exist.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const BLOCK_TIMEOUT_MS = 120_000;

interface Block {
  info: string;
  body: string;
  line: number;
}

/** The fenced blocks of a markdown file, with their info string (```sh runnable → "sh runnable"). */
function blocks(text: string): Block[] {
  const out: Block[] = [];
  let open: { info: string; line: number; lines: string[] } | null = null;
  for (const [i, line] of text.split('\n').entries()) {
    if (open) {
      if (line.trimEnd() === '```') {
        out.push({ info: open.info, body: open.lines.join('\n'), line: open.line });
        open = null;
      } else open.lines.push(line);
    } else if (line.startsWith('```')) open = { info: line.slice(3).trim(), line: i + 1, lines: [] };
  }
  return out;
}

function freePort(): Promise<number> {
  return new Promise((done) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });
}

/** A directory that looks like a fresh checkout: every top-level entry linked, no data/. */
function freshCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'receipts-docs-'));
  for (const entry of readdirSync(ROOT)) {
    if (['data', '.git', 'test-output', 'backups'].includes(entry)) continue;
    symlinkSync(join(ROOT, entry), join(dir, entry));
  }
  return dir;
}

function environment(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RECEIPTS_') && k !== 'PGPASSWORD') env[k] = v;
  return { ...env, RECEIPTS_PORT: String(port), RECEIPTS_LOG_LEVEL: 'warn' };
}

async function waitForHealth(port: number, server: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`the server block exited with ${server.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the server block did not answer /healthz within 60 s:\n${log()}`);
}

/** Runs a doc's runnable blocks in order; resolves to everything they printed. */
async function runDoc(doc: string): Promise<string> {
  const dir = freshCheckout();
  const port = await freePort();
  const env = environment(port);
  const state = join(dir, '.doc-state');
  writeFileSync(state, '');
  const servers: ChildProcess[] = [];
  let printed = '';
  try {
    for (const b of blocks(readFileSync(join(ROOT, doc), 'utf8'))) {
      const [lang, marker] = b.info.split(/\s+/);
      const where = `${doc}:${b.line}`;
      if (lang === 'ts' && marker?.startsWith('file=')) {
        writeFileSync(join(dir, marker.slice('file='.length)), `${b.body.replaceAll(':8080', `:${port}`)}\n`);
      } else if (lang === 'sh' && marker === 'runnable-server') {
        let log = '';
        const server = spawn('bash', ['-c', b.body], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
        server.stdout!.on('data', (d) => (log += d));
        server.stderr!.on('data', (d) => (log += d));
        servers.push(server);
        await waitForHealth(port, server, () => `${where}\n${log}`);
      } else if (lang === 'sh' && marker === 'runnable') {
        const body = b.body.replaceAll(':8080', `:${port}`);
        const script = `set -eo pipefail\nset -a\n. '${state}'\n${body}\nexport -p > '${state}'\n`;
        const r = spawnSync('bash', ['-c', script], { cwd: dir, env, encoding: 'utf8', timeout: BLOCK_TIMEOUT_MS });
        printed += r.stdout + r.stderr;
        if (r.status !== 0)
          throw new Error(`${where} failed (exit ${r.status ?? r.signal}):\n${b.body}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      }
    }
    return printed;
  } finally {
    for (const s of servers) {
      const exited = new Promise((r) => (s.exitCode !== null ? r(null) : s.once('exit', r)));
      try {
        process.kill(-s.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replaceAll(' ', '-');
}

function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8');
  const outside = text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
  return new Set([...outside.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

describe('the commands in README.md and docs/', () => {
  it('every sh block is runnable, run by .ci/run, or says why not', () => {
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    for (const doc of DOCS) {
      for (const b of blocks(readFileSync(join(ROOT, doc), 'utf8'))) {
        const [lang, marker] = b.info.split(/\s+/);
        if (lang !== 'sh') continue;
        const where = `${doc}:${b.line}`;
        if (marker === 'runnable' || marker === 'runnable-server') continue;
        if (marker === 'ci') {
          for (const command of b.body.split('\n').filter((l) => l.trim() !== ''))
            expect(ci, `${where}: .ci/run runs ${command}`).toMatch(new RegExp(`^${command.trim()}\\b`, 'm'));
          continue;
        }
        expect(b.body.split('\n')[0], `${where}: an sh block that is not run says why in its first line`).toMatch(
          /^# (not run by test\/docs\/commands\.test\.ts: |a template)/,
        );
      }
    }
  });

  it('no command calls a bare receipts, which is not on PATH in a checkout', () => {
    for (const doc of DOCS) {
      for (const b of blocks(readFileSync(join(ROOT, doc), 'utf8')).filter((x) => x.info.startsWith('sh'))) {
        for (const line of b.body.split('\n')) {
          if (line.trimStart().startsWith('#')) continue;
          expect(line, `${doc}:${b.line}`).not.toMatch(/(^|[|;&(]\s*|\$\(|^\S+=\S+\s+)receipts\s/);
        }
      }
    }
  });

  it('relative links and images point at files and headings that exist', () => {
    for (const doc of DOCS) {
      const file = join(ROOT, doc);
      const text = readFileSync(file, 'utf8').replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue; // http(s), mailto
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const to = path === '' ? file : resolve(dirname(file), path);
        expect(existsSync(to), `${doc}: ${target} (${relative(ROOT, to)} does not exist)`).toBe(true);
        if (anchor && to.endsWith('.md')) expect([...anchors(to)], `${doc}: ${target}`).toContain(anchor);
      }
    }
  });

  const runnable = DOCS.filter((doc) => blocks(readFileSync(join(ROOT, doc), 'utf8')).some((b) => /^sh runnable/.test(b.info)));
  it('covers the README tour and every doc with commands', () => {
    expect(runnable).toEqual(
      expect.arrayContaining(['README.md', 'docs/api.md', 'docs/receipts.md', 'docs/operations.md', 'docs/middleware.md']),
    );
  });

  // What each doc's commands must print, beyond exiting 0.
  const expected: Record<string, RegExp[]> = {
    'README.md': [
      /"status":"created"/,
      /"totals":\{"events":1,"units":3/,
      /^valid: epoch 0, leaf 0 of 1, root [0-9a-f]{64} \(the receipt's own root\)$/m,
    ],
    'docs/api.md': [/"request_id":"ce:5:agent:req-43"/],
    'docs/receipts.md': [
      /not verifiable yet: /,
      /exit 3/,
      /^valid: epoch 0, leaf 0 of 1/m,
      /^valid: epoch 3, leaf 5 of 7, root 8ef7877f7ef0[0-9a-f]+ \(trusted root\)$/m,
    ],
    'docs/operations.md': [/"status":"ok"/, /^receipts_unsealed_events 0$/m],
    'docs/middleware.md': [/"totals":\{"events":2,"units":6/],
  };
  it.each(runnable)('%s: the runnable blocks run as written', { timeout: 300_000 }, async (doc) => {
    const printed = await runDoc(doc);
    for (const pattern of expected[doc] ?? []) expect(printed, `${doc} printed:\n${printed.slice(-3000)}`).toMatch(pattern);
  });
});
