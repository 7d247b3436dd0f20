// Progress of a long command on stderr, the same way for every command: a line every 5 s at most
// per part, and one when each part is done ("copying events: 1,000,000 / 2,000,000").
import { performance } from 'node:perf_hooks';

export interface PartProgress {
  done: number;
  total: number;
}

/** A reporter for progress events; `label` names the part each event is about. */
export function progressLines<P extends PartProgress>(label: (p: P) => string): (p: P) => void {
  let last = performance.now();
  const finished = new Set<string>();
  return (p) => {
    const key = label(p);
    const done = p.done >= p.total;
    if (done ? finished.has(key) : performance.now() - last < 5000) return;
    if (done) finished.add(key);
    last = performance.now();
    process.stderr.write(`${key}: ${p.done.toLocaleString('en-US')} / ${p.total.toLocaleString('en-US')}\n`);
  };
}

/** "1 event", "2,000 events". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}
