// Binding a Wasm instance to the generated interface (wasm-interface.generated.ts, written from
// assembly/index.ts by scripts/gen-bindings.mjs): every kernel once, by id, with its presence and arity
// checked; the queries; and the ABI constants compared with the module's globals. A module built from
// another version of assembly/ fails here, at Engine.create, naming the export — not at its first call.
import { DdpmError } from '../errors.js';
import { CONSTANTS, KERNELS, QUERIES, type Queries, type WasmBuild } from './wasm-interface.generated.js';

export type Kernel = (...args: number[]) => void;

/** The kernel names by id, for the workers (which bind their own instance by name) and messages. */
export const KERNEL_NAMES: readonly string[] = KERNELS.map((k) => k.name);

/** Parameter count of each kernel by id, without (ith, nth). */
export const KERNEL_ARITY: readonly number[] = KERNELS.map((k) => k.params.length);

function rebuild(what: string): string {
  return `${what} was built from another version of assembly/index.ts than this JS: rebuild or reinstall ddpm-wasm, or pass the .wasm files of this version`;
}

/** The kernels of an instance as a table by id: every export present, each taking its params + (ith, nth). */
export function bindKernels(exports: WebAssembly.Exports, what: string): Kernel[] {
  return KERNELS.map((k) => {
    const fn = exports[k.name];
    const sig = `${k.name}(${[...k.params.map(([name, type]) => `${name}: ${type}`), 'ith', 'nth'].join(', ')})`;
    if (typeof fn !== 'function')
      throw new DdpmError('WASM_VERSION', `${what} has no export ${k.name} (${k.file}): ${rebuild('it')}`);
    if (fn.length !== k.params.length + 2) {
      throw new DdpmError(
        'WASM_VERSION',
        `${what}: ${k.name} takes ${fn.length} arguments, this JS expects ${k.params.length + 2}, ${sig} (${k.file}): ${rebuild('it')}`,
      );
    }
    return fn as Kernel;
  });
}

/** The queries of an instance (abi_version, build_id, …), each checked for presence and arity. */
export function bindQueries(exports: WebAssembly.Exports, what: string): Queries {
  const out: Record<string, unknown> = {};
  for (const [name, arity] of Object.entries(QUERIES)) {
    const fn = exports[name];
    if (typeof fn !== 'function' || fn.length !== arity) {
      throw new DdpmError(
        'WASM_VERSION',
        `${what}: ${typeof fn === 'function' ? `${name} takes ${fn.length} arguments, this JS expects ${arity}` : `no export ${name}`}: ${rebuild('it')}`,
      );
    }
    out[name] = fn;
  }
  return out as unknown as Queries;
}

/** The value of an ABI constant this JS was generated with, for one build. */
export function constantFor(value: number | Readonly<Record<WasmBuild, number>>, build: WasmBuild): number {
  return typeof value === 'number' ? value : value[build];
}

/** Throws unless every ABI constant is exported by the instance with the value generated for `build`. */
export function checkConstants(exports: WebAssembly.Exports, build: WasmBuild, what: string): void {
  for (const c of CONSTANTS) {
    const g = exports[c.name];
    const expected = constantFor(c.value, build);
    if (!(g instanceof WebAssembly.Global) && Object.prototype.toString.call(g) !== '[object WebAssembly.Global]')
      throw new DdpmError('WASM_VERSION', `${what} has no constant ${c.name}: ${rebuild('it')}`);
    const raw = (g as WebAssembly.Global).value as number;
    const found = c.type === 'u32' || c.type === 'usize' ? raw >>> 0 : raw;
    if (found !== expected) {
      throw new DdpmError(
        'WASM_VERSION',
        `${what}: ABI constant ${c.name} is ${found}, this JS expects ${expected} for the ${build} build: ${rebuild('it')}`,
      );
    }
  }
}
