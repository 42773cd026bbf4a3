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
// trainrun: the run folder (lock, run.json, checkpoints, append-only loss log, sample grids, export)
export { TrainingRun, parseRunIdentity, dataHash, RUN_FILE, RUN_FORMAT, RUN_VERSION, LOSS_FILE, CHECKPOINTS_DIR, SAMPLES_DIR, MODEL_DIR, type RunIdentity, type StartOptions, type ResumeOptions, type RunTrainOptions, type RunResult, type TrainData } from './train/run.js';
export { RunLock, LOCK_FILE, type LockHolder } from './train/lock.js';
export { MNIST_RECIPE } from './nn/presets.js';
