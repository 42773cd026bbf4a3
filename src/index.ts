// Public API of ddpm-wasm.
export { DdpmError, type DdpmErrorCode } from './errors.js';
export { Engine, ABI_VERSION, type EngineOptions, type EngineInfo, type BuildName, type SimdLevel } from './engine/engine.js';
export type { Tensor } from './engine/memory.js';
export * as kernels from './kernels/index.js';
export * from './diffusion/index.js';
export { UNet2DModel, timestepEmbedding, type ForwardOptions, type ForwardHook } from './nn/unet.js';
export { parseUNetConfig, type UNet2DConfig } from './nn/unet-config.js';
export type { Denoiser, TrainForward, TrainForwardOptions } from './nn/denoiser.js';
export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export { MLPDenoiser } from './nn/mlp.js';
export * from './train/trainer.js';
export * from './train/checkpoint.js';
export { twoMoons, swissRoll } from './train/toy-data.js';

// hardening (issue 12): caps and memory plans computed before allocation, JSON validation helpers
export { LIMITS, checkJsBudget } from './limits.js';
export { unetParamCount, unetParamBytes, unetForwardBytes } from './nn/unet-plan.js';
export { Checker, show, own, hasOwn } from './validate.js';
export type { ArenaTag, Lease } from './engine/memory.js';
