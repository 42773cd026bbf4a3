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
// posterior (issues 13.2, 11.4): the model's Gaussian p_θ(x_{t−1} | x_t) in one place, and the bound's
// terms with their gradients (training on L_vlb / L_hybrid)
export {
  pMeanVariance, qPosteriorCoefficients, stepAlphas, predX0Coefficients, predEpsCoefficients, trainingTargetCoefficients, modelLogVariance,
  type PMeanVariance, type PMeanVarianceOptions, type ModelVariance, type ModelVarianceType, type StepAlphas, type PosteriorCoefficients, type FinalVariance,
} from './diffusion/posterior.js';
export { vlbTerm, type VlbGrad } from './diffusion/vlb.js';
