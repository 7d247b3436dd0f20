// `receipts witness serve` as a real process, spoken to in C2SP tlog-witness: cosignatures that
// verify with the key it printed, 409 with the size it knows, 422 for a bad proof, 403 and 404
// for checkpoints it must not cosign, 400 and 413 for bodies that are not requests, a forked log
// refused, and its state kept across a restart.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openNote, parseCosignerKey, parseSignerKey, splitNote, toBase64 } from '../../src/checkpoint/index.ts';
import { formatAddCheckpoint, MAX_BODY_BYTES } from '../../src/witness/protocol.ts';
import { tempDir } from '../helpers.ts';
import { receipts } from '../cli/run.ts';
import { addCheckpoint, FakeLog, keyFile as newKeyFile, startWitness, type Witness } from './run.ts';

const t = tempDir('receipts-witness-');
afterAll(() => t.cleanup());
const running: Witness[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop()));
});

let n = 0;
async function witnessFor(logs: FakeLog[], db = join(t.dir, `w${++n}.db`), keyFile = newKeyFile(t.dir, 'witness.test/w1').file) {
  const w = await startWitness(['--key', keyFile, '--db', db, ...logs.flatMap((l) => ['--log', l.vkey])]);
  running.push(w);
  return { w, db, keyFile };
}

const submit = (w: Witness, log: FakeLog, old: number, size: number, note = log.checkpoint(size)) =>
  addCheckpoint(w.url, formatAddCheckpoint({ old, proof: log.proof(old, size), note }));

/** The cosignature lines of a 200, opened against the checkpoint with the printed key. */
function cosigned(w: Witness, note: string, body: string) {
  const { text } = splitNote(note);
  return openNote(`${text}\n${body}`, [parseCosignerKey(w.vkey)]).verified;
}

describe('receipts witness serve', { timeout: 120_000 }, () => {
  it('prints its cosigner key (type 0x04 of the key file) and cosigns a first checkpoint, then one consistent with it', async () => {
    const log = new FakeLog();
    const { w, keyFile } = await witnessFor([log]);
    const key = parseSignerKey(readFileSync(keyFile, 'utf8').trim());
    expect(parseCosignerKey(w.vkey).type).toBe(0x04);
    expect(parseCosignerKey(w.vkey).publicKey).toEqual(key.publicKey);
    expect(w.output()).not.toContain(readFileSync(keyFile, 'utf8').trim());

    const first = await submit(w, log, 0, 5);
    expect(first).toMatchObject({ status: 200, type: 'text/x.tlog.signature' });
    const [sig] = cosigned(w, log.checkpoint(5), first.body);
    expect(sig).toMatchObject({ name: 'witness.test/w1', type: 0x04 });
    expect(Math.abs(Number(sig!.timestamp) - Date.now() / 1000)).toBeLessThan(60);

    const next = await submit(w, log, 5, 13);
    expect(next.status).toBe(200);
    expect(cosigned(w, log.checkpoint(13), next.body)).toHaveLength(1);
    // The same checkpoint again (old = its size, empty proof) is cosigned again.
    expect((await submit(w, log, 13, 13)).status).toBe(200);
  });

  it('409 with the size it knows (text/x.tlog.size) when old is not what it last cosigned', async () => {
    const log = new FakeLog();
    const { w } = await witnessFor([log]);
    expect((await submit(w, log, 0, 7)).status).toBe(200);
    expect(await submit(w, log, 0, 9)).toEqual({ status: 409, type: 'text/x.tlog.size', body: '7\n' });
    expect(await submit(w, log, 3, 9)).toEqual({ status: 409, type: 'text/x.tlog.size', body: '7\n' });
    expect((await submit(w, log, 7, 9)).status).toBe(200);
  });

  it('a log that forks (two different checkpoints of one size) gets the second refused, and nothing after it on that branch', async () => {
    const log = new FakeLog('fork.example/log');
    const { w } = await witnessFor([log]);
    expect((await submit(w, log, 0, 8)).status).toBe(200);
    // The same log key, another history: leaf 3 differs.
    const forked = new FakeLog('fork.example/log');
    (forked as { key: unknown }).key = log.key;
    forked.leaves.set(log.leaves);
    forked.leaves[96] = forked.leaves[96]! ^ 1;
    // Same size, another root: 409.
    const same = await addCheckpoint(w.url, formatAddCheckpoint({ old: 8, proof: [], note: forked.checkpoint(8) }));
    expect(same).toMatchObject({ status: 409, body: '8\n' });
    // Larger, with the fork's own (valid for it) proof: it does not lead to the root cosigned, 422.
    const grown = await addCheckpoint(w.url, formatAddCheckpoint({ old: 8, proof: forked.proof(8, 12), note: forked.checkpoint(12) }));
    expect(grown.status).toBe(422);
    expect(grown.body).toMatch(/consistency proof does not verify/);
    // The honest branch still goes on.
    expect((await submit(w, log, 8, 12)).status).toBe(200);
    expect(w.output()).toMatch(/checkpoint refused/);
  });

  it('403 for a checkpoint not signed by a known key of its origin, 404 for an unknown origin', async () => {
    const log = new FakeLog('known.example/log');
    const { w } = await witnessFor([log]);
    const impostor = new FakeLog('known.example/log');
    const r403 = await addCheckpoint(w.url, formatAddCheckpoint({ old: 0, proof: [], note: impostor.checkpoint(4) }));
    expect(r403.status).toBe(403);
    const stranger = new FakeLog('stranger.example/log');
    const r404 = await addCheckpoint(w.url, formatAddCheckpoint({ old: 0, proof: [], note: stranger.checkpoint(4) }));
    expect(r404.status).toBe(404);
    // Nothing was recorded for the origin: a first checkpoint with old 0 is still cosigned.
    expect((await submit(w, log, 0, 4)).status).toBe(200);
  });

  it('400 for bodies that are not requests, 413 beyond the bound, each naming the rule; nothing stored', async () => {
    const log = new FakeLog();
    const { w } = await witnessFor([log]);
    const note = log.checkpoint(4);
    const hash = toBase64(new Uint8Array(32));
    const cases: Array<[string, RegExp]> = [
      [`old 01\n\n${note}`, /decimal without leading zeroes/],
      [`new 0\n\n${note}`, /first line must be "old <size>"/],
      [`old 0\nnot base64\n\n${note}`, /proof line 1 must be the padded base64/],
      [`old 0\n${hash}\n\n${note}`, /must be empty when the old size is 0/],
      [`old 9\n\n${note}`, /old size 9 is larger than the checkpoint's size 4/],
      [`old 0\n${`${hash}\n`.repeat(64)}\n${note}`, /at most 63 consistency proof lines/],
      [`old 0\n\n${note.replace('\n\n', '\n')}`, /not a signed note/],
      [`old 0\n${hash}`, /followed by a blank line/],
    ];
    for (const [body, message] of cases) {
      const r = await addCheckpoint(w.url, body);
      expect(r.status, body.slice(0, 40)).toBe(400);
      expect(r.body).toMatch(message);
    }
    const big = await addCheckpoint(w.url, `old 0\n\n${'x'.repeat(MAX_BODY_BYTES)}`);
    expect(big.status).toBe(413);
    expect((await fetch(`${w.url}/add-checkpoint`)).status).toBe(405);
    expect((await submit(w, log, 0, 4)).status).toBe(200);
  });

  it('keeps its state across a restart: the size it cosigned is still the one old must name', async () => {
    const log = new FakeLog();
    const first = await witnessFor([log]);
    expect((await submit(first.w, log, 0, 6)).status).toBe(200);
    expect((await submit(first.w, log, 6, 10)).status).toBe(200);
    await first.w.stop();
    const { w } = await witnessFor([log], first.db, first.keyFile);
    expect(w.vkey).toBe(first.w.vkey);
    expect(await submit(w, log, 0, 12)).toMatchObject({ status: 409, body: '10\n' });
    expect((await submit(w, log, 10, 12)).status).toBe(200);
  });

  it('refuses bad flags with the usage: a --log that is not a verifier key, a missing key file', () => {
    const keyFile = newKeyFile(t.dir, 'witness.test/flags').file;
    const bad = receipts(['witness', 'serve', '--key', keyFile, '--db', join(t.dir, 'f.db'), '--log', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--log.*verifier key/);
    const missing = receipts([
      'witness',
      'serve',
      '--key',
      join(t.dir, 'none.key'),
      '--db',
      join(t.dir, 'f.db'),
      '--log',
      new FakeLog().vkey,
    ]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no key file/);
  });
});
