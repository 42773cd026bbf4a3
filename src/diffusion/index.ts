// The diffusion process: schedules, the forward process and posterior, the DDPM and DDIM schedulers, and
// resumable sampling chains.
export * from './schedule.js';
export * from './forward.js';
export {
  SchedulerBase,
  optionsFromConfig,
  type PredictionType,
  type TimestepSpacing,
  type SchedulerOptions,
  type SchedulerOutput,
  type StepOptions,
} from './scheduler.js';
export * from './ddpm.js';
export * from './ddim.js';
export * from './sampling.js';
export * from './bound.js';
export { normalKl, discretizedGaussianLogLikelihood } from './gaussian-math.js';
// Few-step solvers (issue 9): DPM-Solver++, UniPC, Euler, Euler ancestral, Heun; the sampler and
// scheduler-class registries.
export * from './sigmas.js';
export { SolverBase, type SolverState } from './solver.js';
export * from './dpm-solver.js';
export * from './unipc.js';
export * from './euler.js';
export * from './heun.js';
export * from './samplers.js';
