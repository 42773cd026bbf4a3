// The generated Wasm interface (scripts/gen-bindings.mjs → src/engine/wasm-interface.generated.ts): it
// covers every export of every build, Engine.create refuses a module that lacks a kernel or constant
// (naming it and the build), a call with the wrong argument count is a type error and a run-time error,
// and the generator follows re-exports and refuses what cannot cross the interface.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { afterAll, describe, expect, it } from 'vitest';
import { bindKernels, checkConstants } from '../src/engine/bind.js';
import { MAX_ARGS } from '../src/engine/control.js';
import { QUERIES } from '../src/engine/wasm-interface.generated.js';
import { ABI_VERSION, DdpmError, Engine, KERNEL, KERNELS, WASM_CONSTANTS } from '../src/index.js';

setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20 (the engine does the same)

const root = join(__dirname, '..');
const builds = ['simd', 'relaxed', 'simd-mt', 'relaxed-mt'] as const;
const wasmBytes = (build: string) => readFileSync(join(root, 'build/wasm', `${build}.wasm`));

/** A copy of `bytes` with the export name `from` renamed to `to` (same length: only the bytes change). */
function renameExport(bytes: Uint8Array, from: string, to: string): Uint8Array<ArrayBuffer> {
  expect(to.length).toBe(from.length);
  const needle = Buffer.from([from.length, ...Buffer.from(from)]);
  const out = Uint8Array.from(bytes);
  const at = Buffer.from(out.buffer).indexOf(needle);
  expect(at).toBeGreaterThan(0);
  out.set(Buffer.from(to), at + 1);
  return out;
}

describe('the generated interface', () => {
  for (const build of builds) {
    it(`${build}: every function export is a generated kernel or query, with the generated arity`, () => {
      const module = new WebAssembly.Module(wasmBytes(build));
      const functions = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function');
      const generated = [...KERNELS.map((k) => k.name), ...Object.keys(QUERIES)];
      expect(functions.map((e) => e.name).sort()).toEqual(generated.sort());
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: build.endsWith('-mt') });
      const { exports } = new WebAssembly.Instance(module, { env: { memory } });
      for (const k of KERNELS) expect((exports[k.name] as () => void).length, k.name).toBe(k.params.length + 2);
      expect(() => bindKernels(exports, build)).not.toThrow();
      expect(() => checkConstants(exports, build, build)).not.toThrow();
    });
  }

  it('every kernel fits the control block (the pool copies at most MAX_ARGS arguments)', () => {
    for (const k of KERNELS) expect(k.params.length, k.name).toBeLessThanOrEqual(MAX_ARGS);
  });

  it('ids are positions in KERNELS', () => {
    expect(Object.keys(KERNEL)).toEqual(KERNELS.map((k) => k.name));
    expect(Object.values(KERNEL)).toEqual(KERNELS.map((_, i) => i));
  });

  it('binding names a missing kernel, a wrong arity and the build', () => {
    const exports: Record<string, unknown> = {};
    for (const k of KERNELS) exports[k.name] = new Function(...k.params.map(([n]) => n), 'ith', 'nth', '');
    expect(() => bindKernels(exports as WebAssembly.Exports, 'the simd build')).not.toThrow();
    const two = { ...exports, axpy_f32: (_n: number, _a: number) => {} };
    expect(() => bindKernels(two as WebAssembly.Exports, 'the simd build')).toThrowError(
      /the simd build: axpy_f32 takes 2 arguments, this JS expects 6, axpy_f32\(n: i32, a: f32, x: usize, y: usize, ith, nth\)/,
    );
    const { gemm_f32: _, ...missing } = exports;
    try {
      bindKernels(missing as WebAssembly.Exports, 'the relaxed build');
      expect.unreachable();
    } catch (e) {
      expect((e as DdpmError).code).toBe('WASM_VERSION');
      expect((e as Error).message).toMatch(/the relaxed build has no export gemm_f32 \(assembly\/gemm\.ts\)/);
    }
  });

  it('Engine.create refuses a module without a kernel or an ABI constant, naming it and the build', async () => {
    const bytes = wasmBytes('simd');
    const noKernel = renameExport(bytes, 'ema_update_f32', 'ema_update_f64');
    const err = await Engine.create({ threads: 1, wasm: noKernel }).catch((e) => e);
    expect(err).toBeInstanceOf(DdpmError);
    expect(err.code).toBe('WASM_VERSION');
    expect(err.message).toMatch(
      /the simd module in options\.wasm has no export ema_update_f32 \(assembly\/optim\.ts\)/,
    );
    const noConstant = renameExport(bytes, 'NORM_BLOCK', 'NORM_BLOKK');
    const err2 = await Engine.create({ threads: 1, wasm: noConstant }).catch((e) => e);
    expect(err2.code).toBe('WASM_VERSION');
    expect(err2.message).toMatch(/the simd module in options\.wasm has no constant NORM_BLOCK/);
  });

  it('a constant with another value than the generated one is refused', () => {
    const module = new WebAssembly.Module(wasmBytes('simd'));
    const { exports } = new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1 }) } });
    // the relaxed build's micro-tile has 6 rows, the plain one 5: their GEMM workspaces differ
    expect(() => checkConstants(exports, 'relaxed', 'the simd module')).toThrowError(
      /the simd module: ABI constant WORKSPACE_BYTES is \d+, this JS expects \d+ for the relaxed build/,
    );
    expect(WASM_CONSTANTS.find((c) => c.name === 'WORKSPACE_BYTES')?.value).toMatchObject({
      simd: (exports.WORKSPACE_BYTES as WebAssembly.Global).value,
    });
  });

  it('a call with the wrong argument count is a type error, and an error when it comes from JavaScript', async () => {
    const e = await Engine.create({ threads: 1 });
    try {
      const x = e.alloc(4, 'x');
      const call = () =>
        // @ts-expect-error: axpy_f32 takes (n, a, x, y)
        e.run(KERNEL.axpy_f32, [4, 1, x.ptr]);
      expect(call).toThrowError(/axpy_f32 takes 4 arguments \(without ith, nth\), found 3/);
      // @ts-expect-error: not an id
      expect(() => e.run(99999, [])).toThrowError(/no kernel with id 99999/);
      expect(e.queries.abi_version()).toBe(ABI_VERSION);
    } finally {
      e.dispose();
    }
  });
});

describe('scripts/gen-bindings.mjs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ddpm-bindings-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // a variable specifier: the test config type-checks no JavaScript
  const script = join(root, 'scripts', 'gen-bindings.mjs');
  const gen = (): Promise<{ readInterface(entry: string): Interface }> => import(script);
  interface Interface {
    kernels: { name: string; file: string; params: { name: string; type: string }[] }[];
    queries: { name: string; result: string }[];
    constants: { name: string; type: string }[];
  }

  function tree(files: Record<string, string>): string {
    const d = mkdtempSync(join(dir, 'tree-'));
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(d, name, '..'), { recursive: true });
      writeFileSync(join(d, name), text);
    }
    return join(d, 'index.ts');
  }

  it('follows re-exports in order, splits kernels from queries, and picks up a new file', async () => {
    const { readInterface } = await gen();
    const entry = tree({
      'index.ts': [
        'export const ABI_VERSION: i32 = 7;',
        'export function abi_version(): i32 { return ABI_VERSION; }',
        "export * from './a';",
        "export { WS as WORKSPACE, helper_f32 } from './b';",
      ].join('\n'),
      'a.ts': [
        "import { x } from './b';",
        '/** y = x */',
        '// @ts-ignore: decorator',
        '@inline',
        'export function copy_f32(n: i32, x: usize, y: usize, ith: i32, nth: i32): void {}',
        "export * from './sub/c';",
      ].join('\n'),
      'b.ts': [
        'export const WS: usize = 64 << 10;',
        'export function helper_f32(n: i32, a: f64, ith: i32, nth: i32): void {}',
        'export function not_reexported(v: v128): v128 { return v; }',
        'export class Hidden {}',
      ].join('\n'),
      'sub/c.ts': 'export function new_kernel_f32(p: u32, ith: i32, nth: i32): void {}',
    });
    const iface = readInterface(entry);
    expect(iface.kernels.map((k) => k.name)).toEqual(['copy_f32', 'new_kernel_f32', 'helper_f32']);
    expect(iface.kernels[0].params).toEqual([
      { name: 'n', type: 'i32' },
      { name: 'x', type: 'usize' },
      { name: 'y', type: 'usize' },
    ]);
    expect(iface.kernels[1].file).toMatch(/sub\/c\.ts$/);
    expect(iface.queries.map((q) => [q.name, q.result])).toEqual([['abi_version', 'i32']]);
    expect(iface.constants.map((c) => [c.name, c.type])).toEqual([
      ['ABI_VERSION', 'i32'],
      ['WORKSPACE', 'usize'],
    ]);
  });

  it('refuses what cannot cross the interface, naming file and line', async () => {
    const { readInterface } = await gen();
    const i64 = tree({ 'index.ts': 'export function f(a: i32,\n  seed: i64, ith: i32, nth: i32): void {}' });
    expect(() => readInterface(i64)).toThrowError(/index\.ts:2: parameter seed of f has type i64/);
    const nonVoid = tree({ 'index.ts': 'export function k(n: i32, ith: i32, nth: i32): i32 { return n; }' });
    expect(() => readInterface(nonVoid)).toThrowError(/kernel k must take \(…, ith: i32, nth: i32\) and return void/);
    const twice = tree({
      'index.ts': "export const A: i32 = 1;\nexport * from './b';",
      'b.ts': 'export const A: i32 = 2;',
    });
    expect(() => readInterface(twice)).toThrowError(/exports A twice/);
    const cls = tree({ 'index.ts': "export * from './b';", 'b.ts': 'export class Geometry {}' });
    expect(() => readInterface(cls)).toThrowError(/b\.ts:1: Geometry is a class or enum/);
  });
});
