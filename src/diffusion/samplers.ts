// Samplers by name, and schedulers by diffusers' `_class_name`.
//
// createSampler('dpm++2m', modelSchedulerConfig) does what diffusers users write as
// `DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, **solver_keys)`: the model's own config
// (its beta schedule, prediction type, T, timestep spacing …) read by the new class, which ignores the
// keys it does not have, and the solver-specific keys set on top.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDIMScheduler } from './ddim.js';
import { DDPMScheduler } from './ddpm.js';
import { DPMSolverMultistepScheduler } from './dpm-solver.js';
import { EulerAncestralDiscreteScheduler, EulerDiscreteScheduler } from './euler.js';
import { HeunDiscreteScheduler } from './heun.js';
import { UniPCMultistepScheduler } from './unipc.js';

export const SAMPLER_NAMES = [
  'ddpm',
  'ddim',
  'dpm++2m',
  'dpm++3m',
  'dpm++2m-sde',
  'unipc',
  'euler',
  'euler-a',
  'heun',
] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

export type AnyScheduler =
  | DDPMScheduler
  | DDIMScheduler
  | DPMSolverMultistepScheduler
  | UniPCMultistepScheduler
  | EulerDiscreteScheduler
  | EulerAncestralDiscreteScheduler
  | HeunDiscreteScheduler;

type FromConfig = (json: unknown, extra?: { engine?: Engine }) => AnyScheduler;

/** Scheduler classes by diffusers `_class_name`. */
export const SCHEDULER_CLASSES: Readonly<Record<string, FromConfig>> = {
  DDPMScheduler: (j, e) => DDPMScheduler.fromConfig(j, e),
  DDIMScheduler: (j, e) => DDIMScheduler.fromConfig(j, e),
  DPMSolverMultistepScheduler: (j, e) => DPMSolverMultistepScheduler.fromConfig(j, e),
  UniPCMultistepScheduler: (j, e) => UniPCMultistepScheduler.fromConfig(j, e),
  EulerDiscreteScheduler: (j, e) => EulerDiscreteScheduler.fromConfig(j, e),
  EulerAncestralDiscreteScheduler: (j, e) => EulerAncestralDiscreteScheduler.fromConfig(j, e),
  HeunDiscreteScheduler: (j, e) => HeunDiscreteScheduler.fromConfig(j, e),
};

/** Builds the scheduler a scheduler_config.json names in `_class_name` (FORMAT error if it names none we
 * have, listing those we do). */
export function schedulerFromConfig(json: unknown, o: { engine?: Engine } = {}): AnyScheduler {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new DdpmError(
      'FORMAT',
      `scheduler config: must be a JSON object, found ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`,
    );
  }
  const cls = (json as Record<string, unknown>)._class_name;
  const make = typeof cls === 'string' && Object.hasOwn(SCHEDULER_CLASSES, cls) ? SCHEDULER_CLASSES[cls] : undefined;
  if (!make)
    throw new DdpmError(
      'FORMAT',
      `scheduler config: _class_name must be one of ${Object.keys(SCHEDULER_CLASSES).join(', ')}, found ${JSON.stringify(cls)}`,
    );
  return make(json, { engine: o.engine });
}

/** The class and the solver keys each sampler name sets on top of the model's config. */
const SAMPLERS: Record<SamplerName, { cls: string; keys: Record<string, unknown>; karras: boolean }> = {
  ddpm: { cls: 'DDPMScheduler', keys: {}, karras: false },
  ddim: { cls: 'DDIMScheduler', keys: {}, karras: false },
  'dpm++2m': {
    cls: 'DPMSolverMultistepScheduler',
    keys: { algorithm_type: 'dpmsolver++', solver_order: 2 },
    karras: true,
  },
  'dpm++3m': {
    cls: 'DPMSolverMultistepScheduler',
    keys: { algorithm_type: 'dpmsolver++', solver_order: 3 },
    karras: true,
  },
  'dpm++2m-sde': {
    cls: 'DPMSolverMultistepScheduler',
    keys: { algorithm_type: 'sde-dpmsolver++', solver_order: 2 },
    karras: true,
  },
  unipc: {
    cls: 'UniPCMultistepScheduler',
    keys: { solver_type: 'bh2', solver_order: 2, predict_x0: true },
    karras: true,
  },
  euler: { cls: 'EulerDiscreteScheduler', keys: {}, karras: true },
  'euler-a': { cls: 'EulerAncestralDiscreteScheduler', keys: {}, karras: false },
  heun: { cls: 'HeunDiscreteScheduler', keys: {}, karras: true },
};

export interface CreateSamplerOptions {
  /** Karras σ (use_karras_sigmas); refused for samplers that have none (ddpm, ddim, euler-a). */
  karras?: boolean;
  engine?: Engine;
}

/**
 * The scheduler for a sampler name, from a model's scheduler_config.json (an object or its JSON text):
 * the model's keys (schedule, prediction type, T, spacing, …) as the target class reads them, then the
 * sampler's own keys. Unknown names are INVALID_ARGUMENT, listing SAMPLER_NAMES.
 */
export function createSampler(name: string, schedulerConfig: unknown, o: CreateSamplerOptions = {}): AnyScheduler {
  const spec = Object.hasOwn(SAMPLERS, name) ? SAMPLERS[name as SamplerName] : undefined;
  if (!spec)
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `unknown sampler ${JSON.stringify(name)}: choose one of ${SAMPLER_NAMES.join(', ')}`,
    );
  let cfg = schedulerConfig;
  if (typeof cfg === 'string') {
    try {
      cfg = JSON.parse(cfg);
    } catch (e) {
      throw new DdpmError('FORMAT', `scheduler config: not valid JSON (${(e as Error).message})`);
    }
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg))
    throw new DdpmError('FORMAT', 'scheduler config: must be a JSON object');
  if (o.karras && !spec.karras)
    throw new DdpmError(
      'UNSUPPORTED',
      `sampler ${name} has no Karras sigmas (use_karras_sigmas): drop --karras or pick dpm++2m, dpm++3m, dpm++2m-sde, unipc, euler or heun`,
    );
  const merged: Record<string, unknown> = { ...(cfg as Record<string, unknown>), ...spec.keys, _class_name: spec.cls };
  if (spec.karras) merged.use_karras_sigmas = o.karras ?? false;
  return schedulerFromConfig(merged, { engine: o.engine });
}

/** Model calls of a run of n inference steps: 2n − 1 for Heun (see heun.ts), n for the others. */
export function modelCallsForSteps(name: SamplerName | string, n: number): number {
  return name === 'heun' || name === 'HeunDiscreteScheduler' ? 2 * n - 1 : n;
}

/**
 * The setTimesteps count that spends at most `calls` model calls (≥ 1): Heun takes n = ⌊(calls + 1)/2⌋
 * steps (2n − 1 calls: an odd budget is used exactly, an even one leaves one call unused); every other
 * sampler takes n = calls.
 */
export function stepsForModelCalls(name: SamplerName | string, calls: number): number {
  if (!Number.isInteger(calls) || calls < 1)
    throw new DdpmError('INVALID_ARGUMENT', `model calls must be an integer >= 1, found ${calls}`);
  return name === 'heun' || name === 'HeunDiscreteScheduler' ? Math.floor((calls + 1) / 2) : calls;
}
