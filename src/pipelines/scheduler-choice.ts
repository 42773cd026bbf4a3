// Which scheduler class a pipeline uses: the one function that maps a name (or a config's _class_name) to
// a class. It knows DDPM and DDIM; the sampler registry (src/diffusion/samplers.ts) replaces it when it
// lands, and then every pipeline gets the new samplers.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDIMScheduler } from '../diffusion/ddim.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';

export type PipelineScheduler = DDPMScheduler | DDIMScheduler;

const CLASSES: Record<string, { fromConfig(json: unknown, extra?: { engine?: Engine }): PipelineScheduler }> = {
  DDPMScheduler, DDIMScheduler, ddpm: DDPMScheduler, ddim: DDIMScheduler,
};

/** Short names and class names the pipeline accepts as `scheduler`. */
export const SCHEDULER_NAMES: readonly string[] = Object.keys(CLASSES);

/**
 * A scheduler of the class `name` ('ddpm', 'ddim', 'DDIMScheduler' …; default the config's _class_name)
 * from a scheduler_config.json object: diffusers lets any scheduler read another's config.
 */
export function schedulerFromConfig(name: string | undefined, config: Record<string, unknown>, engine: Engine, file = 'scheduler_config.json'): PipelineScheduler {
  const key = name ?? (typeof config._class_name === 'string' ? config._class_name : 'DDPMScheduler');
  const cls = Object.hasOwn(CLASSES, key) ? CLASSES[key] : undefined;
  if (!cls) {
    throw new DdpmError(name === undefined ? 'FORMAT' : 'INVALID_ARGUMENT', `${name === undefined ? `${file}: _class_name` : 'scheduler'} ${JSON.stringify(key)} is not a known scheduler (${SCHEDULER_NAMES.join(', ')})`);
  }
  return cls.fromConfig(config, { engine });
}

/** Whether the scheduler takes DDIM's η. */
export function takesEta(s: PipelineScheduler): boolean {
  return s instanceof DDIMScheduler;
}
