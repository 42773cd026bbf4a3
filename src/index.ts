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

// Pipeline and loaders (issue 8): DDPMPipeline, model sources (folder, URL, bytes, shipped name), the
// model registry by _class_name, and browser-safe images → PNG.
export { DDPMPipeline, type FromPretrainedOptions, type RunOptions, type StepInfo, type PipelineOutput } from './pipelines/ddpm.js';
export { schedulerFromConfig, SCHEDULER_NAMES, type PipelineScheduler } from './pipelines/scheduler-choice.js';
export { openSource, folderSource, urlSource, bytesSource, subfolder, SHIPPED_MODELS, type FileSource, type FileData, type ModelSource } from './io/sources.js';
export { MODEL_CLASSES, modelClass, loadModel, type ModelClass, type PretrainedModel } from './nn/registry.js';
export { toPng, imageGrid, scaleImage, tensorToImages, type RgbaImage, type GridOptions, type ToPngOptions } from './io/image.js';
