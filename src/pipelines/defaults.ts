// Sampling defaults stored with a model: sampling_defaults.json beside config.json (or at the root of a
// pipeline folder). Today one value, the classifier-free guidance scale a sweep chose for a
// class-conditional model (scripts/guidance-sweep.mjs --write-default), which `ddpm sample --class K` and
// DDPMPipeline.run({ classLabels }) use when no guidance is given.
//
//   { "guidance_scale": 2, "source": "scripts/guidance-sweep.mjs --n 1000: …", "per_class_accuracy": 0.981 }
//
// diffusers has no such file; its loaders ignore it, so a folder with one stays a diffusers folder.
import { DdpmError } from '../errors.js';
import type { FileSource } from '../io/sources.js';
import { Checker, isObject } from '../validate.js';

export const SAMPLING_DEFAULTS_FILE = 'sampling_defaults.json';

/** Largest guidance scale accepted (as `ddpm sample --guidance`). */
export const MAX_GUIDANCE_SCALE = 100;

export interface SamplingDefaults {
  /** Classifier-free guidance w for class labels: ε = ε_u + w·(ε_c − ε_u). */
  guidanceScale?: number;
  /** How the values were chosen (the command, the measurement). */
  source?: string;
  /** The per-class accuracy measured at guidanceScale (`ddpm eval --per-class`), when recorded. */
  perClassAccuracy?: number;
  /** Where they were read from, for messages ('models/mnist-cond/sampling_defaults.json'). */
  file?: string;
}

const KEYS = ['guidance_scale', 'source', 'per_class_accuracy'] as const;

/** The file's JSON, checked: FORMAT errors naming `where` (keys starting with '_' are comments). */
export function parseSamplingDefaults(json: unknown, where: string): SamplingDefaults {
  const c = new Checker(where);
  const o = c.object('the file', json);
  c.knownKeys(o, KEYS, 'sampling default', '_');
  const d: SamplingDefaults = {
    guidanceScale: c.number('guidance_scale', o.guidance_scale, { min: 0, max: MAX_GUIDANCE_SCALE }),
    file: where,
  };
  if (o.source !== undefined) d.source = c.string('source', o.source, 4096);
  if (o.per_class_accuracy !== undefined)
    d.perClassAccuracy = c.number('per_class_accuracy', o.per_class_accuracy, { min: 0, max: 1 });
  return d;
}

/** The file's text for `d` (what parseSamplingDefaults reads back). */
export function samplingDefaultsJson(d: SamplingDefaults): string {
  const o: Record<string, unknown> = { guidance_scale: d.guidanceScale };
  if (d.source !== undefined) o.source = d.source;
  if (d.perClassAccuracy !== undefined) o.per_class_accuracy = d.perClassAccuracy;
  parseSamplingDefaults(o, 'samplingDefaultsJson'); // never write a file that would not read back
  return `${JSON.stringify(o, null, 2)}\n`;
}

/**
 * The defaults in `src` (a model or pipeline folder's root), {} when it has no such file; checked against
 * the model: guidance needs a class-conditional model with an unconditional label (num_class_embeds ≥ 2).
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
  return d;
}
