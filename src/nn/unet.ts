// diffusers' UNet2DModel: config.json + diffusion_pytorch_model.safetensors in, ε (or x0, v) out.
import { DdpmError } from '../errors.js';
import type { Engine, RecordedCall } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../io/safetensors.js';
import { modelLayout, openSource, readModelFiles, type ModelSource } from '../io/sources.js';
import { writeFilesAtomic } from '#platform';
import {
  Ctx,
  attention,
  concat,
  conv,
  downsample,
  groupNormLayer,
  layerHookActive,
  linear,
  resnet,
  siluAct,
  siluT,
  upsample,
  type Act,
  type BlockOpts,
} from './layers.js';
import { dropoutMaskFn, type Denoiser, type TrainForward, type TrainForwardOptions } from './denoiser.js';
import { ParamBlock, initializeParams } from './params.js';
import { loadBlock } from './param-tensors.js';
import { FIXED_KEYS, parseUNetConfig, type UNet2DConfig } from './unet-config.js';
import { unetParamSpecs } from './unet-params.js';
import { unetToOnnx } from './onnx.js';
import { type WinogradPolicy, winogradPolicy } from '../kernels/winograd.js';
import { encodeProgram } from '../engine/program.js';
import { unetForwardBytes, unetParamBytes } from './unet-plan.js';

export const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';

/** Legacy attention parameter names (diffusers < 0.14 checkpoints, e.g. google/ddpm-*) → current ones. */
const LEGACY_ATTENTION: [RegExp, string][] = [
  [/\.query\.(weight|bias)$/, '.to_q.$1'],
  [/\.key\.(weight|bias)$/, '.to_k.$1'],
  [/\.value\.(weight|bias)$/, '.to_v.$1'],
  [/\.proj_attn\.(weight|bias)$/, '.to_out.0.$1'],
];

/** Called with each block's output during forward, under diffusers' module names (for parity checks). */
export type ForwardHook = (name: string, values: Float32Array, shape: number[]) => void;

export interface ForwardOptions {
  /** Class labels (N) for a class-conditional model (num_class_embeds). */
  classLabels?: ArrayLike<number>;
  hook?: ForwardHook;
}

/**
 * Sinusoidal timestep embedding as diffusers' get_timestep_embedding computes it in float32:
 * freq_i = exp(−ln(10000)·i/(half − freq_shift)), emb = [sin(t·freq), cos(t·freq)] ([cos, sin] if flipped).
 */
export function timestepEmbedding(
  timesteps: ArrayLike<number>,
  dim: number,
  flipSinToCos: boolean,
  freqShift: number,
): Float32Array {
  const f = Math.fround;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(timesteps.length * dim);
  for (let n = 0; n < timesteps.length; n++) {
    for (let i = 0; i < half; i++) {
      const exponent = f(f(-Math.log(10000) * i) / (half - freqShift));
      const arg = f(f(timesteps[n]) * f(Math.exp(exponent)));
      const [first, second] = flipSinToCos ? [Math.cos(arg), Math.sin(arg)] : [Math.sin(arg), Math.cos(arg)];
      out[n * dim + i] = first;
      out[n * dim + half + i] = second;
    }
  }
  return out;
}

export class UNet2DModel implements Denoiser {
  readonly config: UNet2DConfig;
  readonly params: ParamBlock;
  private gradBlock: ParamBlock | null = null;
  private outBuf: Tensor | null = null;
  /** Bumped by every forwardTensor into outBuf: a result with an older number was overwritten. */
  private outGen = 0;
  /**
   * Inference replays (forwardTensor): the kernel calls and memory writes of one forward pass, recorded
   * the first time, by what fixes every address they touch (batch size, x, out, the arena's top,
   * class labels or not). A later call with the same key runs them again without the layers' JavaScript
   * (argument objects, checks, parameter lookups: ~20% of a forward on one image): the same kernels on
   * the same arguments, so the same bits. The model's weights are read at run time, so updating them in
   * place (training, loading) needs no invalidation; their addresses never change.
   */
  private readonly replays = new Map<string, Replay>();
  /** The steps of the forward being recorded, while one is. */
  private recording: ReplayStep[] | null = null;

  constructor(
    readonly engine: Engine,
    config: UNet2DConfig,
  ) {
    this.config = config;
    // the size from arithmetic first: a config asking for more than the memory limit fails here, before
    // the parameter list is built
    engine.arena.plan(unetParamBytes(config), `UNet2DModel parameters (${describe(config)})`);
    // one allocation for the whole block: the arena checks it against the memory limit first
    this.params = new ParamBlock(engine, unetParamSpecs(config), 'unet.params');
  }

  /** A freshly initialised model (PyTorch's default initialisation, reproducible from `seed`). */
  static create(engine: Engine, config: unknown, seed = 0): UNet2DModel {
    const model = new UNet2DModel(engine, parseUNetConfig(config, 'config'));
    initializeParams(engine, model.params, seed);
    return model;
  }

  /** Builds the model from a diffusers folder's config.json text/object and safetensors bytes. */
  static fromFiles(
    engine: Engine,
    configJson: unknown,
    weights: Uint8Array | ArrayBuffer,
    names = { config: 'config.json', weights: WEIGHTS_FILE },
  ): UNet2DModel {
    const config = parseUNetConfig(
      typeof configJson === 'string' ? parseJson(configJson, names.config) : configJson,
      names.config,
    );
    const model = new UNet2DModel(engine, config);
    model.loadStateDict(readSafetensors(weights, names.weights).tensors, names.weights);
    return model;
  }

  /**
   * Reads a diffusers model: a folder path (Node, Deno, Bun), a URL, a map of file names to bytes, or a
   * shipped model's name ('mnist'); a pipeline folder's unet/ is found by itself. `variant: 'fp16'` reads
   * diffusion_pytorch_model.fp16.safetensors (F16/BF16 tensors are converted to float32).
   */
  static async fromPretrained(engine: Engine, source: ModelSource, o: { variant?: string } = {}): Promise<UNet2DModel> {
    const { model } = await modelLayout(openSource(source));
    const f = await readModelFiles(model, WEIGHTS_FILE, o.variant);
    return UNet2DModel.fromFiles(engine, f.config, f.weights, f.names);
  }

  /**
   * Copies tensors into the parameters. Missing, unexpected and wrong-shaped tensors are all listed in
   * one error; legacy attention names are accepted as aliases.
   */
  loadStateDict(tensors: Map<string, SafeTensor>, file = WEIGHTS_FILE): void {
    const renamed = new Map<string, SafeTensor>();
    for (const [name, t] of tensors) {
      let current = name;
      for (const [re, to] of LEGACY_ATTENTION) current = current.replace(re, to);
      renamed.set(current, t);
    }
    loadBlock(this.engine, this.params, renamed, file, 'this UNet2DModel config');
  }

  /** The state dict as diffusers names it (current attention names), in state_dict() order. */
  stateDict(): [string, { shape: number[]; data: Float32Array }][] {
    return this.params.specs.map((s) => [s.name, { shape: s.shape, data: this.engine.read(this.params.get(s.name)) }]);
  }

  /** config.json as diffusers writes it (every key, so PyTorch diffusers loads it unchanged). */
  configJson(): Record<string, unknown> {
    return {
      _class_name: 'UNet2DModel',
      _diffusers_version: '0.32.2',
      ...this.config,
      ...FIXED_KEYS,
    };
  }

  /**
   * Writes a diffusers folder (config.json + diffusion_pytorch_model.safetensors). Files are written under
   * temporary names and renamed into place, so an interrupted save never leaves a half-written file.
   */
  async save(dir: string): Promise<void> {
    const weights = this.weightsBytes();
    await writeFilesAtomic(dir, [
      [WEIGHTS_FILE, weights],
      ['config.json', JSON.stringify(this.configJson(), null, 2) + '\n'],
    ]);
  }

  /**
   * The model as ONNX bytes (opset 17, standard ops; inputs sample (N, C, H, W), timestep (N) float32 and,
   * for class-conditional models, class_labels (N) int64; output out). See src/nn/onnx.ts.
   */
  toOnnx(): Uint8Array {
    return unetToOnnx(this.config, (name) => ({
      data: this.engine.read(this.params.get(name)),
      shape: this.params.get(name).shape,
    }));
  }

  /** safetensors bytes of the weights, as diffusers writes them (metadata format: pt). */
  weightsBytes(): Uint8Array {
    for (const { name } of this.params.specs) {
      const bad = this.engine.view(this.params.get(name)).find((v) => !Number.isFinite(v));
      if (bad !== undefined)
        throw new DdpmError(
          'NON_FINITE',
          `UNet2DModel: parameter ${name} holds ${bad}; non-finite weights are never saved`,
        );
    }
    return writeSafetensors(this.stateDict(), { format: 'pt' });
  }

  /** (in_channels, sample_size, sample_size). */
  get imageShape(): readonly [number, number, number] {
    const c = this.config;
    return [c.in_channels, c.sample_size, c.sample_size];
  }

  /** Elements per sample: in_channels × sample_size². */
  get sampleSize(): number {
    return this.config.in_channels * this.config.sample_size ** 2;
  }

  /** The gradient block (same layout as params), allocated on first use and zeroed by the trainer. */
  grads(): ParamBlock {
    this.gradBlock ??= new ParamBlock(this.engine, this.params.specs, 'unet.grads');
    return this.gradBlock;
  }

  /**
   * Arena bytes one inference forward pass on N samples allocates (activations, without the output): for
   * callers that draw x_T or allocate buffers first (a pipeline) to plan everything before starting.
   */
  forwardBytes(N: number): number {
    return unetForwardBytes(this.config, N);
  }

  /** Checks that a forward pass on N samples (plus `extra` bytes) fits the memory limit, before it runs. */
  private planForward(N: number, extra: number, who: string): void {
    // per batch size, computed once: a sampling loop plans every step. The bytes depend on which convs
    // run by Winograd (their temporaries), so the cache holds one policy's values only.
    const policy = winogradPolicy();
    if (policy !== this.planPolicy) {
      this.planBytes.clear();
      this.planPolicy = policy;
    }
    let bytes = this.planBytes.get(N);
    if (bytes === undefined) this.planBytes.set(N, (bytes = unetForwardBytes(this.config, N)));
    const arena = this.engine.arena;
    if (arena.used + bytes + extra > arena.limitBytes)
      arena.plan(bytes + extra, `${who} on a batch of ${N} (${describe(this.config)})`);
  }
  private readonly planBytes = new Map<number, number>();
  private planPolicy: WinogradPolicy = winogradPolicy();

  /** Checks a batch before anything runs; returns N and the per-sample timesteps. */
  private checkInputs(
    sampleLength: number,
    timesteps: number | ArrayLike<number>,
    classLabels?: ArrayLike<number>,
  ): { N: number; ts: number[] } {
    const c = this.config;
    const side = c.sample_size;
    const factor = 2 ** (c.block_out_channels.length - 1);
    const N = sampleLength / this.sampleSize;
    if (!Number.isInteger(N) || N < 1) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `UNet2DModel.forward: sample has ${sampleLength} values, expected N × ${c.in_channels} × ${side} × ${side} (in_channels × sample_size²) with N ≥ 1`,
      );
    }
    if (side % factor !== 0)
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `UNet2DModel.forward: sample_size ${side} is not divisible by the down-sampling factor ${factor}`,
      );
    const ts = typeof timesteps === 'number' ? new Array<number>(N).fill(timesteps) : Array.from(timesteps);
    if (ts.length !== N)
      throw new DdpmError('SHAPE_MISMATCH', `UNet2DModel.forward: ${ts.length} timesteps for a batch of ${N}`);
    ts.forEach((t, i) => {
      if (!Number.isFinite(t))
        throw new DdpmError('INVALID_TIMESTEP', `UNet2DModel.forward: timesteps[${i}] = ${t} is not finite`);
    });
    if (c.num_class_embeds !== null) {
      if (!classLabels || classLabels.length !== N)
        throw new DdpmError(
          'INVALID_ARGUMENT',
          `UNet2DModel.forward: a class-conditional model needs classLabels for each of the ${N} samples`,
        );
      Array.from(classLabels).forEach((l, i) => {
        if (!Number.isInteger(l) || l < 0 || l >= c.num_class_embeds!)
          throw new DdpmError(
            'INVALID_ARGUMENT',
            `UNet2DModel.forward: classLabels[${i}] = ${l} is not in [0, ${c.num_class_embeds})`,
          );
      });
    }
    return { N, ts };
  }

  /**
   * ε_θ(x_t, t): sample (N, C, H, W) as a Float32Array, timesteps one per sample or one for all.
   * Returns a new (N, out_channels, H, W) array; activations are freed before returning.
   */
  async forward(
    sample: Float32Array,
    timesteps: number | ArrayLike<number>,
    opts: ForwardOptions = {},
  ): Promise<Float32Array> {
    const { N, ts } = this.checkInputs(sample.length, timesteps, opts.classLabels);
    for (let i = 0; i < sample.length; i++) {
      if (!Number.isFinite(sample[i]))
        throw new DdpmError('NON_FINITE', `UNet2DModel.forward: sample[${i}] = ${sample[i]} is not finite`);
    }
    const e = this.engine;
    this.planForward(N, 4 * sample.length, 'UNet2DModel.forward');
    const mark = e.arena.mark();
    try {
      const ctx = new Ctx(e, this.params);
      const x = e.upload(sample, [N, this.sampleSize], 'sample');
      const hook = opts.hook;
      const emit = hook
        ? (name: string, a: Act | Tensor, shape?: number[]) => {
            if ('t' in a) hook(name, e.read(a.t), [a.N, a.C, a.H, a.W]);
            else hook(name, e.read(a), shape!);
          }
        : undefined;
      return e.read(this.forwardActs(ctx, x, N, ts, opts.classLabels, emit).t);
    } finally {
      e.arena.release(mark);
    }
  }

  /**
   * Inference on a tensor already in engine memory, for sampling loops: the output goes to `opts.out` if
   * given, else to a buffer the model keeps (allocated from the arena on the first call, again only if the
   * batch grows) and that the next call overwrites. A result of that buffer used after a later call
   * overwrote it (two sampling loops interleaved on one model) is a BUSY error, never another loop's
   * output. Activations are freed before returning.
   */
  forwardTensor(
    x: Tensor,
    timesteps: number | ArrayLike<number>,
    opts: { classLabels?: ArrayLike<number>; out?: Tensor } = {},
  ): Tensor {
    const { N, ts } = this.checkInputs(x.size, timesteps, opts.classLabels);
    this.engine.check(x, 'UNet2DModel.forwardTensor: x');
    const outSize = N * this.config.out_channels * this.config.sample_size ** 2;
    const shape = [N, this.config.out_channels, this.config.sample_size, this.config.sample_size];
    let out: Tensor;
    if (opts.out) {
      // the caller's buffer (a sampling loop that plans its own memory)
      this.engine.check(opts.out, 'UNet2DModel.forwardTensor: out');
      if (opts.out.size < outSize)
        throw new DdpmError(
          'SHAPE_MISMATCH',
          `UNet2DModel.forwardTensor: out (tensor ${opts.out.name}) holds ${opts.out.size} values, the output [${shape}] needs ${outSize}`,
        );
      out = { ...opts.out, size: outSize, shape };
      this.planForward(N, this.splitBytes(N), 'UNet2DModel.forwardTensor');
    } else {
      this.planForward(
        N,
        (!this.outBuf || this.outBuf.size < outSize ? 4 * outSize : 0) + this.splitBytes(N),
        'UNet2DModel.forwardTensor',
      );
      if (!this.outBuf || this.outBuf.size < outSize) this.outBuf = this.engine.alloc(outSize, 'unet.out');
      const gen = ++this.outGen;
      const lease = { live: () => this.outGen === gen, holder: 'UNet2DModel.forwardTensor' };
      out = { ...this.outBuf, size: outSize, shape, lease };
    }
    const e = this.engine;
    const mark = e.arena.mark();
    const inputs: ForwardInputs = { ts, classLabels: opts.classLabels };
    // not while profiling (the profile charges time to layers) or while something else records
    const replayable = e.recorder === null && !layerHookActive();
    // with T threads and N ≥ T images: the batch split in T chunks, each a whole forward on one thread —
    // when the chunks are equal or big enough that one image more in some costs little (else, say N = 3
    // on 2 threads, every kernel call split over the threads balances better)
    const T = splitsBatch(e, N) ? e.threads : 1;
    const key = replayable
      ? `${N} ${x.ptr} ${out.ptr} ${mark} ${opts.classLabels ? 1 : 0} ${winogradPolicy()} ${T}`
      : '';
    try {
      const replay = replayable ? this.replays.get(key) : undefined;
      if (replay) {
        this.runReplay(replay, mark, out, N, inputs);
        return out;
      }
      if (!replayable) {
        const y = this.forwardActs(new Ctx(e, this.params), x, N, ts, opts.classLabels, undefined, undefined, inputs);
        e.view(out).set(e.view(y.t));
        return out;
      }
      // First call with these addresses: run the layers, recording. Chunk c records at the arena top chunk
      // c − 1 left, so the chunks' activations never overlap and the chunks can run side by side.
      const chunks: ReplayChunk[] = [];
      // A layer's temporaries (the Winograd buffers) are released when it returns and their memory is
      // used again by what follows — in the same chunk, whose calls run in order, that is fine; the next
      // chunk (which runs at the same time on another thread) and the programs start above the peak.
      const claimPeak = () => {
        const top = e.arena.mark();
        if (e.arena.peak > top) e.alloc((e.arena.peak - top) >>> 2, 'unet.temporaries');
      };
      e.arena.resetPeak();
      for (let c = 0; c < T; c++) {
        const n0 = Math.floor((c * N) / T);
        const n1 = Math.floor(((c + 1) * N) / T);
        const part = chunkInputs(inputs, n0, n1);
        const steps: ReplayStep[] = [];
        this.recording = e.recorder = steps;
        const y = this.forwardActs(
          new Ctx(e, this.params),
          subTensor(x, n0, n1, N),
          n1 - n0,
          part.ts,
          part.classLabels,
          undefined,
          undefined,
          part,
        );
        this.recording = e.recorder = null;
        const o = subTensor(out, n0, n1, N);
        e.view(o).set(e.view(y.t));
        chunks.push({ n0, n1, steps, y: y.t });
        claimPeak();
      }
      // T > 1: each chunk's kernel calls as programs, one per stretch between JavaScript steps, in the
      // arena after the activations (rewritten on every replay: the arena holds them only during a call)
      const programs: { at: number[]; words: Float64Array[] }[] = [];
      if (T > 1) {
        const segments = chunks.map((ch) => segmentsOf(ch.steps));
        for (let k = 0; k < segments[0].length; k++) {
          const words = segments.map((seg, c) => encodeProgram(seg[k].calls, e.workspace, c));
          const at = words.map((w) => e.alloc(w.length * 2 + 2, 'unet.program').ptr); // f64 words, 8-aligned
          programs.push({ at: at.map((p) => (p + 7) & ~7), words });
        }
      }
      if (this.replays.size >= 16) this.replays.clear(); // addresses that keep changing: keep a few
      this.replays.set(key, { chunks, programs, top: e.arena.mark() });
    } finally {
      if (replayable) this.recording = e.recorder = null; // (never someone else's recorder)
      e.arena.release(mark);
    }
    return out;
  }

  /**
   * Bytes a batch split over the threads needs beyond one forward pass's plan: every chunk's own
   * activations and temporaries (the chunks run at the same time), and their programs (a generous bound:
   * a program is ~17 KiB for the mnist preset).
   */
  private splitBytes(N: number): number {
    const T = this.engine.threads;
    if (!splitsBatch(this.engine, N)) return 0;
    let chunks = 0;
    for (let c = 0; c < T; c++) chunks += this.forwardBytes(Math.floor(((c + 1) * N) / T) - Math.floor((c * N) / T));
    return Math.max(0, chunks - this.forwardBytes(N)) + T * 256 * 1024;
  }

  /** Runs a recorded forward pass again (see `replays`). */
  private runReplay(r: Replay, mark: number, out: Tensor, N: number, inputs: ForwardInputs): void {
    const e = this.engine;
    // the activations' memory, as the recorded pass allocated it (contents are overwritten)
    e.alloc((r.top - mark) >>> 2, 'unet.replay');
    if (r.programs.length === 0) {
      for (const step of r.chunks[0].steps) {
        if ('js' in step) step.js(inputs);
        else e.run(step.op, step.args as never, step.parallel);
      }
    } else {
      const parts = r.chunks.map((ch) => chunkInputs(inputs, ch.n0, ch.n1));
      const heap = new Float64Array(e.memory.buffer);
      const at = r.chunks.map(() => 0); // each chunk's position in its steps
      for (const p of r.programs) {
        // the JavaScript steps before this stretch of kernel calls, chunk by chunk
        r.chunks.forEach((ch, c) => {
          let i = at[c];
          while (i < ch.steps.length && 'js' in ch.steps[i]) (ch.steps[i++] as JsStep).js(parts[c]);
          while (i < ch.steps.length && !('js' in ch.steps[i])) i++;
          at[c] = i;
        });
        p.words.forEach((w, c) => heap.set(w, p.at[c] >>> 3));
        e.runPrograms(p.at);
      }
      // JavaScript steps after the last kernel call (none in this network)
      r.chunks.forEach((ch, c) => {
        for (let i = at[c]; i < ch.steps.length; i++) (ch.steps[i] as JsStep).js(parts[c]);
      });
    }
    for (const ch of r.chunks) e.view(subTensor(out, ch.n0, ch.n1, N)).set(e.view(ch.y));
  }

  /** Runs a step of the forward pass that JavaScript does (a memory write), recording it for replays. */
  private jsStep(inputs: ForwardInputs | undefined, f: (inputs: ForwardInputs) => void): void {
    if (inputs) f(inputs);
    this.recording?.push({ js: f });
  }

  /** Training forward on x (N, D) in engine memory; see Denoiser.trainForward. */
  trainForward(x: Tensor, timesteps: ArrayLike<number>, opts: TrainForwardOptions = {}): TrainForward {
    const { N, ts } = this.checkInputs(x.size, timesteps, opts.classLabels);
    const ctx = new Ctx(this.engine, this.params, this.grads());
    ctx.noGrad(x);
    const dropout =
      this.config.dropout > 0 && opts.dropoutSeed !== undefined
        ? { p: this.config.dropout, mask: dropoutMaskFn(this.engine, this.config.dropout, opts.dropoutSeed) }
        : undefined;
    const out = this.forwardActs(ctx, x, N, ts, opts.classLabels, undefined, dropout);
    return { out: out.t, backward: (dOut: Tensor) => ctx.backward(out.t, dOut) };
  }

  private forwardActs(
    ctx: Ctx,
    sample: Tensor,
    N: number,
    ts: number[],
    classLabels: ArrayLike<number> | undefined,
    emit: ((name: string, a: Act | Tensor, shape?: number[]) => void) | undefined,
    dropout?: BlockOpts['dropout'],
    inputs: ForwardInputs = { ts, classLabels },
  ): Act {
    const c = this.config;
    const e = this.engine;
    const boc = c.block_out_channels;
    const C0 = boc[0];
    const E = 4 * C0;
    const side = c.sample_size;
    emit ??= () => {};

    // 0. center input (2x − 1: no gradient needed for the input)
    let x: Act = { t: sample, N, C: c.in_channels, H: side, W: side };
    if (c.center_input_sample) {
      x = ctx.act(N, c.in_channels, side, side, 'centered');
      const centered = x.t;
      this.jsStep(inputs, () => e.view(centered).set(e.view(sample).map((v) => 2 * v - 1)));
      ctx.noGrad(x.t);
    }

    // 1. time: sinusoidal projection → MLP (linear, SiLU, linear) [+ class embedding]
    const tproj = e.alloc([N, C0], 'time_proj');
    this.jsStep(inputs, (inp) => e.write(tproj, timestepEmbedding(inp.ts, C0, c.flip_sin_to_cos, c.freq_shift)));
    ctx.noGrad(tproj);
    emit('time_proj', tproj, [N, C0]);
    const t1 = siluT(ctx, linear(ctx, 'time_embedding.linear_1', tproj, N, C0, E), 'time_embedding.act');
    const emb = linear(ctx, 'time_embedding.linear_2', t1, N, E, E); // (N, E)
    if (c.num_class_embeds !== null && classLabels) {
      // + class_embedding(labels), in place: the gradient reaches emb unchanged and the table's rows
      const addRows = (labels: ArrayLike<number>, dst: Float32Array, src: Float32Array, fromTable: boolean) => {
        for (let n = 0; n < N; n++)
          for (let j = 0; j < E; j++) {
            if (fromTable) dst[n * E + j] += src[labels[n] * E + j];
            else dst[labels[n] * E + j] += src[n * E + j];
          }
      };
      const table = this.params.get('class_embedding.weight');
      this.jsStep(inputs, (inp) => addRows(inp.classLabels!, e.view(emb), e.view(table), true));
      const labels = Array.from(classLabels);
      ctx.record(() => addRows(labels, e.view(ctx.g('class_embedding.weight')), e.view(ctx.grad(emb)), false));
    }
    emit('time_embedding', emb, [N, E]);
    const tembAct = siluT(ctx, emb, 'temb_act');
    const o: BlockOpts = { groups: c.norm_num_groups, eps: c.norm_eps, tembAct, tembDim: E, dropout };
    const headDim = (ch: number) => c.attention_head_dim ?? ch;

    // 2. down
    let h = conv(ctx, 'conv_in', x, C0, 3);
    emit('conv_in', h);
    const skips: Act[] = [h];
    c.down_block_types.forEach((type, i) => {
      const p = `down_blocks.${i}`;
      for (let l = 0; l < c.layers_per_block; l++) {
        h = resnet(ctx, `${p}.resnets.${l}`, h, boc[i], o);
        emit(`${p}.resnets.${l}`, h);
        if (type === 'AttnDownBlock2D') {
          h = attention(ctx, `${p}.attentions.${l}`, h, headDim(boc[i]), o);
          emit(`${p}.attentions.${l}`, h);
        }
        skips.push(h);
      }
      if (i !== boc.length - 1) {
        h = downsample(ctx, `${p}.downsamplers.0`, h, c.downsample_padding);
        emit(`${p}.downsamplers.0`, h);
        skips.push(h);
      }
      emit(p, h);
    });

    // 3. mid
    const last = boc[boc.length - 1];
    h = resnet(ctx, 'mid_block.resnets.0', h, last, o, c.mid_block_scale_factor);
    emit('mid_block.resnets.0', h);
    h = attention(ctx, 'mid_block.attentions.0', h, headDim(last), o, c.mid_block_scale_factor);
    emit('mid_block.attentions.0', h);
    h = resnet(ctx, 'mid_block.resnets.1', h, last, o, c.mid_block_scale_factor);
    emit('mid_block.resnets.1', h);
    emit('mid_block', h);

    // 4. up: each resnet takes the latest skip concatenated to its input
    const rev = [...boc].reverse();
    c.up_block_types.forEach((type, i) => {
      const p = `up_blocks.${i}`;
      for (let l = 0; l < c.layers_per_block + 1; l++) {
        const skip = skips.pop()!;
        h = resnet(ctx, `${p}.resnets.${l}`, concat(ctx, h, skip, `${p}.cat.${l}`), rev[i], o);
        emit(`${p}.resnets.${l}`, h);
        if (type === 'AttnUpBlock2D') {
          h = attention(ctx, `${p}.attentions.${l}`, h, headDim(rev[i]), o);
          emit(`${p}.attentions.${l}`, h);
        }
      }
      if (i !== boc.length - 1) {
        h = upsample(ctx, `${p}.upsamplers.0`, h);
        emit(`${p}.upsamplers.0`, h);
      }
      emit(p, h);
    });

    // 5. out
    h = groupNormLayer(ctx, 'conv_norm_out', h, c.norm_num_groups, c.norm_eps);
    emit('conv_norm_out', h);
    h = siluAct(ctx, h, 'conv_act');
    emit('conv_act', h);
    h = conv(ctx, 'conv_out', h, c.out_channels, 3);
    emit('conv_out', h);
    return h;
  }
}

/** What a forward pass's JavaScript steps read from the call (UNet2DModel's replays). */
interface ForwardInputs {
  ts: number[];
  classLabels: ArrayLike<number> | undefined;
}

/** A recorded forward pass: kernel calls and JavaScript memory writes, in order. */
type JsStep = { js: (inputs: ForwardInputs) => void };
type ReplayStep = RecordedCall | JsStep;
/** One chunk of the batch (images n0 … n1−1) and its recorded forward pass. */
interface ReplayChunk {
  n0: number;
  n1: number;
  steps: ReplayStep[];
  /** The output activation (copied to the chunk's part of the call's out). */
  y: Tensor;
}
interface Replay {
  /** One chunk (the whole batch, its calls run on all threads each), or one per thread. */
  chunks: ReplayChunk[];
  /** With one chunk per thread: per stretch of kernel calls, each chunk's program and its address. */
  programs: { at: number[]; words: Float64Array[] }[];
  /** The arena's top when the recorded pass ended (activations and programs lie below). */
  top: number;
}

/** Whether forwardTensor splits a batch of N over the threads (one whole forward per chunk). */
function splitsBatch(e: Engine, N: number): boolean {
  const T = e.threads;
  return T > 1 && N >= T && (N % T === 0 || N >= 4 * T);
}

/** Images n0 … n1−1 of a batch of N in x (N, …): a view of the same memory. */
function subTensor(x: Tensor, n0: number, n1: number, N: number): Tensor {
  const per = x.size / N;
  return { ...x, ptr: x.ptr + 4 * n0 * per, size: (n1 - n0) * per, shape: [n1 - n0, ...x.shape.slice(1)] };
}

function chunkInputs(inputs: ForwardInputs, n0: number, n1: number): ForwardInputs {
  return {
    ts: inputs.ts.slice(n0, n1),
    classLabels: inputs.classLabels && Array.from(inputs.classLabels).slice(n0, n1),
  };
}

/** The kernel calls of a recorded pass in stretches, each after the JavaScript steps that precede it. */
function segmentsOf(steps: readonly ReplayStep[]): { calls: RecordedCall[] }[] {
  const out: { calls: RecordedCall[] }[] = [];
  let cur: RecordedCall[] | null = null;
  for (const s of steps) {
    if ('js' in s) cur = null;
    else {
      if (!cur) out.push({ calls: (cur = []) });
      cur.push(s);
    }
  }
  return out;
}

/** A config in a few words, for memory messages. */
function describe(c: UNet2DConfig): string {
  return `sample_size ${c.sample_size}, block_out_channels [${c.block_out_channels}], layers_per_block ${c.layers_per_block}`;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DdpmError('FORMAT', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}
