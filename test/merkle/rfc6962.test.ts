// Conformance: every inclusion vector of transparency-dev/merkle, negative cases included, from
// the project's copy (test/vectors/rfc6962). Where the shared folder (docs/design.md, "Tree") sits beside the
// checkout (../shared/testdata/rfc6962), the copy must be identical to it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyInclusion } from '../../src/merkle/proof.ts';
import { parseVectorJson } from '../../scripts/gen-move-vectors.ts';

export const COPY_DIR = join(import.meta.dirname, '../vectors/rfc6962');
export const VECTOR_DIR = join(COPY_DIR, 'inclusion');
const SHARED_DIR = join(import.meta.dirname, '../../../shared/testdata/rfc6962');

export interface InclusionVector {
  file: string;
  /** u64: a bigint when past 2^53 − 1 (one case holds 2^64 − 1). */
  leafIdx: number | bigint;
  treeSize: number | bigint;
  root: string | null;
  leafHash: string | null;
  proof: string[] | null;
  wantErr?: boolean;
}

const jsonFiles = (dir: string) =>
  readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json'))
    .sort();

export function loadVectors(): InclusionVector[] {
  return jsonFiles(VECTOR_DIR).map((f) => ({
    file: f,
    ...(parseVectorJson(readFileSync(join(VECTOR_DIR, f), 'utf8'), f) as Omit<InclusionVector, 'file'>),
  }));
}

const b64 = (s: string | null) => (s ? new Uint8Array(Buffer.from(s, 'base64')) : new Uint8Array(0));

const vectors = loadVectors();

describe('RFC 6962 inclusion vectors', () => {
  it('finds the vectors (98 files, both outcomes)', () => {
    expect(vectors.length).toBe(98);
    expect(vectors.some((v) => v.wantErr)).toBe(true);
    expect(vectors.some((v) => !v.wantErr)).toBe(true);
  });

  it.each(vectors)('$file', (v) => {
    // src/merkle/proof.ts takes JS numbers, exact to 2^53 − 1 (no tree is larger): past that it
    // must refuse, and only negative cases go there.
    const exact = typeof v.leafIdx === 'number' && typeof v.treeSize === 'number';
    if (!exact) expect(v.wantErr).toBe(true);
    const result = verifyInclusion(b64(v.leafHash), Number(v.leafIdx), Number(v.treeSize), (v.proof ?? []).map(b64), b64(v.root));
    expect(result.ok).toBe(!v.wantErr);
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(10);
  });

  it('the copy names its origin and licence', () => {
    expect(readFileSync(join(COPY_DIR, 'README.md'), 'utf8')).toMatch(/transparency-dev\/merkle[\s\S]*commit [0-9a-f]{7,40}/);
    expect(readFileSync(join(COPY_DIR, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
  });
});

describe('test/vectors/rfc6962 against ../shared/testdata/rfc6962', () => {
  const shared = existsSync(SHARED_DIR);
  if (!shared)
    console.warn(
      `SKIPPED: ${SHARED_DIR} is absent (a checkout without the shared folder); the project's copy in test/vectors/rfc6962 was not compared with it`,
    );

  it.skipIf(!shared)('holds the same files, byte for byte (inclusion/ and LICENSE)', () => {
    const files = (dir: string) => ['LICENSE', ...jsonFiles(join(dir, 'inclusion')).map((f) => join('inclusion', f))];
    expect(files(COPY_DIR)).toEqual(files(SHARED_DIR));
    for (const f of files(SHARED_DIR)) {
      expect(
        readFileSync(join(COPY_DIR, f)).equals(readFileSync(join(SHARED_DIR, f))),
        `${f} differs: copy ../shared/testdata/rfc6962 again, then npm run gen:move-vectors`,
      ).toBe(true);
    }
  });

  it.skipIf(!shared)('names the commit the shared README names', () => {
    const commit = readFileSync(join(SHARED_DIR, 'README.md'), 'utf8').match(/commit ([0-9a-f]{7,40})/)?.[1];
    expect(commit, 'the shared README names no commit').toBeDefined();
    expect(readFileSync(join(COPY_DIR, 'README.md'), 'utf8')).toContain(`commit ${commit}`);
  });
});
