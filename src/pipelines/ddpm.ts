// DDPMPipeline: a model and its scheduler, from wherever they are, to images — the one sampling loop of
// the code base (`ddpm sample`, `ddpm eval` and the training previews all call run()).
//
//   const pipe = await DDPMPipeline.fromPretrained(engine, 'mnist', { scheduler: 'ddim' })
//   const { images } = await pipe.run({ batchSize: 16, numInferenceSteps: 20, seed: 42 })
//   const png = toPng(images)
//
// Data flow per step: x_t stays in engine memory; the model writes ε into a buffer planned once per run
// (forwardTensor with `out`), the chain's fused kernel reads it: nothing is copied out and back in.
// Randomness is addressed, not drawn (SamplingChain): sample i's noise sits at element offset i·D of every
// stream, so sample i is the same whatever batchSize, maxBatch or thread count.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import type { U64 } from '../kernels/gaussian.js';
import { SamplingChain } from '../diffusion/sampling.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import { tensorToImages, type RgbaImage } from '../io/image.js';
import {
  MODEL_INDEX_FILE,
  SCHEDULER_CONFIG_FILE,
  SHIPPED_MODELS,
  modelLayout,
  openSource,
  readJsonFile,
  shippedModelHint,
  type ModelSource,
} from '../io/sources.js';
import { classOf, loadModel, type PretrainedModel } from '../nn/registry.js';
import { UNet2DModel } from '../nn/unet.js';
import { fsPromises, writeFilesAtomic } from '#platform';
import { macrotaskYielder } from '../event-loop.js';
import { pipelineScheduler, takesEta, type PipelineScheduler } from './scheduler-choice.js';
import {
  MAX_AUTOGUIDANCE_SCALE,
  SAMPLING_DEFAULTS_FILE,
  checkGuide,
  loadGuide,
  readSamplingDefaults,
  samplingDefaultsJson,
  type SamplingDefaults,
} from './defaults.js';
import { checkJsBudget } from '../limits.js';

export interface FromPretrainedOptions {
  /** diffusers' weight variant: 'fp16' reads diffusion_pytorch_model.fp16.safetensors. */
  variant?: string;
  /**
   * The scheduler: a name ('ddpm', 'ddim', 'DDIMScheduler' …) built from the source's
   * scheduler_config.json, or a scheduler object. Default: the class the config names.
   */
  scheduler?: string | PipelineScheduler;
  /** Karras σ for the samplers that have them (dpm++*, unipc, euler, heun): use_karras_sigmas. */
  karras?: boolean;
}

/** What onStep gets besides the step counts: the current batch's state, read only when asked for. */
export interface StepInfo {
  /** The timestep just done. */
  t: number;
  /** Index of the batch's first sample. */
  batchStart: number;
  /** Which batch (0-based), and the step within it (1-based) of `batchSteps`. */
  batch: number;
  batchStep: number;
  batchSteps: number;
  /** x̂_0 predicted at this step, (nb, …sampleShape): a preview of where the chain is going. */
  readonly x0: Float32Array;
  /** x_{t−1} after this step, (nb, …sampleShape). */
  readonly sample: Float32Array;
}

export interface RunOptions {
  /** Number of samples. Default 1. */
  batchSize?: number;
  /** Samples per model call (memory: activations scale with it). Default 16. */
  maxBatch?: number;
  /** Default: T for DDPMScheduler (the paper's chain), else min(50, T). */
  numInferenceSteps?: number;
  /** Noise seed, an integer in [0, 2^64). Default 0. */
  seed?: U64;
  /** DDIM's η: 0 (default) deterministic … 1 DDPM-like. */
  eta?: number;
  /** Class-conditional models: one label for all samples, or one per sample. */
  classLabels?: number | ArrayLike<number>;
  /**
   * Classifier-free guidance: ε = ε_u + w·(ε_c − ε_u), ε_u with the unconditional label num_class_embeds − 1
   * (the model must have been trained with labels dropped to it). Two model calls per step. w = 0 is the
   * unconditional model, 1 the conditional one. Omitted: the model's stored default (`pipe.defaults`,
   * sampling_defaults.json) when it has one, else none; null: no guidance, whatever the default.
   */
  guidanceScale?: number | null;
  /**
   * Autoguidance (Karras et al. 2024), for unconditional models: D = D_guide + w·(D − D_guide) on the
   * model's prediction, with a weaker model of the same kind as the guide (less trained or smaller, same
   * noise schedule and prediction type), at the timesteps t ≤ maxTimestep. Two model calls per guided step.
   * Omitted: the model's stored default (sampling_defaults.json's autoguidance, `pipe.guide`) when it has
   * one, else none; null: none, whatever the default.
   */
  autoguidance?: Autoguidance | null;
  /**
   * Checked before every model call: an aborted signal stops the run with DdpmError 'ABORTED'. With a
   * signal the run yields to the event loop every 20 ms, so a timer, a message or Ctrl-C can fire it.
   */
  signal?: AbortSignal;
  /** After every step: `step` of `total` (steps × batches) done. */
  onStep?: (step: number, total: number, info: StepInfo) => void;
}

export interface Autoguidance {
  /** The weaker model; it must make what the pipeline's model makes. */
  guide: PretrainedModel;
  /** w ≥ 0: 1 is the model alone, 0 the guide alone. */
  scale: number;
  /** Guidance only at timesteps t ≤ maxTimestep (the others: the model alone). Default: every step. */
  maxTimestep?: number;
}

export interface PipelineOutput {
  /** One RGBA image per sample (ImageData-shaped); empty for models of points (MLPDenoiser). */
  images: RgbaImage[];
  /** The float samples, (batchSize, …sampleShape), in [−1, 1] for images. */
  tensor: Float32Array;
  /** [batchSize, …sampleShape]. */
  shape: number[];
}

const DIFFUSERS_VERSION = '0.32.2';

export class DDPMPipeline {
  /** Things the loader assumed (a missing scheduler_config.json …); the CLI prints them. */
  readonly notices: string[];
  /**
   * What run() uses for options it is not given: `guidanceScale` for class labels, read by fromPretrained
   * from the model's sampling_defaults.json ({} without one), written back by save().
   */
  readonly defaults: SamplingDefaults;
  /** The autoguidance guide that `defaults.autoguidance` names (loaded from its subfolder), else null. */
  readonly guide: PretrainedModel | null;

  constructor(
    readonly engine: Engine,
    readonly unet: PretrainedModel,
    readonly scheduler: PipelineScheduler,
    notices: string[] = [],
    defaults: SamplingDefaults = {},
    guide: PretrainedModel | null = null,
  ) {
    this.notices = notices;
    this.defaults = defaults;
    if (guide) checkGuide(guide, unet, 'DDPMPipeline: the guide');
    this.guide = guide;
    scheduler.engine = engine;
  }

  /**
   * Loads a model folder (config.json + weights [+ scheduler_config.json]) or a diffusers pipeline folder
   * (model_index.json, unet/, scheduler/) from a folder path (Node, Deno, Bun), a URL or base URL, a map
   * of file names to bytes / ArrayBuffer / Blob / Response, or a shipped model's name ('mnist',
   * 'mnist-cond'). Without a scheduler_config.json, diffusers' DDPMScheduler defaults are used and a notice
   * says so; a sampling_defaults.json at the source's root becomes `pipe.defaults` (and the autoguidance
   * guide it names, from its subfolder, `pipe.guide`).
   */
  static async fromPretrained(
    engine: Engine,
    source: ModelSource,
    o: FromPretrainedOptions = {},
  ): Promise<DDPMPipeline> {
    const src = openSource(source);
    const layout = await modelLayout(src);
    if (typeof source === 'string' && SHIPPED_MODELS.includes(source) && !(await layout.model.get('config.json')))
      throw new DdpmError(
        'FORMAT',
        `the shipped model '${source}' is not installed (${src.name}: no config.json)${shippedModelHint(source)}`,
      );
    const notices: string[] = [];
    const { model } = await loadModel(engine, layout.model, { variant: o.variant });
    const defaults = await readSamplingDefaults(
      src,
      model instanceof UNet2DModel ? model.config.num_class_embeds : null,
    );
    const guide = await loadGuide(engine, src, defaults, model);
    let scheduler: PipelineScheduler;
    if (o.scheduler !== undefined && typeof o.scheduler === 'object') scheduler = o.scheduler;
    else {
      let config = await readJsonFile(layout.scheduler, SCHEDULER_CONFIG_FILE);
      if (!config) {
        notices.push(
          `${layout.scheduler.name}: no ${SCHEDULER_CONFIG_FILE}; using diffusers' DDPMScheduler defaults (1000 steps, linear betas 0.0001 … 0.02)`,
        );
        config = new DDPMScheduler().toConfig();
      }
      scheduler = pipelineScheduler(o.scheduler, config, engine, {
        file: `${layout.scheduler.name}/${SCHEDULER_CONFIG_FILE}`,
        karras: o.karras,
      });
    }
    return new DDPMPipeline(engine, model, scheduler, notices, defaults, guide);
  }

  /** One sample's shape: (C, H, W) for images, (D) for points. */
  get sampleShape(): number[] {
    const u = this.unet;
    return u instanceof UNet2DModel
      ? [u.config.in_channels, u.config.sample_size, u.config.sample_size]
      : [u.config.data_dim];
  }

  /** Samples `batchSize` images (or points); see RunOptions. */
  async run(o: RunOptions = {}): Promise<PipelineOutput> {
    const e = this.engine;
    const n = positiveInt('batchSize', o.batchSize ?? 1, 1 << 20);
    const B = Math.min(positiveInt('maxBatch', o.maxBatch ?? 16, 4096), n);
    const T = this.scheduler.numTrainTimesteps;
    const steps = o.numInferenceSteps ?? (this.scheduler instanceof DDPMScheduler ? T : Math.min(50, T));
    if (o.eta !== undefined && !takesEta(this.scheduler))
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDPMPipeline.run: eta applies to DDIMScheduler only, this pipeline's scheduler is ${this.scheduler.constructor.name}`,
      );
    const shape = this.sampleShape;
    const D = shape.reduce((a, b) => a * b, 1);
    // the stored default applies to class labels only: an unconditional model has none (checked on load)
    const fromDefaults =
      o.guidanceScale === undefined && o.classLabels !== undefined && this.defaults.guidanceScale !== undefined;
    const guidanceScale = fromDefaults ? this.defaults.guidanceScale : (o.guidanceScale ?? undefined);
    const autoguidance = o.autoguidance === undefined ? this.defaultAutoguidance : o.autoguidance;
    const call =
      autoguidance === null
        ? this.modelCall(n, o.classLabels, guidanceScale, fromDefaults)
        : this.autoguidedCall(autoguidance, o.classLabels, guidanceScale);
    const batches = Math.ceil(n / B);
    // scheduler steps per chain: the steps, except Heun (2 per step but the last): setTimesteps says
    this.scheduler.setTimesteps(steps);
    const perChain = this.scheduler.timesteps.length;
    const total = perChain * batches;
    // Planned from arithmetic before anything is drawn (a 4096² model used to stall 17 s and take 2 GB
    // before its first forward failed): the result outside Wasm memory (floats and RGBA images), and in it
    // the model output buffers, one batch's chain (x_t, x̂_0, solver history: ≤ 6 × B·D) and a forward.
    checkJsBudget(
      4 * n * D + 4 * n * (shape.length === 3 ? shape[1] * shape[2] : 0),
      `DDPMPipeline.run: ${n} samples of [${shape}]`,
    );
    e.arena.plan(
      4 * B * this.outputSize * (call.guided ? 2 : 1) +
        4 * 6 * B * D +
        Math.max(this.unet.forwardBytes(B), autoguidance?.guide.forwardBytes(B) ?? 0),
      `DDPMPipeline.run on batches of ${B} samples of [${shape}]`,
    );
    const tensor = new Float32Array(n * D);
    let done = 0;
    const aborted = () =>
      new DdpmError('ABORTED', `DDPMPipeline.run: aborted after ${done} of ${total} steps`, {
        cause: o.signal?.reason,
      });
    if (o.signal?.aborted) throw aborted();

    const yieldToEvents = macrotaskYielder();
    const mark = e.arena.mark();
    try {
      // planned once per run: the model's output (and the unconditional one for guidance), (B, out)
      const per = this.outputSize;
      const eps = e.alloc([B, per], 'pipeline.modelOutput');
      const epsUncond = call.guided ? e.alloc([B, per], 'pipeline.modelOutputUncond') : null;
      const batchMark = e.arena.mark();
      for (let i0 = 0; i0 < n; i0 += B) {
        const nb = Math.min(B, n - i0);
        const chain = SamplingChain.start(e, this.scheduler, {
          shape: [nb, ...shape],
          numInferenceSteps: steps,
          seed: o.seed ?? 0,
          offset: i0 * D,
          eta: o.eta,
        });
        const out = (buf: Tensor): Tensor => ({ ...buf, size: nb * per, shape: [nb, per] });
        const check = () => {
          if (o.signal?.aborted) throw aborted();
        };
        const model = (x: Tensor, t: number) =>
          call.forward(x, t, i0, nb, out(eps), epsUncond && out(epsUncond), check);
        const onStep = (_: number, t: number) => {
          done++; // counted without onStep too: the ABORTED message says how far the run got
          if (!o.onStep) return;
          const info: StepInfo = {
            t,
            batchStart: i0,
            batch: i0 / B,
            batchStep: done - (i0 / B) * perChain,
            batchSteps: perChain,
            get x0() {
              return e.read(chain.predOriginalSample);
            },
            get sample() {
              return e.read(chain.sample);
            },
          };
          o.onStep(done, total, info);
        };
        if (!o.signal) await chain.run(model, { onStep });
        else {
          // The chain yields only microtasks between steps, and the model runs synchronously: a signal fired
          // by a timer, a message or Ctrl-C (macrotasks) would not be seen before the run ends. Step by step,
          // with a macrotask turn every 20 ms (src/event-loop.ts).
          while (!chain.done) {
            await chain.run(model, { maxSteps: 1, onStep });
            await yieldToEvents();
          }
        }
        tensor.set(e.read(chain.sample), i0 * D);
        e.arena.release(batchMark);
      }
    } finally {
      e.arena.release(mark);
    }
    const images =
      shape.length === 3 && (shape[0] === 1 || shape[0] === 3) ? tensorToImages(tensor, [n, ...shape]).images : [];
    return { images, tensor, shape: [n, ...shape] };
  }

  /** Values the model writes per sample (twice the sample's for learned variances). */
  private get outputSize(): number {
    const u = this.unet;
    return u instanceof UNet2DModel ? u.config.out_channels * u.config.sample_size ** 2 : u.config.data_dim;
  }

  /** The stored autoguidance (sampling_defaults.json and its guide), null without one. */
  get defaultAutoguidance(): Autoguidance | null {
    const d = this.defaults.autoguidance;
    return d && this.guide ? { guide: this.guide, scale: d.scale, maxTimestep: d.maxTimestep } : null;
  }

  /**
   * The model call with autoguidance (Karras et al. 2024): D = D_guide + w·(D − D_guide) on the
   * prediction, at t ≤ maxTimestep (limited-interval guidance, Kynkäänniemi et al. 2024: at the highest
   * noise levels guidance mostly narrows the variety). The prediction types are linear in D (x̂_0, ε and v
   * are each a + b·D at a given x_t and t, and w + (1 − w) = 1), so combining the raw outputs is combining D.
   */
  private autoguidedCall(a: Autoguidance, classLabels: RunOptions['classLabels'], guidanceScale: number | undefined) {
    const u = this.unet;
    if (
      classLabels !== undefined ||
      guidanceScale !== undefined ||
      (u instanceof UNet2DModel && u.config.num_class_embeds !== null)
    )
      throw new DdpmError(
        'UNSUPPORTED',
        'DDPMPipeline.run: autoguidance is for unconditional models, without classLabels or guidanceScale (pass autoguidance: null)',
      );
    if (!Number.isFinite(a.scale) || a.scale < 0 || a.scale > MAX_AUTOGUIDANCE_SCALE)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDPMPipeline.run: autoguidance.scale must be a finite number in [0, ${MAX_AUTOGUIDANCE_SCALE}], found ${a.scale}`,
      );
    const maxT = a.maxTimestep ?? Number.POSITIVE_INFINITY;
    if (a.maxTimestep !== undefined && !(Number.isInteger(a.maxTimestep) && a.maxTimestep >= 0))
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDPMPipeline.run: autoguidance.maxTimestep must be an integer >= 0, found ${a.maxTimestep}`,
      );
    try {
      checkGuide(a.guide, u, 'DDPMPipeline.run: autoguidance.guide');
    } catch (e) {
      throw new DdpmError('INVALID_ARGUMENT', (e as Error).message, { cause: e });
    }
    const w = a.scale;
    const guide = a.guide;
    const Cin = u instanceof UNet2DModel ? u.config.in_channels * u.config.sample_size ** 2 : u.config.data_dim;
    return {
      guided: true,
      forward: (
        x: Tensor,
        t: number,
        _i0: number,
        nb: number,
        out: Tensor,
        outGuide: Tensor | null,
        check: () => void,
      ) => {
        check();
        const d = u.forwardTensor(x, t, { out });
        if (t > maxT) return d;
        check();
        guide.forwardTensor(x, t, { out: outGuide! });
        extrapolate(this.engine.view(d), this.engine.view(outGuide!), w, nb, Cin);
        return d;
      },
    };
  }

  /** The model call with class labels and guidance checked and applied. */
  private modelCall(
    n: number,
    classLabels: RunOptions['classLabels'],
    guidanceScale: number | undefined,
    fromDefaults = false,
  ) {
    const u = this.unet;
    const K = u instanceof UNet2DModel ? u.config.num_class_embeds : null;
    if (K === null) {
      if (classLabels !== undefined || guidanceScale !== undefined)
        throw new DdpmError(
          'INVALID_ARGUMENT',
          `DDPMPipeline.run: classLabels/guidanceScale given, but the model is not class-conditional (its config has no num_class_embeds)`,
        );
      return {
        guided: false,
        forward: (
          x: Tensor,
          t: number,
          _i0: number,
          _nb: number,
          out: Tensor,
          _u: Tensor | null,
          check: () => void,
        ) => {
          check();
          return u.forwardTensor(x, t, { out });
        },
      };
    }
    const unet = u as UNet2DModel;
    if (classLabels === undefined)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDPMPipeline.run: the model is class-conditional (num_class_embeds = ${K}): pass classLabels`,
      );
    const guided = guidanceScale !== undefined;
    if (guided && (!Number.isFinite(guidanceScale) || guidanceScale < 0))
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDPMPipeline.run: guidanceScale must be a finite number >= 0, found ${guidanceScale}`,
      );
    if (guided && K < 2)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDPMPipeline.run: guidance needs an unconditional label besides the classes; num_class_embeds is ${K}`,
      );
    const maxLabel = guided ? K - 2 : K - 1; // with guidance, K − 1 is the unconditional label
    const raw = typeof classLabels === 'number' ? new Array<number>(n).fill(classLabels) : Array.from(classLabels);
    if (raw.length !== n)
      throw new DdpmError('SHAPE_MISMATCH', `DDPMPipeline.run: ${raw.length} classLabels for batchSize ${n}`);
    raw.forEach((l, i) => {
      if (!Number.isInteger(l) || l < 0 || l > maxLabel)
        throw new DdpmError(
          'INVALID_ARGUMENT',
          `DDPMPipeline.run: classLabels[${i}] = ${l} is not an integer in [0, ${maxLabel}]${guided ? ` (${K - 1} is the unconditional label)` : ''}${fromDefaults ? `; guidanceScale ${guidanceScale} is the model's default (${this.defaults.file ?? SAMPLING_DEFAULTS_FILE}): pass guidanceScale: null for none` : ''}`,
        );
    });
    const labels = Int32Array.from(raw);
    const uncond = new Int32Array(n).fill(K - 1);
    const w = guidanceScale ?? 1;
    const Cin = unet.config.in_channels * unet.config.sample_size ** 2;
    return {
      guided,
      forward: (
        x: Tensor,
        t: number,
        i0: number,
        nb: number,
        out: Tensor,
        outUncond: Tensor | null,
        check: () => void,
      ) => {
        check();
        const cond = unet.forwardTensor(x, t, { classLabels: labels.subarray(i0, i0 + nb), out });
        if (!outUncond) return cond;
        check();
        unet.forwardTensor(x, t, { classLabels: uncond.subarray(i0, i0 + nb), out: outUncond });
        extrapolate(this.engine.view(cond), this.engine.view(outUncond), w, nb, Cin);
        return cond;
      },
    };
  }

  /**
   * Writes a diffusers pipeline folder (Node, Deno, Bun): model_index.json, unet/ (config.json + weights),
   * scheduler/scheduler_config.json, and sampling_defaults.json when `defaults` has a guidance scale or
   * autoguidance (with its guide in the subfolder it names) — what fromPretrained and `ddpm sample --model`
   * read back.
   */
  async save(dir: string): Promise<void> {
    const u = this.unet;
    const cls = classOf(u);
    const sep = dir.endsWith('/') ? '' : '/';
    const schedulerConfig: Record<string, unknown> = {
      ...this.scheduler.toConfig(),
      _diffusers_version: DIFFUSERS_VERSION,
    };
    await writeFilesAtomic(`${dir}${sep}unet`, [
      [cls.weightsFile, u.weightsBytes()],
      ['config.json', configText(u)],
    ]);
    await writeFilesAtomic(`${dir}${sep}scheduler`, [
      [SCHEDULER_CONFIG_FILE, JSON.stringify(schedulerConfig, null, 2) + '\n'],
    ]);
    const index = {
      _class_name: 'DDPMPipeline',
      _diffusers_version: DIFFUSERS_VERSION,
      scheduler: ['diffusers', String(schedulerConfig._class_name)],
      unet: [u instanceof UNet2DModel ? 'diffusers' : 'ddpm-wasm', cls.className],
    };
    const files: [string, string][] = [[MODEL_INDEX_FILE, JSON.stringify(index, null, 2) + '\n']];
    const ag = this.defaults.autoguidance && this.guide ? this.defaults.autoguidance : undefined;
    const defaults: SamplingDefaults = { ...this.defaults, autoguidance: ag };
    const hasDefaults = defaults.guidanceScale !== undefined || ag !== undefined;
    if (ag && this.guide) {
      const g = this.guide;
      await writeFilesAtomic(`${dir}${sep}${ag.guide}`, [
        [classOf(g).weightsFile, g.weightsBytes()],
        ['config.json', configText(g)],
      ]);
    }
    if (hasDefaults) files.push([SAMPLING_DEFAULTS_FILE, samplingDefaultsJson(defaults)]);
    await writeFilesAtomic(dir, files);
    // no defaults: a file left by an earlier save to this folder would name another model's guidance
    if (!hasDefaults) await (await fsPromises()).rm(`${dir}${sep}${SAMPLING_DEFAULTS_FILE}`, { force: true });
  }
}

/**
 * Guidance in place, both kinds: out ← base + w·(out − base) (base: the unconditional output for classifier-free
 * guidance, the guide's for autoguidance), on the prediction — the first `Cin` values of each of the `nb`
 * samples; a learned variance after them stays `out`'s.
 */
function extrapolate(out: Float32Array, base: Float32Array, w: number, nb: number, Cin: number): void {
  const per = out.length / nb;
  for (let i = 0; i < out.length; i++) if (i % per < Cin) out[i] = base[i] + w * (out[i] - base[i]);
}

/** A model's config.json text (diffusers' layout for a UNet2DModel). */
function configText(m: PretrainedModel): string {
  return m instanceof UNet2DModel ? JSON.stringify(m.configJson(), null, 2) + '\n' : m.configJson() + '\n';
}

function positiveInt(what: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new DdpmError('INVALID_ARGUMENT', `DDPMPipeline.run: ${what} must be an integer in [1, ${max}], found ${v}`);
  return v;
}
