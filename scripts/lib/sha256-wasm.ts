// The AssemblyScript compile of the node hasher, shared by its build script and its test.
import asc from 'assemblyscript/asc';

/** sha256-pairs.as → WebAssembly bytes (SIMD on, no runtime: the module allocates nothing). */
export async function compileSha256Pairs(source: string): Promise<Uint8Array> {
  let wasm: Uint8Array | undefined;
  const errors: string[] = [];
  const { error } = await asc.main(
    ['sha256-pairs.ts', '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '--initialMemory', '8', '-o', 'out.wasm'],
    {
      readFile: (name) => (name === 'sha256-pairs.ts' ? source : null),
      writeFile: (name, contents) => {
        if (name === 'out.wasm') wasm = contents as Uint8Array;
      },
      listFiles: () => [],
      stderr: { write: (s: string) => errors.push(String(s)) } as never,
      stdout: { write: () => true } as never,
    },
  );
  if (error || !wasm) throw new Error(`assemblyscript failed: ${error?.message ?? ''}\n${errors.join('')}`);
  return wasm;
}
