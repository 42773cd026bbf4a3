// The whole Wasm interface: every export of the module is listed here. Kernels are pure functions over
// byte pointers into the imported memory; they never allocate and hold no static data, so any number of
// instances (one per worker) can share one memory.

import { madd } from './shared';

/** Bumped whenever an export's signature or meaning changes; the JS side refuses a mismatched build. */
export function abi_version(): i32 {
  return 2; // 2: *_backward kernels take beta (accumulate), conv2d_f32 takes beta
}

/**
 * Which build this module is, read by the JS side after instantiation, so a module handed in (edge
 * runtimes import .wasm files as modules) is checked rather than trusted: bit 0 relaxed SIMD, bit 1
 * threads (shared memory). Compile-time constants: each build folds this to one number.
 */
export function build_id(): i32 {
  return (ASC_FEATURE_RELAXED_SIMD ? 1 : 0) | (ASC_FEATURE_THREADS ? 2 : 0);
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
