// Conformance: every vector of transparency-dev/merkle (../shared/testdata/rfc6962), negative cases included.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyInclusion } from '../../src/merkle/proof.ts';

export const VECTOR_DIR = join(import.meta.dirname, '../../../shared/testdata/rfc6962/inclusion');

export interface InclusionVector {
  file: string;
  leafIdx: number;
  treeSize: number;
  root: string | null;
  leafHash: string | null;
  proof: string[] | null;
  wantErr?: boolean;
}

export function loadVectors(): InclusionVector[] {
  if (!existsSync(VECTOR_DIR)) {
    throw new Error(`conformance vectors not found at ${VECTOR_DIR}: this repository is checked out beside the shared/ folder (DESIGN.md)`);
  }
  return readdirSync(VECTOR_DIR, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, ...JSON.parse(readFileSync(join(VECTOR_DIR, f), 'utf8')) }));
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
    const result = verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, (v.proof ?? []).map(b64), b64(v.root));
    expect(result.ok).toBe(!v.wantErr);
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(10);
  });
});
