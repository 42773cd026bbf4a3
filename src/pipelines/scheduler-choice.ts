// Which scheduler a pipeline uses: a sampler name ('ddim', 'dpm++2m', 'euler-a' …, the sampler registry's
// SAMPLER_NAMES) or a diffusers class name ('DDIMScheduler', 'UniPCMultistepScheduler' …), built from the
// model's scheduler_config.json as diffusers' `Scheduler.from_config(pipe.scheduler.config)` is; without
// a name, the class the config names. The registry itself is src/diffusion/samplers.ts.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDIMScheduler } from '../diffusion/ddim.js';
import { SAMPLER_NAMES, SCHEDULER_CLASSES, createSampler, schedulerFromConfig, type AnyScheduler } from '../diffusion/samplers.js';

export type PipelineScheduler = AnyScheduler;

/** What the pipeline accepts as `scheduler`: sampler names, then class names. */
export const SCHEDULER_NAMES: readonly string[] = [...SAMPLER_NAMES, ...Object.keys(SCHEDULER_CLASSES)];

/**
 * A scheduler for `name` (a sampler or class name; default: the config's _class_name, DDPMScheduler when
 * it has none) from a scheduler_config.json object; `file` names the config in errors.
 */
export function chooseScheduler(name: string | undefined, config: Record<string, unknown>, engine: Engine, file = 'scheduler_config.json'): PipelineScheduler {
  if (name === undefined) {
    const cls = config._class_name ?? 'DDPMScheduler';
    if (typeof cls !== 'string' || !Object.hasOwn(SCHEDULER_CLASSES, cls)) {
      throw new DdpmError('FORMAT', `${file}: _class_name ${JSON.stringify(cls)} is not a known scheduler (${Object.keys(SCHEDULER_CLASSES).join(', ')})`);
    }
    return schedulerFromConfig({ ...config, _class_name: cls }, { engine });
  }
  if ((SAMPLER_NAMES as readonly string[]).includes(name)) return createSampler(name, config, { engine });
  if (Object.hasOwn(SCHEDULER_CLASSES, name)) return SCHEDULER_CLASSES[name](config, { engine });
  throw new DdpmError('INVALID_ARGUMENT', `scheduler ${JSON.stringify(name)} is not a known scheduler (${SCHEDULER_NAMES.join(', ')})`);
}

/** Whether the scheduler takes DDIM's η. */
export function takesEta(s: PipelineScheduler): boolean {
  return s instanceof DDIMScheduler;
}
