// Which scheduler a pipeline uses: a sampler name ('dpm++2m', 'ddim' …, src/diffusion/samplers.ts) or a
// diffusers class name ('DPMSolverMultistepScheduler' …), built from the model's scheduler_config.json as
// diffusers' `XScheduler.from_config(pipe.scheduler.config)` does; default: the class the config names.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDIMScheduler } from '../diffusion/ddim.js';
import {
  createSampler,
  SAMPLER_NAMES,
  SCHEDULER_CLASSES,
  schedulerFromConfig,
  type AnyScheduler,
} from '../diffusion/samplers.js';

export type PipelineScheduler = AnyScheduler;

/** Sampler names and class names the pipeline accepts as `scheduler`. */
export const SCHEDULER_NAMES: readonly string[] = [...SAMPLER_NAMES, ...Object.keys(SCHEDULER_CLASSES)];

/**
 * The scheduler called `name` (a sampler or class name; default the config's `_class_name`, else
 * DDPMScheduler) configured from a scheduler_config.json object; `karras` sets use_karras_sigmas.
 */
export function pipelineScheduler(
  name: string | undefined,
  config: Record<string, unknown>,
  engine: Engine,
  o: { file?: string; karras?: boolean } = {},
): PipelineScheduler {
  const file = o.file ?? 'scheduler_config.json';
  if (name !== undefined && (SAMPLER_NAMES as readonly string[]).includes(name))
    return createSampler(name, config, { engine, karras: o.karras });
  const cls = name ?? (typeof config._class_name === 'string' ? config._class_name : 'DDPMScheduler');
  if (!Object.hasOwn(SCHEDULER_CLASSES, cls)) {
    throw new DdpmError(
      name === undefined ? 'FORMAT' : 'INVALID_ARGUMENT',
      `${name === undefined ? `${file}: _class_name` : 'scheduler'} ${JSON.stringify(cls)} is not a known scheduler (${SCHEDULER_NAMES.join(', ')})`,
    );
  }
  const merged: Record<string, unknown> = { ...config, _class_name: cls };
  if (o.karras !== undefined) merged.use_karras_sigmas = o.karras;
  return schedulerFromConfig(merged, { engine });
}

/** Whether the scheduler takes DDIM's η. */
export function takesEta(s: PipelineScheduler): boolean {
  return s instanceof DDIMScheduler;
}
