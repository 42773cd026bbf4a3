// The whole Wasm interface: every export of the module is listed here. Kernels are pure functions over
// byte pointers into the imported memory; they never allocate and hold no static data, so any number of
// instances (one per worker) can share one memory.

import { madd } from './shared';

// Every export below is bound by the TS side through src/engine/wasm-interface.generated.ts, which
// scripts/gen-bindings.mjs writes from this file (and the files it re-exports) at build time: exported
// functions with (…, ith, nth) are kernels, dispatched by id; other functions are queries; exported consts
// are ABI constants (Wasm globals, their values checked at Engine.create). See docs/wasm-interface.md.

/** Bumped whenever an export's signature or meaning changes; the JS side refuses a mismatched build.
 * 2: *_backward kernels take beta (accumulate), conv2d_f32 takes beta. 3: ABI constants exported. */
export const ABI_VERSION: i32 = 3;

/** The ABI version, as a function: modules older than the exported constants have only this. */
export function abi_version(): i32 {
  return ABI_VERSION;
}

/** build_id bit: relaxed SIMD. */
export const BUILD_RELAXED_SIMD: i32 = 1;
/** build_id bit: threads (shared memory). */
export const BUILD_THREADS: i32 = 2;

/**
 * Which build this module is, read by the JS side after instantiation, so a module handed in (edge
 * runtimes import .wasm files as modules) is checked rather than trusted: bit 0 relaxed SIMD, bit 1
 * threads (shared memory). Compile-time constants: each build folds this to one number.
 */
export function build_id(): i32 {
  return (ASC_FEATURE_RELAXED_SIMD ? BUILD_RELAXED_SIMD : 0) | (ASC_FEATURE_THREADS ? BUILD_THREADS : 0);
}

/**
 * madd(a, b, c) on lane 0, as the kernels compute it: relaxed_madd in the relaxed builds, mul then add
 * in the others. With a = b = 1 + 2^-12 and c = −1 it tells whether this engine fuses relaxed_madd,
 * without compiling a probe module (which Cloudflare Workers and Vercel Edge forbid).
 */
export function madd_probe(a: f32, b: f32, c: f32): f32 {
  return f32x4.extract_lane(madd(f32x4.splat(a), f32x4.splat(b), f32x4.splat(c)), 0);
}

export * from './elementwise';
export * from './gemm';
export * from './conv';
export * from './winograd'; // Winograd F(2×2,3×3) / F(4×4,3×3) transforms
export * from './norm';
export * from './gaussian';
export * from './optim';
export * from './bench';
// The packed GEMM's workspace per thread (it depends on the build's micro-tile) and its bias modes.
export { WORKSPACE_BYTES, BIAS_NONE, BIAS_ROW, BIAS_COL } from './gemm-core';
