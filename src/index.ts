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

// ONNX export (speed, issue 10): the graph writers behind UNet2DModel.toOnnx() / MLPDenoiser.toOnnx()
export { unetToOnnx, mlpToOnnx, type WeightSource } from './nn/onnx.js';
