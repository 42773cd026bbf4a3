// What JavaScript runtime we are in, and what it can do. Nothing here touches `node:*` or
// `import.meta.url` at module top level: edge runtimes and browser bundles must be able to import it.
import { osModule, v8Module } from '#platform';

export type RuntimeName = 'node' | 'deno' | 'bun' | 'browser' | 'worker' | 'workerd' | 'edge-light' | 'unknown';

declare const Deno: unknown;
declare const Bun: unknown;
declare const EdgeRuntime: unknown;

export function runtimeName(): RuntimeName {
  const g = globalThis as Record<string, unknown>;
  if (typeof Deno !== 'undefined') return 'deno';
  if (typeof Bun !== 'undefined') return 'bun';
  // Before Node: workerd with nodejs_compat has a `process` too. Both names are the runtimes' own
  // (Cloudflare's navigator.userAgent; Vercel's EdgeRuntime global, also set by the edge-runtime package).
  if ((g.navigator as { userAgent?: string } | undefined)?.userAgent === 'Cloudflare-Workers') return 'workerd';
  if (typeof EdgeRuntime === 'string') return 'edge-light';
  const proc = g.process as { versions?: { node?: string } } | undefined;
  if (proc?.versions?.node) return 'node';
  if (typeof g.window !== 'undefined' && typeof g.document !== 'undefined') return 'browser';
  if (typeof g.importScripts === 'function' || typeof g.WorkerGlobalScope !== 'undefined') return 'worker';
  return 'unknown';
}

// (module (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);
// (module (func (param v128 v128) (result v128) local.get 0 local.get 1 f32x4.add))
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01, 0x60, 0x02, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02,
  0x01, 0x00, 0x0a, 0x0b, 0x01, 0x09, 0x00, 0x20, 0x00, 0x20, 0x01, 0xfd, 0xe4, 0x01, 0x0b,
]);

// (module (func (export "f") (param f32 f32 f32) (result f32)
//   (f32x4.extract_lane 0 (f32x4.relaxed_madd (f32x4.splat a) (f32x4.splat b) (f32x4.splat c)))))
const MADD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7d, 0x7d, 0x7d, 0x01, 0x7d, 0x03,
  0x02, 0x01, 0x00, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0x20, 0x00, 0xfd, 0x13,
  0x20, 0x01, 0xfd, 0x13, 0x20, 0x02, 0xfd, 0x13, 0xfd, 0x85, 0x02, 0xfd, 0x1f, 0x00, 0x0b,
]);

/**
 * Whether relaxed_madd is fused here. The spec lets an engine pick either; V8 (Node, Deno, Chromium)
 * emits vfmadd on x86 with FMA, JavaScriptCore (Bun, Safari) emits mul+add. With a = 1 + 2^-12,
 * a·a − 1 is 2^-11 + 2^-24 exactly when fused and 2^-11 when the product is rounded first.
 */
export function relaxedMaddIsFused(): boolean {
  const f = new WebAssembly.Instance(new WebAssembly.Module(MADD_PROBE)).exports.f as (
    a: number,
    b: number,
    c: number,
  ) => number;
  const a = 1 + 2 ** -12;
  return f(a, a, -1) === 2 ** -11 + 2 ** -24;
}

/**
 * Whether this runtime compiles WebAssembly at run time. Cloudflare Workers and Vercel Edge do not
 * ("Wasm code generation disallowed by embedder"): there a module must come in precompiled, imported
 * as a `.wasm` module. Compiling a 34-byte module takes microseconds and is allowed everywhere else,
 * even synchronously on a browser's main thread (the limit there is 4 KB).
 */
export function canCompileWasm(): { ok: boolean; why: string } {
  try {
    new WebAssembly.Module(SIMD_PROBE);
    return { ok: true, why: 'WebAssembly compiles at run time' };
  } catch (e) {
    return {
      ok: false,
      why: `this runtime does not compile WebAssembly at run time (${(e as Error).name}: ${(e as Error).message})`,
    };
  }
}

export function hasSimd(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
}

let nodeFlagTried = false;

/**
 * Relaxed SIMD is on by default in Deno, Bun and Chromium. Node 20's V8 (11.3) has it behind
 * `--experimental-wasm-relaxed-simd`, which NODE_OPTIONS refuses; V8 reads the flag when it validates a
 * module, so setting it through `v8.setFlagsFromString` before our first compile works. We do that only
 * when `allowNodeFlag` is set (the default, see EngineOptions.nodeRelaxedSimdFlag).
 */
export async function hasRelaxedSimd(allowNodeFlag: boolean): Promise<{ ok: boolean; why: string }> {
  if (WebAssembly.validate(RELAXED_PROBE)) return { ok: true, why: 'relaxed SIMD validates natively' };
  if (allowNodeFlag && runtimeName() === 'node' && !nodeFlagTried) {
    nodeFlagTried = true;
    try {
      const v8 = await v8Module();
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // a restricted Node (permission model, embedder) may refuse; fall back to plain SIMD below
    }
    if (WebAssembly.validate(RELAXED_PROBE)) {
      return { ok: true, why: 'relaxed SIMD enabled with v8.setFlagsFromString("--experimental-wasm-relaxed-simd")' };
    }
  }
  return { ok: false, why: 'this runtime does not validate f32x4.relaxed_madd' };
}

/** Can a shared WebAssembly.Memory exist here and be posted to a worker? */
export function sharedMemoryStatus(): { ok: boolean; why: string } {
  const g = globalThis as Record<string, unknown>;
  // Browsers hide SharedArrayBuffer unless the page is isolated: say so first, it is the fix.
  if (g.crossOriginIsolated === false) {
    return { ok: false, why: 'the page is not cross-origin isolated (COOP/COEP headers missing)' };
  }
  if (typeof SharedArrayBuffer === 'undefined') return { ok: false, why: 'SharedArrayBuffer is not defined' };
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (e) {
    return { ok: false, why: `shared WebAssembly.Memory refused: ${(e as Error).message}` };
  }
  return { ok: true, why: 'shared memory available' };
}

/**
 * Can this runtime start the pool's workers? Node uses worker_threads; every other runtime a module
 * Worker started from a Blob URL (pool.ts), so it needs both `Worker` and `URL.createObjectURL`.
 * Cloudflare Workers and Vercel Edge have neither.
 */
export function workerStatus(): { ok: boolean; why: string } {
  if (runtimeName() === 'node') return { ok: true, why: 'node:worker_threads' };
  const g = globalThis as Record<string, unknown>;
  if (typeof g.Worker !== 'function') return { ok: false, why: 'this runtime has no Worker' };
  if (typeof (URL as { createObjectURL?: unknown }).createObjectURL !== 'function') {
    return { ok: false, why: 'this runtime has no URL.createObjectURL, which starting a Worker from a Blob URL needs' };
  }
  return { ok: true, why: 'Worker and Blob URLs available' };
}

/** Number of logical cores, or 1 when the runtime does not say. */
export async function coreCount(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency && nav.hardwareConcurrency > 0) return nav.hardwareConcurrency;
  if (runtimeName() === 'node') {
    // A web bundle (no node:os behind '#platform') run by Node, e.g. in a Node-based edge sandbox: 1.
    const os = await osModule().catch(() => null);
    if (os) return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  return 1;
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const g = globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } };
  if (g.Buffer) return Uint8Array.from(g.Buffer.from(b64, 'base64'));
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
