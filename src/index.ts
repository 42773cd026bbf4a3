// Public API of ddpm-wasm. Every name is listed on purpose (no `export *`), so helpers used between our own
// modules stay internal. One block per area: a new feature adds its lines to its block (or a new block
// with a comment naming it), which keeps parallel changes apart.

// --- errors ---
export { DdpmError, type DdpmErrorCode } from './errors.js';

// --- random numbers ---
export { splitU64, type U64 } from './random.js';

// --- engine: the Wasm build, memory and worker pool ---
export {
  Engine,
  ABI_VERSION,
  type EngineOptions,
  type EngineInfo,
  type BuildName,
  type SimdLevel,
} from './engine/engine.js';
export type { Tensor, Arena } from './engine/memory.js';
export type { RuntimeName } from './engine/runtime.js';

// --- the generated Wasm interface (scripts/gen-bindings.mjs, docs/wasm-interface.md): kernel ids for
// engine.run(KERNEL.name, [...]), their signatures, and the ABI constants of assembly/index.ts ---
export {
  KERNEL,
  KERNELS,
  CONSTANTS as WASM_CONSTANTS,
  type KernelArgs,
  type KernelId,
  type KernelSignature,
  type WasmType,
} from './engine/wasm-interface.generated.js';

// --- kernels: typed calls on engine tensors (`kernels.gemm(engine, …)`); the list is src/kernels/index.ts ---
export * as kernels from './kernels/index.js';

// --- diffusion: schedules, the forward process and posterior ---
export {
  BETA_SCHEDULES,
  betaSchedule,
  linspace,
  makeSchedule,
  namedSchedule,
  scheduleFromAlphasCumprod,
  type BetaScheduleName,
  type BetaScheduleOptions,
  type NoiseSchedule,
} from './diffusion/schedule.js';
export { addNoise, predictStartFromNoise, qPosterior, type AddNoiseOptions } from './diffusion/forward.js';
export { normalKl, discretizedGaussianLogLikelihood } from './diffusion/gaussian-math.js';

// --- diffusion: schedulers ---
export {
  SchedulerBase,
  type PredictionType,
  type TimestepSpacing,
  type SchedulerOptions,
  type SchedulerOutput,
  type StepOptions,
} from './diffusion/scheduler.js';
export { DDPMScheduler, type DDPMSchedulerOptions, type VarianceType } from './diffusion/ddpm.js';
export { DDIMScheduler, type DDIMSchedulerOptions, type DDIMStepOptions } from './diffusion/ddim.js';

// --- diffusion: few-step solvers (issue 9) and the sampler / _class_name registry ---
export { SolverBase, type SolverState } from './diffusion/solver.js';
export { DPMSolverMultistepScheduler } from './diffusion/dpm-solver.js';
export { UniPCMultistepScheduler } from './diffusion/unipc.js';
export { EulerDiscreteScheduler, EulerAncestralDiscreteScheduler } from './diffusion/euler.js';
export { HeunDiscreteScheduler } from './diffusion/heun.js';
export {
  SAMPLER_NAMES,
  SCHEDULER_CLASSES,
  createSampler,
  schedulerFromConfig,
  modelCallsForSteps,
  stepsForModelCalls,
  type SamplerName,
  type AnyScheduler,
  type CreateSamplerOptions,
} from './diffusion/samplers.js';

// --- diffusion: resumable sampling chains ---
export {
  SamplingChain,
  SAMPLING_STATE_FORMAT,
  SAMPLING_STATE_VERSION,
  SAMPLING_STATE_VERSIONS,
  type SamplingChainOptions,
  type SamplingModel,
  type SamplingState,
} from './diffusion/sampling.js';

// --- diffusion: the variational bound (bits/dim) ---
export {
  variationalBound,
  type BoundModel,
  type BoundOptions,
  type BoundResult,
  type BoundVarianceType,
} from './diffusion/bound.js';

// --- nn: models ---
export { UNet2DModel, WEIGHTS_FILE, timestepEmbedding, type ForwardOptions, type ForwardHook } from './nn/unet.js';
export { parseUNetConfig, type UNet2DConfig, type DownBlockType, type UpBlockType } from './nn/unet-config.js';
export { UNET_PRESETS, type UNetPreset } from './nn/presets.js';
export { MLPDenoiser, parseMLPConfig, MLP_WEIGHTS_FILE, type MLPConfig } from './nn/mlp.js';
export type { Denoiser, TrainForward, TrainForwardOptions } from './nn/denoiser.js';
export type { ParamBlock, ParamSpec } from './nn/params.js';

// --- io (the rest of it is `ddpm-wasm/io`) ---
export { readSafetensors, writeSafetensors, type SafeTensor, type SafeTensorsFile } from './io/safetensors.js';

// --- train: the trainer ---
export {
  Trainer,
  EMA_DEFAULTS,
  emaDecay,
  learningRateAt,
  parseTrainerConfig,
  type EmaConfig,
  type TrainerConfig,
  type TrainerOptions,
  type TrainerCounters,
  type TrainProgress,
  type TrainResult,
  type TrainRunOptions,
} from './train/trainer.js';

// --- train: checkpoints ---
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  checkpointFiles,
  checkpointName,
  loadCheckpoint,
  modelFromCheckpoint,
  parseCheckpoint,
  restoreTrainer,
  saveCheckpoint,
  type Checkpoint,
  type CheckpointManifest,
} from './train/checkpoint.js';

// --- train: toy data ---
export { twoMoons, swissRoll } from './train/toy-data.js';

// Pipeline and loaders (issue 8): DDPMPipeline, model sources (folder, URL, bytes, shipped name), the
// model registry by _class_name, and browser-safe images → PNG.
export {
  DDPMPipeline,
  type FromPretrainedOptions,
  type RunOptions,
  type Autoguidance,
  type StepInfo,
  type PipelineOutput,
} from './pipelines/ddpm.js';
export { pipelineScheduler, SCHEDULER_NAMES, type PipelineScheduler } from './pipelines/scheduler-choice.js';
export {
  openSource,
  folderSource,
  urlSource,
  bytesSource,
  subfolder,
  SHIPPED_MODELS,
  type FileSource,
  type FileData,
  type ModelSource,
} from './io/sources.js';
export { MODEL_CLASSES, modelClass, loadModel, type ModelClass, type PretrainedModel } from './nn/registry.js';
export {
  toPng,
  imageGrid,
  scaleImage,
  tensorToImages,
  type RgbaImage,
  type GridOptions,
  type ToPngOptions,
} from './io/image.js';

// --- train: the run folder (issue 13 item 1, issue 12 item 3): lock, run.json, checkpoints, append-only
// loss log, sample grids, export; Trainer.state()/restore(); the shipped MNIST recipe ---
export {
  TrainingRun,
  parseRunIdentity,
  dataHash,
  RUN_FILE,
  RUN_FORMAT,
  RUN_VERSION,
  LOSS_FILE,
  CHECKPOINTS_DIR,
  SAMPLES_DIR,
  MODEL_DIR,
  type RunIdentity,
  type StartOptions,
  type ResumeOptions,
  type RunTrainOptions,
  type RunResult,
  type TrainData,
} from './train/run.js';
export { RunLock, LOCK_FILE, type LockHolder } from './train/lock.js';
export type { TrainerState } from './train/trainer.js';
export { MNIST_RECIPE, MNIST_RECIPE_V1 } from './nn/presets.js';

// posterior (issues 13.2, 11.4): the model's Gaussian p_θ(x_{t−1} | x_t) in one place, and the bound's
// terms with their gradients (training on L_vlb / L_hybrid)
export {
  pMeanVariance,
  qPosteriorCoefficients,
  stepAlphas,
  predX0Coefficients,
  predEpsCoefficients,
  trainingTargetCoefficients,
  modelLogVariance,
  type PMeanVariance,
  type PMeanVarianceOptions,
  type ModelVariance,
  type ModelVarianceType,
  type StepAlphas,
  type PosteriorCoefficients,
  type FinalVariance,
} from './diffusion/posterior.js';
export { vlbTerm, type VlbGrad } from './diffusion/vlb.js';

// ONNX export (speed, issue 10): the graph writers behind UNet2DModel.toOnnx() / MLPDenoiser.toOnnx()
export { unetToOnnx, mlpToOnnx, type WeightSource } from './nn/onnx.js';

// hardening (issue 12): caps and memory plans computed before allocation, JSON validation helpers
export { LIMITS, checkJsBudget } from './limits.js';
export { unetParamCount, unetParamBytes, unetForwardBytes } from './nn/unet-plan.js';
export { Checker, show, own, hasOwn } from './validate.js';
export type { ArenaTag, Lease } from './engine/memory.js';

// class-conditional MNIST (issue 11 item 3): sampling defaults stored with a model (sampling_defaults.json:
// the guidance a sweep chose, used by DDPMPipeline.run and `ddpm sample --class K`, or autoguidance with
// its guide for an unconditional model), and the class-conditional training settings (`ddpm train
// --class-conditional`, scripts/train-mnist.mjs)
export {
  SAMPLING_DEFAULTS_FILE,
  MAX_AUTOGUIDANCE_SCALE,
  checkGuide,
  loadGuide,
  parseSamplingDefaults,
  readSamplingDefaults,
  samplingDefaultsJson,
  type AutoguidanceDefaults,
  type SamplingDefaults,
} from './pipelines/defaults.js';
export { LABEL_DROPOUT, classConditional } from './train/class-conditional.js';
