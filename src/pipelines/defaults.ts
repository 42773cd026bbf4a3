// Sampling defaults stored with a model: sampling_defaults.json beside config.json (or at the root of a
// pipeline folder), which `ddpm sample`, `ddpm eval` and DDPMPipeline.run use for what they are not given:
// - the classifier-free guidance scale a sweep chose for a class-conditional model
//   (scripts/guidance-sweep.mjs --write-default), for class labels;
// - autoguidance for an unconditional model (Karras et al. 2024, "Guiding a diffusion model with a bad
//   version of itself"): a weaker model of the same kind in a subfolder (`guide`), the scale w of
//   D = D_guide + w·(D − D_guide), and the largest timestep it is applied at (guidance limited to an
//   interval of noise levels, Kynkäänniemi et al. 2024) — chosen by scripts/autoguidance-sweep.mjs.
//
//   { "guidance_scale": 2, "source": "scripts/guidance-sweep.mjs --n 1000: …", "per_class_accuracy": 0.981 }
//   { "autoguidance": { "guide": "guide", "scale": 2, "max_timestep": 700 }, "source": "…" }
//
// diffusers has no such file; its loaders ignore it, so a folder with one stays a diffusers folder.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { subfolder, type FileSource } from '../io/sources.js';
import { loadModel, type PretrainedModel } from '../nn/registry.js';
import { UNet2DModel } from '../nn/unet.js';
import { Checker, isObject } from '../validate.js';

export const SAMPLING_DEFAULTS_FILE = 'sampling_defaults.json';

/** Largest guidance scale accepted (as `ddpm sample --guidance`). */
export const MAX_GUIDANCE_SCALE = 100;

/** Largest autoguidance scale accepted. */
export const MAX_AUTOGUIDANCE_SCALE = 100;

/** Autoguidance as stored: the guide model's subfolder, the scale, the interval. */
export interface AutoguidanceDefaults {
  /** Subfolder of the folder holding sampling_defaults.json with the guide's config.json and weights. */
  guide: string;
  /** w in D = D_guide + w·(D − D_guide): 1 is the model alone. */
  scale: number;
  /** Guidance only at timesteps t ≤ maxTimestep (default: every step). */
  maxTimestep?: number;
}

export interface SamplingDefaults {
  /** Classifier-free guidance w for class labels: ε = ε_u + w·(ε_c − ε_u). */
  guidanceScale?: number;
  /** Autoguidance for unconditional sampling. */
  autoguidance?: AutoguidanceDefaults;
  /** How the values were chosen (the command, the measurement). */
  source?: string;
  /** The per-class accuracy measured at guidanceScale (`ddpm eval --per-class`), when recorded. */
  perClassAccuracy?: number;
  /** Where they were read from, for messages ('models/mnist-cond/sampling_defaults.json'). */
  file?: string;
}

const KEYS = ['guidance_scale', 'autoguidance', 'source', 'per_class_accuracy'] as const;
const AUTOGUIDANCE_KEYS = ['guide', 'scale', 'max_timestep'] as const;

/** The file's JSON, checked: FORMAT errors naming `where` (keys starting with '_' are comments). */
export function parseSamplingDefaults(json: unknown, where: string): SamplingDefaults {
  const c = new Checker(where);
  const o = c.object('the file', json);
  c.knownKeys(o, KEYS, 'sampling default', '_');
  const d: SamplingDefaults = { file: where };
  if (o.guidance_scale !== undefined || o.autoguidance === undefined)
    d.guidanceScale = c.number('guidance_scale', o.guidance_scale, { min: 0, max: MAX_GUIDANCE_SCALE });
  if (o.autoguidance !== undefined) {
    const a = c.object('autoguidance', o.autoguidance);
    c.knownKeys(a, AUTOGUIDANCE_KEYS, 'autoguidance key', '_');
    const guide = c.string('autoguidance.guide', a.guide, 255);
    // a plain folder name (no '/', not starting with '.'): the guide lives inside the model's folder, never
    // beside or above it
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(guide))
      c.fail('autoguidance.guide', 'a subfolder name (letters, digits, _ . -; no /, not starting with .)', guide);
    d.autoguidance = {
      guide,
      scale: c.number('autoguidance.scale', a.scale, { min: 0, max: MAX_AUTOGUIDANCE_SCALE }),
    };
    if (a.max_timestep !== undefined)
      d.autoguidance.maxTimestep = c.int('autoguidance.max_timestep', a.max_timestep, 0);
  }
  if (o.source !== undefined) d.source = c.string('source', o.source, 4096);
  if (o.per_class_accuracy !== undefined)
    d.perClassAccuracy = c.number('per_class_accuracy', o.per_class_accuracy, { min: 0, max: 1 });
  return d;
}

/** The file's text for `d` (what parseSamplingDefaults reads back). */
export function samplingDefaultsJson(d: SamplingDefaults): string {
  const o: Record<string, unknown> = {};
  if (d.guidanceScale !== undefined) o.guidance_scale = d.guidanceScale;
  if (d.autoguidance !== undefined) {
    const { guide, scale, maxTimestep } = d.autoguidance;
    o.autoguidance = maxTimestep === undefined ? { guide, scale } : { guide, scale, max_timestep: maxTimestep };
  }
  if (d.source !== undefined) o.source = d.source;
  if (d.perClassAccuracy !== undefined) o.per_class_accuracy = d.perClassAccuracy;
  parseSamplingDefaults(o, 'samplingDefaultsJson'); // never write a file that would not read back
  return `${JSON.stringify(o, null, 2)}\n`;
}

/**
 * The defaults in `src` (a model or pipeline folder's root), {} when it has no such file; checked against
 * the model: guidance needs a class-conditional model with an unconditional label (num_class_embeds ≥ 2),
 * autoguidance an unconditional one (its guide is loaded by loadGuide).
 */
export async function readSamplingDefaults(src: FileSource, numClassEmbeds: number | null): Promise<SamplingDefaults> {
  const where = `${src.name}/${SAMPLING_DEFAULTS_FILE}`;
  const bytes = await src.get(SAMPLING_DEFAULTS_FILE);
  if (!bytes) return {};
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new DdpmError('FORMAT', `${where}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!isObject(json)) throw new DdpmError('FORMAT', `${where}: expected a JSON object`);
  const d = parseSamplingDefaults(json, where);
  if (d.guidanceScale !== undefined && (numClassEmbeds === null || numClassEmbeds < 2))
    throw new DdpmError(
      'FORMAT',
      `${where}: guidance_scale is for class-conditional models with an unconditional label; this model has ${numClassEmbeds === null ? 'no num_class_embeds' : `num_class_embeds ${numClassEmbeds}`}`,
    );
  if (d.autoguidance !== undefined && numClassEmbeds !== null)
    throw new DdpmError(
      'FORMAT',
      `${where}: autoguidance is for unconditional models; this model has num_class_embeds ${numClassEmbeds}`,
    );
  return d;
}

/**
 * The guide model that `defaults.autoguidance` names, from the subfolder of `root` (the folder holding
 * sampling_defaults.json); null without autoguidance. It must make what the model makes — same class,
 * sample shape and output — and share its noise schedule and prediction type (it is read with the model's
 * scheduler); a guide that does not fit is a FORMAT error naming its folder.
 */
export async function loadGuide(
  engine: Engine,
  root: FileSource,
  defaults: SamplingDefaults,
  model: PretrainedModel,
): Promise<PretrainedModel | null> {
  if (defaults.autoguidance === undefined) return null;
  const src = subfolder(root, defaults.autoguidance.guide);
  if (!(await src.get('config.json')))
    throw new DdpmError(
      'FORMAT',
      `${defaults.file ?? SAMPLING_DEFAULTS_FILE}: autoguidance.guide names ${src.name}, which has no config.json`,
    );
  const { model: guide } = await loadModel(engine, src);
  checkGuide(guide, model, src.name);
  return guide;
}

/** FORMAT unless `guide` makes what `model` makes (what autoguidance combines, value by value). */
export function checkGuide(guide: PretrainedModel, model: PretrainedModel, where: string): void {
  const shape = (m: PretrainedModel) =>
    m instanceof UNet2DModel
      ? `${m.constructor.name} in_channels ${m.config.in_channels}, out_channels ${m.config.out_channels}, sample_size ${m.config.sample_size}, num_class_embeds ${m.config.num_class_embeds}`
      : `${m.constructor.name} data_dim ${m.config.data_dim}`;
  if (shape(guide) !== shape(model))
    throw new DdpmError(
      'FORMAT',
      `${where}: an autoguidance guide must make what the model makes (${shape(model)}), found ${shape(guide)}`,
    );
}
