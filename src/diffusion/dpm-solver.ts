// DPMSolverMultistepScheduler: DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided
// Sampling of Diffusion Probabilistic Models", https://arxiv.org/abs/2211.01095) in its multistep form —
// orders 1–3 ("2M", "3M") and the SDE variant — with diffusers v0.32's semantics
// (scheduling_dpmsolver_multistep.py): its timesteps, σ table, order schedule and config keys.
//
// DPM-Solver++ integrates the data prediction x̂_0 over λ = log(α/σ). From λ_s to λ_t, h = λ_t − λ_s:
//   order 1 (eq. 5, = DDIM):   x_t = (σ_t/σ_s)·x_s − α_t·(e^{−h} − 1)·D0
//   2M (Algorithm 2):          … − ½·α_t·(e^{−h} − 1)·D1,   D1 = (m0 − m1)/r0,  r0 = h_0/h
//   3M (diffusers' extension): … + α_t·((e^{−h} − 1)/h + 1)·D1 − α_t·((e^{−h} − 1 + h)/h² − ½)·D2
// where m_k is the x̂_0 of k steps ago (D0 = m0) and h_k the λ step before that. SDE-DPM-Solver++ (§4.3)
// replaces e^{−h} by e^{−2h} in the data terms and adds σ_t·sqrt(1 − e^{−2h})·z.
//
// diffusers' quirks reproduced (each matters for parity): timesteps from n + 1 points with the last dropped
// (sigmas.ts); Karras sigmas span the whole training range and ignore timestep_spacing; σ = 0 is appended,
// and with final_sigmas_type "zero" the last step is always first order (it returns x̂_0 exactly); fewer
// than 15 steps with lower_order_final also make the second-to-last step at most second order.
import { show } from '../validate.js';
import { DdpmError } from '../errors.js';
import type { Tensor } from '../engine/memory.js';
import {
  COMMON_CONFIG_KEYS,
  oneOf,
  optionsFromConfig,
  roundHalfEven,
  type SchedulerOptions,
  type SchedulerOutput,
  type StepOptions,
} from './scheduler.js';
import { karrasSigmas, lambdaTable32, sigmaToT, solverTimesteps } from './sigmas.js';
import {
  SolverBase,
  alphaSigma,
  combo,
  dataPrediction,
  flag,
  lambdaOf,
  refuseUnsupported,
  type Combo,
} from './solver.js';

export type DPMAlgorithmType = 'dpmsolver++' | 'sde-dpmsolver++';
export type DPMSolverType = 'midpoint' | 'heun';
export type FinalSigmasType = 'zero' | 'sigma_min';

export interface DPMSolverMultistepSchedulerOptions extends Omit<SchedulerOptions, 'clipSample' | 'clipSampleRange'> {
  solverOrder?: number; // 2
  algorithmType?: DPMAlgorithmType; // 'dpmsolver++'
  /** How the second-order term is formed: midpoint (Algorithm 2) or heun. Default midpoint. */
  solverType?: DPMSolverType;
  lowerOrderFinal?: boolean; // true
  eulerAtFinal?: boolean; // false
  useKarrasSigmas?: boolean; // false
  finalSigmasType?: FinalSigmasType; // 'zero'
  /** Timesteps whose λ is below this are not used (the cosine schedule's end); default −∞. */
  lambdaMinClipped?: number;
  /** learned / learned_range: the model output carries variance channels, which are dropped. */
  varianceType?: string | null;
}

const DPM_CONFIG_KEYS: Record<string, string> = {
  ...COMMON_CONFIG_KEYS,
  solver_order: 'solverOrder',
  algorithm_type: 'algorithmType',
  solver_type: 'solverType',
  lower_order_final: 'lowerOrderFinal',
  euler_at_final: 'eulerAtFinal',
  use_karras_sigmas: 'useKarrasSigmas',
  final_sigmas_type: 'finalSigmasType',
  lambda_min_clipped: 'lambdaMinClipped',
  variance_type: 'varianceType',
};

/** Config keys diffusers has and we refuse unless they hold their default. */
const DPM_UNSUPPORTED = {
  use_lu_lambdas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_flow_sigmas: false,
  use_dynamic_shifting: false,
};

/** lambda_min_clipped as diffusers writes it: a number, or "-inf" / "-Infinity" / null for −∞. */
function parseLambdaMin(v: unknown): number {
  if (v === undefined || v === null || v === '-inf' || v === '-Infinity') return -Infinity;
  if (typeof v !== 'number' || Number.isNaN(v))
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `DPMSolverMultistepScheduler: lambdaMinClipped must be a number or "-inf", found ${JSON.stringify(v)}`,
    );
  return v;
}

export class DPMSolverMultistepScheduler extends SolverBase {
  readonly solverOrder: number;
  readonly algorithmType: DPMAlgorithmType;
  readonly solverType: DPMSolverType;
  readonly lowerOrderFinal: boolean;
  readonly eulerAtFinal: boolean;
  readonly useKarrasSigmas: boolean;
  readonly finalSigmasType: FinalSigmasType;
  readonly lambdaMinClipped: number;
  readonly varianceType: string | null;
  /** Data predictions x̂_0 of the last steps, oldest first (diffusers' model_outputs). */
  private history: Tensor[] = [];
  /** diffusers' lower_order_nums: steps taken so far, capped at solverOrder (the warm-up). */
  private lowerOrderNums = 0;
  /** The order the last step ran (1, 2 or 3), for inspection; null before the first. */
  lastOrder: number | null = null;

  constructor(o: DPMSolverMultistepSchedulerOptions = {}) {
    const who = 'DPMSolverMultistepScheduler';
    super({ ...o, timestepSpacing: o.timestepSpacing ?? 'linspace', clipSample: false }, who);
    this.solverOrder = o.solverOrder ?? 2;
    if (![1, 2, 3].includes(this.solverOrder))
      throw new DdpmError('UNSUPPORTED', `${who}: solverOrder must be 1, 2 or 3, found ${show(this.solverOrder)}`);
    // diffusers maps "deis" to dpmsolver++ and UniPC's / DEIS's solver types to midpoint (register_to_config).
    const alg: string = (o.algorithmType as string) === 'deis' ? 'dpmsolver++' : (o.algorithmType ?? 'dpmsolver++');
    if (alg === 'dpmsolver' || alg === 'sde-dpmsolver')
      throw new DdpmError(
        'UNSUPPORTED',
        `${who}: algorithmType ${alg} (noise-prediction DPM-Solver) is not supported: use dpmsolver++ or sde-dpmsolver++`,
      );
    this.algorithmType = oneOf(who, 'algorithmType', alg, ['dpmsolver++', 'sde-dpmsolver++'] as const);
    const st = ['logrho', 'bh1', 'bh2'].includes(o.solverType as string) ? 'midpoint' : (o.solverType ?? 'midpoint');
    this.solverType = oneOf(who, 'solverType', st, ['midpoint', 'heun'] as const);
    this.lowerOrderFinal = flag(who, 'lowerOrderFinal', o.lowerOrderFinal ?? true);
    this.eulerAtFinal = flag(who, 'eulerAtFinal', o.eulerAtFinal ?? false);
    this.useKarrasSigmas = flag(who, 'useKarrasSigmas', o.useKarrasSigmas ?? false);
    this.finalSigmasType = oneOf(who, 'finalSigmasType', o.finalSigmasType ?? 'zero', ['zero', 'sigma_min'] as const);
    this.lambdaMinClipped = parseLambdaMin(o.lambdaMinClipped);
    this.varianceType = o.varianceType ?? null;
    if (this.varianceType !== null && typeof this.varianceType !== 'string')
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${who}: varianceType must be a string or null, found ${show(this.varianceType)}`,
      );
  }

  static fromConfig(json: unknown, extra: Pick<SchedulerOptions, 'engine'> = {}): DPMSolverMultistepScheduler {
    refuseUnsupported('DPMSolverMultistepScheduler', json, DPM_UNSUPPORTED);
    return new DPMSolverMultistepScheduler({
      ...optionsFromConfig<DPMSolverMultistepSchedulerOptions>(json, DPM_CONFIG_KEYS, 'DPMSolverMultistepScheduler'),
      ...extra,
    });
  }

  toConfig(): Record<string, unknown> {
    const c = this.commonConfigWithoutClip();
    return {
      _class_name: 'DPMSolverMultistepScheduler',
      ...c,
      solver_order: this.solverOrder,
      algorithm_type: this.algorithmType,
      solver_type: this.solverType,
      lower_order_final: this.lowerOrderFinal,
      euler_at_final: this.eulerAtFinal,
      use_karras_sigmas: this.useKarrasSigmas,
      final_sigmas_type: this.finalSigmasType,
      lambda_min_clipped: this.lambdaMinClipped === -Infinity ? '-inf' : this.lambdaMinClipped,
      variance_type: this.varianceType,
      thresholding: false,
      use_lu_lambdas: false,
      use_exponential_sigmas: false,
      use_beta_sigmas: false,
      use_flow_sigmas: false,
      rescale_betas_zero_snr: false,
    };
  }

  /** n steps: integer timesteps (sigmas.ts solverTimesteps, or Karras's σ mapped back to t and rounded)
   * and their float32 σ, then the final σ (0, or σ(0) for final_sigmas_type sigma_min). */
  setTimesteps(n: number): void {
    const T = this.numTrainTimesteps;
    let last = T;
    if (this.lambdaMinClipped > -Infinity) {
      // diffusers: searchsorted(flip(λ), lambda_min_clipped) timesteps at the end have too low a λ.
      const lam = lambdaTable32(this.alphasCumprod32);
      let clipped = 0;
      for (let t = T - 1; t >= 0 && lam[t] < this.lambdaMinClipped; t--) clipped++;
      last = T - clipped;
      if (last < 1)
        throw new DdpmError(
          'INVALID_SCHEDULE',
          `DPMSolverMultistepScheduler: lambdaMinClipped ${this.lambdaMinClipped} clips every timestep`,
        );
    }
    let ts = solverTimesteps(this.timestepSpacing, T, n, this.stepsOffset, last);
    let sig: number[];
    if (this.useKarrasSigmas) {
      // Karras over the full table, whatever the spacing (diffusers' behaviour).
      const ks = karrasSigmas(this.sigmaTable[0], this.sigmaTable[T - 1], n);
      ts = Array.from(ks, (s) => roundHalfEven(sigmaToT(s, this.logSigmaTable)));
      sig = Array.from(ks, Math.fround);
    } else sig = ts.map((t) => this.sigmaTable[t]);
    this.timesteps = ts;
    this.sigmas = [...sig, this.finalSigmasType === 'zero' ? 0 : this.sigmaTable[0]];
    this.numInferenceSteps = ts.length;
    this.resetState();
  }

  protected resetState(): void {
    super.resetState();
    this.history = [];
    this.lowerOrderNums = 0;
    this.lastOrder = null;
  }

  protected hasHistory(): boolean {
    return this.history.length > 0;
  }

  /**
   * One DPM-Solver++ step from timesteps[i] to timesteps[i + 1] (σ_{i+1} = 0 after the last): x̂_0 from the
   * model output, then the order-k update from x̂_0 and the k − 1 before it, in two kernel passes. Noise
   * (sde-dpmsolver++ only): opts.noise, or Philox at (opts.seed, stream T + 1 + i, opts.offset + n·D).
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: StepOptions = {}): SchedulerOutput {
    const who = 'DPMSolverMultistepScheduler.step';
    const learned = this.varianceType === 'learned' || this.varianceType === 'learned_range';
    const { engine, N, D, stride } = this.shapes(who, modelOutput, sample, learned);
    const i = this.beginStep(who, timestep);
    const n = this.timesteps.length;
    const size = N * D;
    // "Improve numerical stability for small number of steps" (diffusers): lower orders at the end.
    const lowerOrderFinal =
      i === n - 1 && (this.eulerAtFinal || (this.lowerOrderFinal && n < 15) || this.finalSigmasType === 'zero');
    const lowerOrderSecond = i === n - 2 && this.lowerOrderFinal && n < 15;
    const sde = this.algorithmType === 'sde-dpmsolver++';
    // Draw-or-read checks come first, so a refused step leaves the history as it was.
    const { alpha: alphaT, sigmaT } = alphaSigma(this.sigmas[i + 1]);
    const lambdaT = lambdaOf(this.sigmas[i + 1]);
    const lambdaS0 = lambdaOf(this.sigmas[i]);
    const h = lambdaT - lambdaS0;
    const noise = sde ? this.stepNoise(who, opts, sigmaT * Math.sqrt(-Math.expm1(-2 * h)), i, size, engine) : undefined;
    const out = this.solverOutputs(engine, size, opts.out);

    // 1. convert_model_output: the data prediction x̂_0 (m0), pushed onto the history.
    const { ax, am } = dataPrediction(this.predictionType, this.sigmas[i]);
    const names = ['ring0', 'ring1', 'ring2', 'ring3'].slice(0, this.solverOrder + 1);
    const m0 = this.freeBuffer(engine, size, names, this.history);
    this.combine(engine, N, D, m0, { t: sample, coef: ax }, [{ t: modelOutput, coef: am }], { stride0: stride });
    this.history.push(m0);
    if (this.history.length > this.solverOrder) this.history.shift();

    // 2. the order of this step
    const order =
      this.solverOrder === 1 || this.lowerOrderNums < 1 || lowerOrderFinal
        ? 1
        : this.solverOrder === 2 || this.lowerOrderNums < 2 || lowerOrderSecond
          ? 2
          : 3;

    // 3. the update, as coefficients on x_s and on m0, m1, m2 (newest first)
    const k = order;
    const m = (j: number) => combo.unit(j, k);
    const { sigmaT: sigmaS0 } = alphaSigma(this.sigmas[i]);
    const phi = sde ? -Math.expm1(-2 * h) : Math.expm1(-h); // 1 − e^{−2h}  or  e^{−h} − 1
    const a = sde ? (sigmaT / sigmaS0) * Math.exp(-h) : sigmaT / sigmaS0;
    let coef: Combo;
    if (order === 1) {
      coef = combo.scale(m(0), sde ? alphaT * phi : -alphaT * phi);
    } else if (order === 2) {
      const lambdaS1 = lambdaOf(this.sigmas[i - 1]);
      const h0 = lambdaS0 - lambdaS1;
      const r0 = h0 / h;
      const D0 = m(0);
      const D1 = combo.scale(combo.sub(m(0), m(1)), 1 / r0);
      let c1: number;
      if (sde) c1 = this.solverType === 'midpoint' ? 0.5 * alphaT * phi : alphaT * (phi / (-2 * h) + 1);
      else c1 = this.solverType === 'midpoint' ? -0.5 * alphaT * phi : alphaT * (phi / h + 1);
      coef = combo.add(combo.scale(D0, sde ? alphaT * phi : -alphaT * phi), combo.scale(D1, c1));
    } else {
      const lambdaS1 = lambdaOf(this.sigmas[i - 1]);
      const lambdaS2 = lambdaOf(this.sigmas[i - 2]);
      const h0 = lambdaS0 - lambdaS1,
        h1 = lambdaS1 - lambdaS2;
      const r0 = h0 / h,
        r1 = h1 / h;
      const D0 = m(0);
      const D1_0 = combo.scale(combo.sub(m(0), m(1)), 1 / r0);
      const D1_1 = combo.scale(combo.sub(m(1), m(2)), 1 / r1);
      const D1 = combo.add(D1_0, combo.scale(combo.sub(D1_0, D1_1), r0 / (r0 + r1)));
      const D2 = combo.scale(combo.sub(D1_0, D1_1), 1 / (r0 + r1));
      if (sde) {
        coef = combo.add(
          combo.add(combo.scale(D0, alphaT * phi), combo.scale(D1, alphaT * (phi / (-2 * h) + 1))),
          combo.scale(D2, alphaT * ((phi - 2 * h) / (2 * h) ** 2 - 0.5)),
        );
      } else {
        coef = combo.add(
          combo.add(combo.scale(D0, -alphaT * phi), combo.scale(D1, alphaT * (phi / h + 1))),
          combo.scale(D2, -alphaT * ((phi + h) / (h * h) - 0.5)),
        );
      }
    }
    const hist = this.history;
    const terms = coef.map((c, j) => ({ t: hist[hist.length - 1 - j], coef: c }));
    this.combine(engine, N, D, out.prevSample, { t: sample, coef: a }, terms, { noise });

    if (this.lowerOrderNums < this.solverOrder) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    this.lastOrder = order;
    if (opts.out?.predOriginalSample) this.combine(engine, N, D, out.predOriginalSample, { t: m0, coef: 1 }, []);
    return { prevSample: out.prevSample, predOriginalSample: opts.out?.predOriginalSample ?? m0 };
  }

  protected stateValues(): Record<string, number | null> {
    return { lowerOrderNums: this.lowerOrderNums };
  }

  protected stateTensors(): Record<string, Tensor | null> {
    const h = this.history;
    const out: Record<string, Tensor | null> = {};
    for (let j = 0; j < this.solverOrder; j++) out[`m${j}`] = h[h.length - 1 - j] ?? null;
    return out;
  }

  protected restoreState(values: Record<string, number | null>, tensors: Record<string, Tensor | null>): void {
    const lon = values.lowerOrderNums;
    if (lon === null || !Number.isInteger(lon) || lon < 0 || lon > this.solverOrder) {
      throw new DdpmError(
        'FORMAT',
        `DPMSolverMultistepScheduler.loadState: lowerOrderNums must be an integer in [0, ${this.solverOrder}], found ${show(lon)}`,
      );
    }
    const hist: Tensor[] = [];
    for (let j = 0; j < this.solverOrder; j++) {
      const t = tensors[`m${j}`];
      if (!t) break;
      hist.unshift(t);
    }
    if (hist.length < Math.min(lon, this.solverOrder))
      throw new DdpmError(
        'FORMAT',
        `DPMSolverMultistepScheduler.loadState: ${lon} steps taken need ${lon} history tensors m0…, found ${hist.length}`,
      );
    this.history = hist;
    this.lowerOrderNums = lon;
  }
}
