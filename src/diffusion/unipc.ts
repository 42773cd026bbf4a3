// UniPCMultistepScheduler: UniPC, a unified predictor–corrector framework (Zhao et al. 2023, "UniPC: A
// Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models",
// https://arxiv.org/abs/2302.04867), with diffusers v0.32's semantics (scheduling_unipc_multistep.py).
//
// In λ = log(α/σ), with h = λ_t − λ_s0, hh = −h for the data prediction (predict_x0) and +h for the noise
// prediction, and the history m0 (newest), m1, … of converted model outputs:
//   UniP-p (Algorithm 1):  x_t = (σ_t/σ_s0)·x − α_t·(e^{hh} − 1)·m0 − α_t·B(h)·Σ_{k<p} ρ_k·D_k,
//                          D_k = (m_k − m0)/r_k,  r_k = (λ_{s_k} − λ_s0)/h
//   UniC-p (Algorithm 2):  the same from the previous step's start, with one more term ρ_p·(m_t − m0),
//                          m_t the model output at the predicted point — "correcting" that point.
// ρ solves R·ρ = b (eq. 7): R_jk = r_k^(j−1), b_j = (j − 1)!·φ_{j}(hh)·hh / B(h) built by the recursion
// φ_{k+1} = (φ_k − 1/k!)/hh; B(h) = hh (bh1) or e^{hh} − 1 (bh2, the paper's recommendation for few steps).
// For p = 2 (predictor) and p = 1 (corrector) diffusers uses ρ = ½ instead of solving.
//
// diffusers' quirk that decides the numbers: the corrector runs at the *start* of each step from step 1 on,
// correcting the incoming sample with the new model output — but the model was evaluated on, and x̂_0
// computed from, the uncorrected sample. The predictor then starts from the corrected sample.
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
import { karrasSigmas, sigmaToT, solverTimesteps } from './sigmas.js';
import {
  SolverBase,
  alphaSigma,
  combo,
  dataPrediction,
  lambdaOf,
  noisePrediction,
  refuseUnsupported,
  flag,
  type Combo,
} from './solver.js';
import type { FinalSigmasType } from './dpm-solver.js';

export type UniPCSolverType = 'bh1' | 'bh2';

export interface UniPCMultistepSchedulerOptions extends Omit<SchedulerOptions, 'clipSample' | 'clipSampleRange'> {
  solverOrder?: number; // 2
  /** Integrate the data prediction (UniPC's default) rather than the noise prediction. Default true. */
  predictX0?: boolean;
  solverType?: UniPCSolverType; // 'bh2'
  lowerOrderFinal?: boolean; // true
  /** Step indices whose following corrector is skipped. Default []. */
  disableCorrector?: readonly number[];
  useKarrasSigmas?: boolean; // false
  finalSigmasType?: FinalSigmasType; // 'zero'
}

const UNIPC_CONFIG_KEYS: Record<string, string> = {
  ...COMMON_CONFIG_KEYS,
  solver_order: 'solverOrder',
  predict_x0: 'predictX0',
  solver_type: 'solverType',
  lower_order_final: 'lowerOrderFinal',
  disable_corrector: 'disableCorrector',
  use_karras_sigmas: 'useKarrasSigmas',
  final_sigmas_type: 'finalSigmasType',
};

const UNIPC_UNSUPPORTED = {
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_flow_sigmas: false,
  solver_p: null,
};

/** Solves A·x = b (k ≤ 3) by Gaussian elimination with partial pivoting, in float64. */
function solve(A: number[][], b: number[]): number[] {
  const k = b.length;
  const M = A.map((row, i) => [...row.slice(0, k), b[i]]);
  for (let c = 0; c < k; c++) {
    let p = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < k; r++) {
      const f = M[r][c] / M[c][c];
      for (let j = c; j <= k; j++) M[r][j] -= f * M[c][j];
    }
  }
  const x = new Array<number>(k).fill(0);
  for (let r = k - 1; r >= 0; r--) {
    let s = M[r][k];
    for (let j = r + 1; j < k; j++) s -= M[r][j] * x[j];
    x[r] = s / M[r][r];
  }
  return x;
}

export class UniPCMultistepScheduler extends SolverBase {
  readonly solverOrder: number;
  readonly predictX0: boolean;
  readonly solverType: UniPCSolverType;
  readonly lowerOrderFinal: boolean;
  readonly disableCorrector: readonly number[];
  readonly useKarrasSigmas: boolean;
  readonly finalSigmasType: FinalSigmasType;
  /** Converted model outputs of the last steps, oldest first (diffusers' model_outputs). */
  private history: Tensor[] = [];
  /** diffusers' last_sample: the sample the last predictor started from (corrected, from step 1 on). */
  private lastSample: Tensor | null = null;
  private lowerOrderNums = 0;
  /** diffusers' this_order: the last predictor's order, which the next corrector uses. */
  private thisOrder: number | null = null;
  /** Orders of the last step, for inspection: predictor p, and the corrector's (null when none ran). */
  lastOrders: { predictor: number; corrector: number | null } | null = null;

  constructor(o: UniPCMultistepSchedulerOptions = {}) {
    const who = 'UniPCMultistepScheduler';
    super({ ...o, timestepSpacing: o.timestepSpacing ?? 'linspace', clipSample: false }, who);
    this.solverOrder = o.solverOrder ?? 2;
    if (![1, 2, 3].includes(this.solverOrder))
      throw new DdpmError('UNSUPPORTED', `${who}: solverOrder must be 1, 2 or 3, found ${show(this.solverOrder)}`);
    this.predictX0 = flag(who, 'predictX0', o.predictX0 ?? true);
    // diffusers maps DPM-Solver's and DEIS's solver types to bh2 (register_to_config).
    const st = ['midpoint', 'heun', 'logrho'].includes(o.solverType as string) ? 'bh2' : (o.solverType ?? 'bh2');
    this.solverType = oneOf(who, 'solverType', st, ['bh1', 'bh2'] as const);
    this.lowerOrderFinal = flag(who, 'lowerOrderFinal', o.lowerOrderFinal ?? true);
    const dc = o.disableCorrector ?? [];
    if (!Array.isArray(dc) || !dc.every((v) => Number.isInteger(v) && v >= 0))
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${who}: disableCorrector must be a list of step indices, found ${JSON.stringify(dc)}`,
      );
    this.disableCorrector = [...dc];
    this.useKarrasSigmas = flag(who, 'useKarrasSigmas', o.useKarrasSigmas ?? false);
    this.finalSigmasType = oneOf(who, 'finalSigmasType', o.finalSigmasType ?? 'zero', ['zero', 'sigma_min'] as const);
    if (!this.predictX0 && this.finalSigmasType === 'zero') {
      // The noise-prediction update's last step to σ = 0 is σ_t·(e^h − 1) = 0·∞: NaN in diffusers too.
      throw new DdpmError(
        'UNSUPPORTED',
        `${who}: predict_x0 = false needs final_sigmas_type "sigma_min" (with "zero" the last step is 0·∞, NaN in diffusers as well)`,
      );
    }
  }

  static fromConfig(json: unknown, extra: Pick<SchedulerOptions, 'engine'> = {}): UniPCMultistepScheduler {
    refuseUnsupported('UniPCMultistepScheduler', json, UNIPC_UNSUPPORTED);
    return new UniPCMultistepScheduler({
      ...optionsFromConfig<UniPCMultistepSchedulerOptions>(json, UNIPC_CONFIG_KEYS, 'UniPCMultistepScheduler'),
      ...extra,
    });
  }

  toConfig(): Record<string, unknown> {
    const c = this.commonConfigWithoutClip();
    return {
      _class_name: 'UniPCMultistepScheduler',
      ...c,
      solver_order: this.solverOrder,
      predict_x0: this.predictX0,
      solver_type: this.solverType,
      lower_order_final: this.lowerOrderFinal,
      disable_corrector: [...this.disableCorrector],
      solver_p: null,
      use_karras_sigmas: this.useKarrasSigmas,
      final_sigmas_type: this.finalSigmasType,
      thresholding: false,
      use_exponential_sigmas: false,
      use_beta_sigmas: false,
      use_flow_sigmas: false,
      rescale_betas_zero_snr: false,
    };
  }

  /** As DPM-Solver's (n + 1 points, last dropped); with Karras the final σ for sigma_min is the last
   * Karras σ (diffusers' UniPC differs from its DPM-Solver there). */
  setTimesteps(n: number): void {
    const T = this.numTrainTimesteps;
    let ts = solverTimesteps(this.timestepSpacing, T, n, this.stepsOffset);
    let sig: number[];
    let last: number;
    if (this.useKarrasSigmas) {
      const ks = karrasSigmas(this.sigmaTable[0], this.sigmaTable[T - 1], n);
      ts = Array.from(ks, (s) => roundHalfEven(sigmaToT(s, this.logSigmaTable)));
      sig = Array.from(ks, Math.fround);
      last = sig[sig.length - 1];
    } else {
      sig = ts.map((t) => this.sigmaTable[t]);
      last = this.sigmaTable[0];
    }
    this.timesteps = ts;
    this.sigmas = [...sig, this.finalSigmasType === 'zero' ? 0 : last];
    this.numInferenceSteps = ts.length;
    this.resetState();
  }

  protected resetState(): void {
    super.resetState();
    this.history = [];
    this.lastSample = null;
    this.lowerOrderNums = 0;
    this.thisOrder = null;
    this.lastOrders = null;
  }

  protected hasHistory(): boolean {
    return this.history.length > 0;
  }

  /** The sample the last predictor started from: the corrected incoming sample (from step 1 on). */
  get correctedSample(): Tensor | null {
    return this.lastSample;
  }

  /**
   * The B(h)-weighted update shared by UniP and UniC, as coefficients: x_t = a·x + Σ c_j·m_j (+ c_t·m_t).
   * `rs` are r_1 … r_{p−1}; `rhos` the ρ's; `withMt`: the corrector's extra term ρ_last·(m_t − m0).
   */
  private update(
    sigmaT: number,
    sigmaS0: number,
    h: number,
    rs: number[],
    rhos: number[],
    withMt: boolean,
  ): { a: number; coef: Combo } {
    const { alpha: alphaT, sigmaT: sT } = alphaSigma(sigmaT);
    const { alpha: alphaS0, sigmaT: sS0 } = alphaSigma(sigmaS0);
    const hh = this.predictX0 ? -h : h;
    const hPhi1 = Math.expm1(hh); // h·φ_1(h) = e^h − 1
    const Bh = this.solverType === 'bh1' ? hh : Math.expm1(hh);
    const scale = this.predictX0 ? alphaT : sT; // α_t for x̂_0, σ_t for ε̂
    const a = this.predictX0 ? sT / sS0 : alphaT / alphaS0;
    const k = rs.length + 1 + (withMt ? 1 : 0); // m0, m1 … m_{p−1}, [m_t]
    const m = (j: number) => combo.unit(j, k);
    let res = combo.scale(m(0), 0);
    rs.forEach((r, j) => {
      const Dk = combo.scale(combo.sub(m(j + 1), m(0)), 1 / r);
      res = combo.add(res, combo.scale(Dk, rhos[j]));
    });
    if (withMt) res = combo.add(res, combo.scale(combo.sub(m(k - 1), m(0)), rhos[rhos.length - 1]));
    // Order-1 predictor: no B(h) term at all. (diffusers multiplies B(h) by a zero residual, which is NaN
    // for bh1 on the last step, where σ = 0 makes B(h) = hh = −∞; we leave the term out.)
    if (rs.length === 0 && !withMt) return { a, coef: combo.scale(m(0), -scale * hPhi1) };
    const coef = combo.sub(combo.scale(m(0), -scale * hPhi1), combo.scale(res, scale * Bh));
    return { a, coef };
  }

  /** ρ for order p (eq. 7): R_jk = r_k^(j−1), b_j from the φ recursion; `full`: the corrector's p×p
   * system, else the predictor's (p−1)×(p−1). */
  private rhos(h: number, rs: number[], p: number, full: boolean): number[] {
    const hh = this.predictX0 ? -h : h;
    const hPhi1 = Math.expm1(hh);
    let hPhiK = hPhi1 / hh - 1;
    let factorial = 1;
    const Bh = this.solverType === 'bh1' ? hh : Math.expm1(hh);
    const rks = [...rs, 1];
    const R: number[][] = [];
    const b: number[] = [];
    for (let i = 1; i <= p; i++) {
      R.push(rks.map((r) => r ** (i - 1)));
      b.push((hPhiK * factorial) / Bh);
      factorial *= i + 1;
      hPhiK = hPhiK / hh - 1 / factorial;
    }
    if (full) return p === 1 ? [0.5] : solve(R, b);
    if (p === 1) return [];
    if (p === 2) return [0.5];
    return solve(
      R.slice(0, p - 1).map((row) => row.slice(0, p - 1)),
      b.slice(0, p - 1),
    );
  }

  /**
   * One UniPC step: x̂_0 (or ε̂) from the model output; from step 1 on, UniC corrects the incoming sample
   * with it; then UniP predicts the next sample from the corrected one. UniPC adds no noise.
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: StepOptions = {}): SchedulerOutput {
    const who = 'UniPCMultistepScheduler.step';
    const { engine, N, D } = this.shapes(who, modelOutput, sample);
    const i = this.beginStep(who, timestep);
    const size = N * D;
    const out = this.solverOutputs(engine, size, opts.out);
    const useCorrector = i > 0 && !this.disableCorrector.includes(i - 1) && this.lastSample !== null;

    // 1. convert_model_output: m_t = x̂_0 (predict_x0) or ε̂, computed from the uncorrected sample.
    const names = ['ring0', 'ring1', 'ring2', 'ring3'].slice(0, this.solverOrder + 1);
    const mt = this.freeBuffer(engine, size, names, this.history);
    if (this.predictX0) {
      const { ax, am } = dataPrediction(this.predictionType, this.sigmas[i]);
      this.combine(engine, N, D, mt, { t: sample, coef: ax }, [{ t: modelOutput, coef: am }]);
    } else {
      const { ex, em } = noisePrediction(this.predictionType, this.sigmas[i]);
      this.combine(engine, N, D, mt, { t: sample, coef: ex }, [{ t: modelOutput, coef: em }]);
    }

    // 2. UniC: correct the incoming sample, starting again from last_sample with m_t (in place).
    const last = this.buffer(engine, size, 'lastSample', true);
    let correctorOrder: number | null = null;
    if (useCorrector) {
      const c = this.thisOrder!;
      correctorOrder = c;
      const lambdaT = lambdaOf(this.sigmas[i]);
      const lambdaS0 = lambdaOf(this.sigmas[i - 1]);
      const h = lambdaT - lambdaS0;
      const rs = Array.from({ length: c - 1 }, (_, k) => (lambdaOf(this.sigmas[i - (k + 2)]) - lambdaS0) / h);
      const rhos = this.rhos(h, rs, c, true);
      const { a, coef } = this.update(this.sigmas[i], this.sigmas[i - 1], h, rs, rhos, true);
      const hist = this.history;
      const terms = coef.map((cf, j) => ({ t: j < coef.length - 1 ? hist[hist.length - 1 - j] : mt, coef: cf }));
      this.combine(engine, N, D, last, { t: this.lastSample!, coef: a }, terms);
    } else {
      this.combine(engine, N, D, last, { t: sample, coef: 1 }, []);
    }
    this.lastSample = last;

    // 3. the history
    this.history.push(mt);
    if (this.history.length > this.solverOrder) this.history.shift();

    // 4. the predictor's order: warm-up, and lower_order_final (diffusers: min(order, steps left))
    const n = this.timesteps.length;
    const wanted = this.lowerOrderFinal ? Math.min(this.solverOrder, n - i) : this.solverOrder;
    const p = Math.min(wanted, this.lowerOrderNums + 1);
    this.thisOrder = p;

    // 5. UniP from the corrected sample
    const lambdaT = lambdaOf(this.sigmas[i + 1]);
    const lambdaS0 = lambdaOf(this.sigmas[i]);
    const h = lambdaT - lambdaS0;
    const rs = Array.from({ length: p - 1 }, (_, k) => (lambdaOf(this.sigmas[i - (k + 1)]) - lambdaS0) / h);
    const rhos = this.rhos(h, rs, p, false);
    const { a, coef } = this.update(this.sigmas[i + 1], this.sigmas[i], h, rs, rhos, false);
    const hist = this.history;
    this.combine(
      engine,
      N,
      D,
      out.prevSample,
      { t: last, coef: a },
      coef.map((cf, j) => ({ t: hist[hist.length - 1 - j], coef: cf })),
    );

    if (this.lowerOrderNums < this.solverOrder) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    this.lastOrders = { predictor: p, corrector: correctorOrder };
    if (opts.out?.predOriginalSample) this.combine(engine, N, D, out.predOriginalSample, { t: mt, coef: 1 }, []);
    return { prevSample: out.prevSample, predOriginalSample: opts.out?.predOriginalSample ?? mt };
  }

  protected stateValues(): Record<string, number | null> {
    return { lowerOrderNums: this.lowerOrderNums, thisOrder: this.thisOrder };
  }

  protected stateTensors(): Record<string, Tensor | null> {
    const h = this.history;
    const out: Record<string, Tensor | null> = { lastSample: this.lastSample };
    for (let j = 0; j < this.solverOrder; j++) out[`m${j}`] = h[h.length - 1 - j] ?? null;
    return out;
  }

  protected restoreState(values: Record<string, number | null>, tensors: Record<string, Tensor | null>): void {
    const who = 'UniPCMultistepScheduler.loadState';
    const lon = values.lowerOrderNums;
    if (lon === null || !Number.isInteger(lon) || lon < 0 || lon > this.solverOrder)
      throw new DdpmError(
        'FORMAT',
        `${who}: lowerOrderNums must be an integer in [0, ${this.solverOrder}], found ${show(lon)}`,
      );
    const to = values.thisOrder;
    if (to !== null && !(Number.isInteger(to) && to >= 1 && to <= this.solverOrder))
      throw new DdpmError(
        'FORMAT',
        `${who}: thisOrder must be null or an integer in [1, ${this.solverOrder}], found ${show(to)}`,
      );
    const hist: Tensor[] = [];
    for (let j = 0; j < this.solverOrder; j++) {
      const t = tensors[`m${j}`];
      if (!t) break;
      hist.unshift(t);
    }
    if (hist.length < lon)
      throw new DdpmError('FORMAT', `${who}: ${lon} steps taken need ${lon} history tensors m0…, found ${hist.length}`);
    if (lon > 0 !== (tensors.lastSample !== null) || lon > 0 !== (to !== null))
      throw new DdpmError(
        'FORMAT',
        `${who}: lastSample and thisOrder must be present exactly when steps were taken (lowerOrderNums ${lon})`,
      );
    this.history = hist;
    this.lastSample = tensors.lastSample;
    this.lowerOrderNums = lon;
    this.thisOrder = to;
  }
}
