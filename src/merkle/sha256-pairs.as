// AssemblyScript source of sha256-pairs.wasm.ts (npm run build:wasm; see scripts/build-sha256-wasm.ts).
// SHA-256 of many RFC 6962 node preimages 0x01 ‖ left ‖ right, four at a time in SIMD lanes: one
// call hashes a whole batch of a level, with none of the per-node call overhead of node:crypto.
const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];
// Static data, below __heap_base: the caller's buffers start at scratch().
/** The message schedule of four messages, word t of lane j at 16 t + 4 j. */
const W = memory.data(64 * 16, 16);

@inline function rotr4(x: v128, n: i32): v128 {
  return v128.or(i32x4.shr_u(x, n), i32x4.shl(x, 32 - n));
}

@inline function schedule4(): void {
  for (let t = 16; t < 64; t++) {
    const w15 = v128.load(W + (<usize>(t - 15) << 4));
    const w2 = v128.load(W + (<usize>(t - 2) << 4));
    const s0 = v128.xor(v128.xor(rotr4(w15, 7), rotr4(w15, 18)), i32x4.shr_u(w15, 3));
    const s1 = v128.xor(v128.xor(rotr4(w2, 17), rotr4(w2, 19)), i32x4.shr_u(w2, 10));
    const w = i32x4.add(i32x4.add(v128.load(W + (<usize>(t - 16) << 4)), s0), i32x4.add(v128.load(W + (<usize>(t - 7) << 4)), s1));
    v128.store(W + (<usize>t << 4), w);
  }
}

// The working state, kept in globals between the two blocks.
let A: v128, B: v128, C: v128, D: v128, E: v128, F: v128, G: v128, H: v128;

@inline function rounds4(): void {
  let a = A, b = B, c = C, d = D, e = E, f = F, g = G, h = H;
  for (let t = 0; t < 64; t++) {
    const s1 = v128.xor(v128.xor(rotr4(e, 6), rotr4(e, 11)), rotr4(e, 25));
    const ch = v128.xor(v128.and(e, f), v128.andnot(g, e));
    const t1 = i32x4.add(i32x4.add(h, s1), i32x4.add(ch, i32x4.add(i32x4.splat(unchecked(K[t])), v128.load(W + (<usize>t << 4)))));
    const s0 = v128.xor(v128.xor(rotr4(a, 2), rotr4(a, 13)), rotr4(a, 22));
    const maj = v128.xor(v128.xor(v128.and(a, b), v128.and(a, c)), v128.and(b, c));
    h = g; g = f; f = e; e = i32x4.add(d, t1); d = c; c = b; b = a; a = i32x4.add(t1, i32x4.add(s0, maj));
  }
  A = i32x4.add(A, a); B = i32x4.add(B, b); C = i32x4.add(C, c); D = i32x4.add(D, d);
  E = i32x4.add(E, e); F = i32x4.add(F, f); G = i32x4.add(G, g); H = i32x4.add(H, h);
}

@inline function word(p: usize, t: i32): u32 {
  // Word t of the block 0x01 ‖ (64 bytes at p)[0..62]: bytes p + 4t − 1 … p + 4t + 2.
  return t == 0 ? 0x01000000 | (<u32>load<u8>(p) << 16) | (<u32>load<u8>(p + 1) << 8) | <u32>load<u8>(p + 2) : bswap<u32>(load<u32>(p + (<usize>t << 2) - 1));
}

@inline function store4(q: usize, i: i32, v: v128): void {
  store<u32>(q + (<usize>i << 2), bswap<u32>(i32x4.extract_lane(v, 0)));
  store<u32>(q + 32 + (<usize>i << 2), bswap<u32>(i32x4.extract_lane(v, 1)));
  store<u32>(q + 64 + (<usize>i << 2), bswap<u32>(i32x4.extract_lane(v, 2)));
  store<u32>(q + 96 + (<usize>i << 2), bswap<u32>(i32x4.extract_lane(v, 3)));
}

/** Four node hashes: input 4 × 64 bytes (left ‖ right) at p, output 4 × 32 bytes at q. */
function hash4(p: usize, q: usize): void {
  for (let t = 0; t < 16; t++) {
    let v = i32x4.splat(word(p, t));
    v = i32x4.replace_lane(v, 1, word(p + 64, t));
    v = i32x4.replace_lane(v, 2, word(p + 128, t));
    v = i32x4.replace_lane(v, 3, word(p + 192, t));
    v128.store(W + (<usize>t << 4), v);
  }
  schedule4();
  A = i32x4.splat(0x6a09e667); B = i32x4.splat(0xbb67ae85); C = i32x4.splat(0x3c6ef372); D = i32x4.splat(0xa54ff53a);
  E = i32x4.splat(0x510e527f); F = i32x4.splat(0x9b05688c); G = i32x4.splat(0x1f83d9ab); H = i32x4.splat(0x5be0cd19);
  rounds4();
  // The second block: the last data byte, 0x80, zeros, and the length (65 bytes = 520 bits).
  let v = i32x4.splat((<u32>load<u8>(p + 63) << 24) | 0x800000);
  v = i32x4.replace_lane(v, 1, (<u32>load<u8>(p + 127) << 24) | 0x800000);
  v = i32x4.replace_lane(v, 2, (<u32>load<u8>(p + 191) << 24) | 0x800000);
  v = i32x4.replace_lane(v, 3, (<u32>load<u8>(p + 255) << 24) | 0x800000);
  v128.store(W, v);
  for (let t = 1; t < 15; t++) v128.store(W + (<usize>t << 4), i32x4.splat(0));
  v128.store(W + (15 << 4), i32x4.splat(520));
  schedule4();
  rounds4();
  store4(q, 0, A); store4(q, 1, B); store4(q, 2, C); store4(q, 3, D);
  store4(q, 4, E); store4(q, 5, F); store4(q, 6, G); store4(q, 7, H);
}

/** n node hashes: input n × 64 bytes (left ‖ right), output n × 32 bytes; n a multiple of 4. */
export function hashPairs(input: usize, output: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) hash4(input + (<usize>i << 6), output + (<usize>i << 5));
}

/** The first byte the caller may use for its input and output (page aligned, past static data). */
export function scratch(): usize {
  return (__heap_base + 0xffff) & ~0xffff;
}
