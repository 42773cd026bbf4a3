// Model classes by config.json's `_class_name`, as diffusers' ConfigMixin registers them: the one place
// that knows which classes exist, so loaders (DDPMPipeline, the ddpm command) never test instanceof.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { readModelFiles, type FileSource } from '../io/sources.js';
import { MLPDenoiser, MLP_WEIGHTS_FILE, parseMLPConfig, type MLPConfig } from './mlp.js';
import { UNet2DModel, WEIGHTS_FILE } from './unet.js';
import { parseUNetConfig, type UNet2DConfig } from './unet-config.js';

/** Every model class the registry knows. */
export type PretrainedModel = UNet2DModel | MLPDenoiser;

export interface ModelClass<M extends PretrainedModel = PretrainedModel, C = unknown> {
  /** config.json's `_class_name`. */
  readonly className: string;
  /** The weights' file name in a model folder (before any variant). */
  readonly weightsFile: string;
  /** Checks a config and fills its defaults; `file` names it in errors. */
  parseConfig(json: unknown, file: string): C;
  /** A freshly initialised model. */
  create(engine: Engine, config: unknown, seed?: number): M;
  fromFiles(
    engine: Engine,
    config: unknown,
    weights: Uint8Array | ArrayBuffer,
    names: { config: string; weights: string },
  ): M;
  /** One sample's shape: (C, H, W) for images, (D) for points. */
  sampleShape(config: C): number[];
  /** One line for messages and `ddpm info`. */
  describe(config: C): string;
  /** Whether `model` is of this class. */
  is(model: PretrainedModel): model is M;
}

const unet: ModelClass<UNet2DModel, UNet2DConfig> = {
  className: 'UNet2DModel',
  weightsFile: WEIGHTS_FILE,
  parseConfig: (json, file) => parseUNetConfig(json, file),
  create: (engine, config, seed) => UNet2DModel.create(engine, config, seed),
  fromFiles: (engine, config, weights, names) => UNet2DModel.fromFiles(engine, config, weights, names),
  sampleShape: (c) => [c.in_channels, c.sample_size, c.sample_size],
  describe: (c) =>
    `UNet2DModel ${c.in_channels}×${c.sample_size}×${c.sample_size}, block_out_channels [${c.block_out_channels}]${c.num_class_embeds === null ? '' : `, ${c.num_class_embeds} class embeddings`}`,
  is: (m): m is UNet2DModel => m instanceof UNet2DModel,
};

const mlp: ModelClass<MLPDenoiser, MLPConfig> = {
  className: 'MLPDenoiser',
  weightsFile: MLP_WEIGHTS_FILE,
  parseConfig: (json, file) => parseMLPConfig(json, file),
  create: (engine, config, seed) => MLPDenoiser.create(engine, config, seed),
  fromFiles: (engine, config, weights, names) => MLPDenoiser.fromFiles(engine, config, weights, names),
  sampleShape: (c) => [c.data_dim],
  describe: (c) => `MLPDenoiser of ${c.data_dim}-D points, ${c.num_blocks} blocks of width ${c.hidden_dim}`,
  is: (m): m is MLPDenoiser => m instanceof MLPDenoiser,
};

export const MODEL_CLASSES: ReadonlyMap<string, ModelClass> = new Map<string, ModelClass>([
  [unet.className, unet as ModelClass],
  [mlp.className, mlp as ModelClass],
]);

/** The class named by a config's `_class_name` (diffusers' UNet2DModel when absent). */
export function modelClass(config: Record<string, unknown>, file = 'config.json'): ModelClass {
  const name = config._class_name ?? 'UNet2DModel';
  const cls = typeof name === 'string' ? MODEL_CLASSES.get(name) : undefined;
  if (!cls)
    throw new DdpmError(
      'FORMAT',
      `${file}: _class_name ${JSON.stringify(name)} is not supported (${[...MODEL_CLASSES.keys()].join(' or ')})`,
    );
  return cls;
}

/** The class of a model object. */
export function classOf(model: PretrainedModel): ModelClass {
  for (const cls of MODEL_CLASSES.values()) if (cls.is(model)) return cls;
  throw new DdpmError('INVALID_ARGUMENT', 'not a model of a registered class (UNet2DModel, MLPDenoiser)');
}

/** Loads the model of a model folder's source, whichever registered class its config.json names. */
export async function loadModel(
  engine: Engine,
  src: FileSource,
  o: { variant?: string } = {},
): Promise<{ model: PretrainedModel; cls: ModelClass }> {
  let cls: ModelClass | undefined;
  const f = await readModelFiles(
    src,
    (config) => (cls = modelClass(config, `${src.name}/config.json`)).weightsFile,
    o.variant,
  );
  return { model: cls!.fromFiles(engine, f.config, f.weights, f.names), cls: cls! };
}
