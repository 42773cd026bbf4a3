// Public API of ddpm-wasm.
export { DdpmError, type DdpmErrorCode } from './errors.js';
export { Engine, ABI_VERSION, type EngineOptions, type EngineInfo, type BuildName, type SimdLevel } from './engine/engine.js';
export type { Tensor } from './engine/memory.js';
export * as kernels from './kernels/index.js';
