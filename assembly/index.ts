// The whole Wasm interface: every export of the module is listed here. Kernels are pure functions over
// byte pointers into the imported memory; they never allocate and hold no static data, so any number of
// instances (one per worker) can share one memory.

/** Bumped whenever an export's signature or meaning changes; the JS side refuses a mismatched build. */
export function abi_version(): i32 {
  return 2; // 2: *_backward kernels take beta (accumulate), conv2d_f32 takes beta
}

export * from './elementwise';
export * from './gemm';
export * from './conv';
export * from './norm';
export * from './gaussian';
export * from './optim';
export * from './bench';
