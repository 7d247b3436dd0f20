// A JSON-lines file sink (Node only): one event per line, append-only. Importing this module
// registers it as `jsonl`, so `createUsageClient({ sink: 'jsonl:./usage.jsonl' })` works.
// The client's spool stays the durability layer: a batch is removed from the spool only after
// it was written (and synced, by default), so a crash can repeat lines, never lose them; the
// reader skips repeats by request id.
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UsageClientError } from '../errors.ts';
import type { QueuedEvent } from '../index.ts';
import { registerSink, type Sink } from './index.ts';

export interface JsonlSinkOptions {
  /** fdatasync after each batch (default true): a written batch survives a power loss. */
  sync?: boolean;
}

export function createJsonlSink(file: string, options: JsonlSinkOptions = {}): Sink {
  if (typeof file !== 'string' || file === '')
    throw new UsageClientError('bad_option', 'the jsonl sink needs a file path, e.g. jsonl:./data/usage.jsonl');
  let handle: Promise<FileHandle> | undefined;
  const openOnce = () =>
    (handle ??= (async () => {
      await mkdir(dirname(file), { recursive: true });
      const h = await open(file, 'a+');
      // A crash in the middle of a line leaves it without its newline: end it, so the next
      // batch starts on a line of its own and the torn line alone is reported as malformed.
      const { size } = await h.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await h.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) await h.write('\n');
      }
      return h;
    })().catch((err) => {
      handle = undefined; // try again on the next send
      throw err;
    }));
  return {
    name: 'jsonl',
    async send(events) {
      const h = await openOnce();
      // One write of the whole batch: with O_APPEND, lines of concurrent writers never interleave
      // inside a batch on a local file system.
      await h.write(events.map((e) => `${jsonLine(e)}\n`).join(''));
      if (options.sync !== false) await h.datasync();
      return { kind: 'done' };
    },
    async close() {
      const h = handle;
      handle = undefined;
      if (h) await (await h.catch(() => undefined))?.close();
    },
  };
}

/**
 * An event's JSON on one line. U+2028 and U+2029 are valid unescaped in JSON strings, but many
 * line readers (Node's readline, Python's splitlines) end a line there: escaped, every reader
 * sees one line per event.
 */
function jsonLine(e: QueuedEvent): string {
  const json = JSON.stringify(e);
  return LINE_SEPARATORS.test(json) ? json.replace(LINE_SEPARATORS_ALL, (c) => (c === '\u2028' ? '\\u2028' : '\\u2029')) : json;
}
const LINE_SEPARATORS = /[\u2028\u2029]/;
const LINE_SEPARATORS_ALL = /[\u2028\u2029]/g;

export interface MalformedLine {
  /** 1-based line number. */
  line: number;
  reason: string;
}

export interface JsonlContents {
  /** The events, in file order, the first line of each request id. */
  events: QueuedEvent[];
  /** Lines that were skipped: not JSON, not an event object, or too long. */
  malformed: MalformedLine[];
  /** Lines skipped because their request id was already read (a batch repeated after a crash). */
  duplicates: number;
}

const MAX_LINE_CHARS = 64 * 1024;

/** Reads a JSON-lines file written by the jsonl sink; never throws on bad lines, reports them. */
export async function readJsonl(file: string): Promise<JsonlContents> {
  const out: JsonlContents = { events: [], malformed: [], duplicates: 0 };
  const seen = new Set<string>();
  const input = createReadStream(file, { encoding: 'utf8' });
  let n = 0;
  const take = (line: string) => {
    n++;
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      out.malformed.push({ line: n, reason: `not JSON: ${(err as Error).message}` });
      return;
    }
    const e = value as Partial<QueuedEvent> | null;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) {
      out.malformed.push({ line: n, reason: 'not an event object' });
      return;
    }
    const missing = (['request_id', 'namespace', 'action', 'caller'] as const).find((k) => typeof e[k] !== 'string' || e[k] === '');
    if (missing) {
      out.malformed.push({ line: n, reason: `${missing} must be a non-empty string` });
      return;
    }
    if (seen.has(e.request_id!)) {
      out.duplicates++;
      return;
    }
    seen.add(e.request_id!);
    out.events.push(e as QueuedEvent);
  };
  // Lines end at \n only (\r\n too): not at U+2028/U+2029 as readline's do, which are valid inside
  // a JSON string. A line is dropped as soon as it passes the limit, never held whole.
  let line = '';
  let tooLong = false;
  const end = () => {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (tooLong || line.length > MAX_LINE_CHARS) {
      n++;
      out.malformed.push({ line: n, reason: `longer than ${MAX_LINE_CHARS} characters` });
    } else take(line);
    line = '';
    tooLong = false;
  };
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      let from = 0;
      for (let at = chunk.indexOf('\n'); at >= 0; at = chunk.indexOf('\n', from)) {
        if (!tooLong) line += chunk.slice(from, at);
        tooLong ||= line.length > MAX_LINE_CHARS + 1; // (+1: a \r before the \n)
        end();
        from = at + 1;
      }
      if (!tooLong) line += chunk.slice(from);
      if (line.length > MAX_LINE_CHARS + 1) {
        tooLong = true;
        line = '';
      }
    }
    if (line !== '' || tooLong) end(); // a last line without its newline
  } finally {
    input.destroy();
    if (!input.closed) await once(input, 'close').catch(() => {});
  }
  return out;
}

registerSink('jsonl', (target, o) => {
  if (!target) throw new UsageClientError('bad_option', 'the jsonl sink needs a file: sink: "jsonl:./data/usage.jsonl"');
  void o;
  return createJsonlSink(target);
});
