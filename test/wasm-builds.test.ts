// The four builds obey the memory model: imported memory (shared in -mt builds), no data segments, no
// start function, nothing exported but functions and immutable globals (the ABI constants) — so any number
// of instances can share one memory without re-running initialisers over live data. (Scalar Wasm globals
// are allowed: each instance has its own, like registers, and none lives in the shared memory.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { ABI_VERSION, DdpmError, Engine, WASM_CONSTANTS } from '../src/index.js';

// Node 20 compiles relaxed SIMD only behind this flag (the engine sets it the same way).
setFlagsFromString('--experimental-wasm-relaxed-simd');

const root = join(__dirname, '..');
const builds = ['simd', 'relaxed', 'simd-mt', 'relaxed-mt'];

/** Section ids present in a module (1 type, 2 import, 3 function, 6 global, 7 export, 8 start, 11 data, 12 datacount). */
function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let p = 8;
  while (p < bytes.length) {
    const id = bytes[p++];
    let size = 0,
      shift = 0,
      b: number;
    do {
      b = bytes[p++];
      size |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    ids.push(id);
    p += size;
  }
  return ids;
}

describe('Wasm builds', () => {
  for (const build of builds) {
    it(`${build}: imported memory, no data segments, no start function, only functions and constants exported`, () => {
      const bytes = readFileSync(join(root, 'build/wasm', `${build}.wasm`));
      const ids = sectionIds(bytes);
      expect(ids).not.toContain(11); // data
      expect(ids).not.toContain(12); // data count
      expect(ids).not.toContain(8); // start
      const module = new WebAssembly.Module(bytes);
      expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      const exports = WebAssembly.Module.exports(module);
      expect(exports.every((e) => e.kind === 'function' || e.kind === 'global')).toBe(true);
      // the exported globals are exactly the generated ABI constants, and immutable
      const globals = exports.filter((e) => e.kind === 'global').map((e) => e.name);
      expect(globals.sort()).toEqual(WASM_CONSTANTS.map((c) => c.name).sort());
      const { exports: live } = new WebAssembly.Instance(module, {
        env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: build.endsWith('-mt') }) },
      });
      for (const name of globals) expect(() => ((live[name] as WebAssembly.Global).value = 0)).toThrow(TypeError);
    });
  }

  it('the generated JS modules carry the same bytes as the .wasm files', async () => {
    for (const build of builds) {
      const mod = await import(join(root, 'build/wasm', `${build}.js`));
      expect(
        Buffer.from(mod.wasmBase64, 'base64').equals(readFileSync(join(root, 'build/wasm', `${build}.wasm`))),
      ).toBe(true);
    }
  });
});

describe('Engine.create with a given module', () => {
  it('accepts a precompiled WebAssembly.Module (edge runtimes) and raw bytes', async () => {
    const bytes = readFileSync(join(root, 'build/wasm/simd.wasm'));
    const a = await Engine.create({ threads: 1, simd: 'simd', wasm: new WebAssembly.Module(bytes) });
    const b = await Engine.create({ threads: 1, simd: 'simd', wasm: bytes });
    expect(a.info.build).toBe('simd');
    expect(b.info.build).toBe('simd');
    a.dispose();
    b.dispose();
  });

  it('refuses a module of another ABI version, and a module of the wrong build', async () => {
    // (module (import "env" "memory" (memory 1)) (func (export "abi_version") (result i32) i32.const 99))
    const other = new Uint8Array([
      0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7f, 2, 0x0f, 1, 3, 0x65, 0x6e, 0x76, 6, 0x6d, 0x65, 0x6d,
      0x6f, 0x72, 0x79, 2, 0, 1, 3, 2, 1, 0, 7, 0x0f, 1, 0x0b, 0x61, 0x62, 0x69, 0x5f, 0x76, 0x65, 0x72, 0x73, 0x69,
      0x6f, 0x6e, 0, 0, 0x0a, 7, 1, 5, 0, 0x41, 0xe3, 0, 0x0b,
    ]);
    const err = await Engine.create({ threads: 1, simd: 'simd', wasm: other }).catch((e) => e);
    expect(err).toBeInstanceOf(DdpmError);
    expect(err.code).toBe('WASM_VERSION');
    expect(err.message).toContain(`ABI version 99, this JS expects ${ABI_VERSION}`);
    // the single-threaded build cannot take the shared memory of a threaded engine
    const st = readFileSync(join(root, 'build/wasm/simd.wasm'));
    const err2 = await Engine.create({ threads: 2, simd: 'simd', wasm: st }).catch((e) => e);
    expect(err2.code).toBe('UNSUPPORTED');
    expect(err2.message).toMatch(/simd-mt build/);
  });
});
