// Schedules and variances against diffusers v0.32 (test/fixtures/diffusers/schedules.json; read its
// README: diffusers computes in float32, we in float64).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DDIMScheduler,
  DDPMScheduler,
  betaSchedule,
  makeSchedule,
  namedSchedule,
  type BetaScheduleName,
  type VarianceType,
} from '../src/diffusion/index.js';
import { errorOf } from './helpers/errors.js';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/diffusers/schedules.json', import.meta.url), 'utf8'));
const schedules = fixture.schedules as Record<
  string,
  {
    constructor_kwargs: { beta_schedule: BetaScheduleName; beta_start?: number; beta_end?: number };
    config: Record<string, unknown>;
    betas: number[];
    alphas: number[];
    alphas_cumprod: number[];
    get_variance: Record<string, number[]>;
    get_variance_after_set_timesteps_10: {
      timesteps: number[];
      prev_timesteps: number[];
      fixed_small: number[];
      fixed_large: number[];
    };
    numpy_float64_crosscheck: { betas: number[]; alphas_cumprod: number[] };
  }
>;
const tList: number[] = fixture.t_list;

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / Math.abs(b[i]));
  return w;
}

/**
 * Tolerance of a variance-like value v computed by diffusers in float32 from r = ᾱ_t/ᾱ_prev: its error is
 * about ulp(1)/2 = 6e-8 absolute through (1 − r), plus float32 ᾱ's own relative error (≤ 1.3e-5, the
 * fixture's float64 crosscheck) — so |Δ| ≤ 2e-5·|v| + 1.2e-7. A log of it: |Δ| ≤ 2e-5 + 1.2e-7/v.
 */
const tolVar = (v: number) => 2e-5 * Math.abs(v) + 1.2e-7;

describe('beta schedules (diffusers parity, T = 1000)', () => {
  for (const [name, s] of Object.entries(schedules)) {
    it(`${name}: betas, alphas, alphasCumprod`, () => {
      const k = s.constructor_kwargs;
      const sched = namedSchedule(k.beta_schedule, 1000, { betaStart: k.beta_start, betaEnd: k.beta_end });
      // Against the float64 crosscheck (same formulas, numpy float64): agreement to rounding.
      expect(maxRel(sched.betas, s.numpy_float64_crosscheck.betas)).toBeLessThan(1e-12);
      expect(maxRel(sched.alphasCumprod, s.numpy_float64_crosscheck.alphas_cumprod)).toBeLessThan(1e-12);
      // Against diffusers' float32 tensors: one float32 rounding for β and α (2^-24 relative, plus the
      // float32 linspace's own rounding), accumulated rounding in the float32 cumprod for ᾱ (README: ≤ 1.3e-5).
      expect(maxRel(sched.betas, s.betas)).toBeLessThan(5e-7);
      // α = 1 − β in float32 carries β's absolute rounding (6e-8): relative 6e-5 where α = 0.001 (cosine).
      for (let t = 0; t < 1000; t++) expect(Math.abs(sched.alphas[t] - s.alphas[t])).toBeLessThan(1.2e-7);
      expect(maxRel(sched.alphasCumprod, s.alphas_cumprod)).toBeLessThan(2e-5);
    });

    it(`${name}: getVariance for every variance type and t, fresh and after setTimesteps(10)`, () => {
      const sch = DDPMScheduler.fromConfig(s.config);
      for (const [vt, values] of Object.entries(s.get_variance)) {
        tList.forEach((t, i) => {
          const got = sch.getVariance(t, { varianceType: vt as VarianceType });
          const want = values[i];
          // fixed_small_log is a std s = sqrt(v): |Δs| ≈ |Δv|/(2s); fixed_large_log a log: |Δ| ≈ |Δv|/v.
          // At t = 0 β̃ = 0 and diffusers returns its clamp 1e-20 (as a float32), not a difference.
          const clamped = t === 0 && (vt === 'fixed_small' || vt === 'fixed_small_log');
          const tol = clamped
            ? 1e-6 * want
            : vt === 'fixed_small_log'
              ? 2e-5 * want + 1.2e-7 / (2 * want)
              : vt === 'fixed_large_log'
                ? 2e-5 + 1.2e-7 / Math.exp(want)
                : tolVar(want);
          expect(Math.abs(got - want), `${vt} t=${t}: ${got} vs ${want}`).toBeLessThanOrEqual(tol);
        });
      }
      const after = s.get_variance_after_set_timesteps_10;
      sch.setTimesteps(10);
      expect(sch.timesteps).toEqual(after.timesteps);
      after.timesteps.forEach((t, i) => {
        expect(sch.previousTimestep(t)).toBe(after.prev_timesteps[i]);
        for (const vt of ['fixed_small', 'fixed_large'] as const) {
          const want = after[vt][i];
          expect(Math.abs(sch.getVariance(t, { varianceType: vt }) - want), `${vt} t=${t}`).toBeLessThanOrEqual(
            tolVar(want),
          );
        }
      });
    });
  }

  it('the cosine schedule caps β at 0.999 and the sigmoid one stays inside [betaStart, betaEnd]', () => {
    const cos = betaSchedule('squaredcos_cap_v2', 1000);
    expect(cos[999]).toBe(0.999);
    expect(Math.max(...cos)).toBe(0.999);
    const sig = betaSchedule('sigmoid', 50, { betaStart: 0.001, betaEnd: 0.03 });
    expect(Math.min(...sig)).toBeGreaterThan(0.001);
    expect(Math.max(...sig)).toBeLessThan(0.03);
  });

  it('works for any T, including 1 and 2', () => {
    for (const T of [1, 2, 3, 17]) {
      for (const name of ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'] as const) {
        const s = namedSchedule(name, T, { betaStart: 0.01, betaEnd: 0.2 });
        expect(s.T).toBe(T);
        expect(s.betas.length).toBe(T);
        expect(s.posteriorLogVarianceClipped.every(Number.isFinite)).toBe(true);
      }
    }
    expect(namedSchedule('linear', 1, { betaStart: 0.01 }).betas[0]).toBe(0.01);
  });
});

describe('derived coefficients', () => {
  it('posterior mean and variance equal Gaussian conditioning of x_{t-1} | x_0 and x_t | x_{t-1}', () => {
    // x_{t−1} | x_0 ~ N(sqrt(ᾱ_{t−1}) x_0, 1 − ᾱ_{t−1}); x_t | x_{t−1} ~ N(sqrt(α_t) x_{t−1}, β_t). By Bayes,
    // the posterior precision is 1/(1 − ᾱ_{t−1}) + α_t/β_t and the mean is precision-weighted.
    const s = namedSchedule('squaredcos_cap_v2', 200);
    for (const t of [1, 2, 50, 199]) {
      const vPrior = 1 - s.alphasCumprod[t - 1];
      const prec = 1 / vPrior + s.alphas[t] / s.betas[t];
      const v = 1 / prec;
      expect(s.posteriorVariance[t]).toBeCloseTo(v, 14);
      expect(Math.abs(s.posteriorMeanCoef1[t] - (v * Math.sqrt(s.alphasCumprod[t - 1])) / vPrior)).toBeLessThan(1e-12);
      expect(Math.abs(s.posteriorMeanCoef2[t] - (v * Math.sqrt(s.alphas[t])) / s.betas[t])).toBeLessThan(1e-12);
      expect(s.posteriorLogVarianceClipped[t]).toBeCloseTo(Math.log(v), 10);
    }
    // t = 0: x_0 is known, the posterior is a point: variance 0, mean x_0; the log is clipped to t = 1's.
    expect(s.posteriorVariance[0]).toBe(0);
    expect(s.posteriorMeanCoef1[0]).toBeCloseTo(1, 14);
    expect(s.posteriorMeanCoef2[0]).toBe(0);
    expect(s.posteriorLogVarianceClipped[0]).toBe(s.posteriorLogVarianceClipped[1]);
    // q(x_t | x_0) has unit total variance: ᾱ + (1 − ᾱ) = 1, and x_0 = sqrt(1/ᾱ)·x_t − sqrt(1/ᾱ − 1)·ε inverts it.
    for (const t of [0, 100, 199]) {
      expect(s.sqrtAlphasCumprod[t] ** 2 + s.sqrtOneMinusAlphasCumprod[t] ** 2).toBeCloseTo(1, 14);
      expect(s.sqrtRecipAlphasCumprod[t] * s.sqrtAlphasCumprod[t]).toBeCloseTo(1, 14);
      expect(s.sqrtRecipm1AlphasCumprod[t] * s.sqrtAlphasCumprod[t]).toBeCloseTo(s.sqrtOneMinusAlphasCumprod[t], 14);
      expect(Math.exp(s.logOneMinusAlphasCumprod[t])).toBeCloseTo(1 - s.alphasCumprod[t], 14);
    }
  });
});

describe('invalid schedules', () => {
  it('are INVALID_SCHEDULE errors naming the index and value', () => {
    const cases: [ArrayLike<number>, RegExp][] = [
      [[0.1, 0, 0.2], /betas\[1\] must be in \(0, 1\), found 0/],
      [[0.1, 0.2, 1], /betas\[2\] must be in \(0, 1\), found 1/],
      [[-0.1], /betas\[0\] must be in \(0, 1\), found -0.1/],
      [[0.1, NaN], /betas\[1\] must be a finite number, found NaN/],
      [[0.1, Infinity], /betas\[1\] must be a finite number, found Infinity/],
      [[0.1, 1e-17], /strictly decreasing and positive: at t = 1 \(beta 1e-17\)/],
      [new Array(2000).fill(0.9999), /at t = \d+ .* to 0/],
      [[], /at least one beta/],
    ];
    for (const [betas, msg] of cases) {
      const e = errorOf(() => makeSchedule(betas));
      expect(e.code).toBe('INVALID_SCHEDULE');
      expect(e.message).toMatch(msg);
    }
    expect(errorOf(() => new DDPMScheduler({ numTrainTimesteps: 3, trainedBetas: [0.1, 0.2] })).message).toMatch(
      /trained_betas has 2 values, num_train_timesteps is 3/,
    );
    expect(errorOf(() => new DDPMScheduler({ betaSchedule: 'cosine' as BetaScheduleName })).code).toBe(
      'INVALID_SCHEDULE',
    );
    expect(errorOf(() => new DDPMScheduler({ betaStart: 0, betaEnd: 0.02 })).message).toMatch(
      /betas\[0\] must be in \(0, 1\), found 0/,
    );
    expect(errorOf(() => namedSchedule('linear', 0)).code).toBe('INVALID_SCHEDULE');
  });

  it('accepts user-given betas through trained_betas', () => {
    const betas = [0.1, 0.2, 0.3];
    const s = DDPMScheduler.fromConfig({ num_train_timesteps: 3, trained_betas: betas });
    expect(Array.from(s.schedule.betas)).toEqual(betas);
    expect(s.schedule.alphasCumprod[2]).toBeCloseTo(0.9 * 0.8 * 0.7, 15);
    expect(s.toConfig().trained_betas).toEqual(betas);
  });
});

describe('inference timesteps', () => {
  // Pinned from numpy 2.4 running diffusers' set_timesteps expressions (T = 1000 unless noted).
  const pinned: Record<string, Record<number, number[]>> = {
    leading: { 1: [0], 3: [666, 333, 0], 7: [852, 710, 568, 426, 284, 142, 0] },
    trailing: {
      1: [999],
      3: [999, 666, 332],
      7: [999, 856, 713, 570, 428, 285, 142],
      13: [999, 922, 845, 768, 691, 614, 537, 461, 384, 307, 230, 153, 76],
    },
    linspace: {
      1: [0],
      3: [999, 500, 0],
      7: [999, 832, 666, 500, 333, 166, 0],
      13: [999, 916, 832, 749, 666, 583, 500, 416, 333, 250, 166, 83, 0],
    },
  };
  it('match diffusers for leading, trailing and linspace spacing (both schedulers)', () => {
    for (const [spacing, byN] of Object.entries(pinned)) {
      for (const [n, want] of Object.entries(byN)) {
        for (const S of [DDPMScheduler, DDIMScheduler]) {
          const s = new S({ timestepSpacing: spacing as 'leading' });
          s.setTimesteps(Number(n));
          expect(s.timesteps, `${S.name} ${spacing} ${n}`).toEqual(want);
        }
      }
    }
    // Ties round half to even (T = 10, n = 4: 10 − 2.5 i = 10, 7.5, 5, 2.5 → 10, 8, 4, 2, minus 1).
    const t10 = new DDPMScheduler({ numTrainTimesteps: 10, timestepSpacing: 'trailing' });
    t10.setTimesteps(4);
    expect(t10.timesteps).toEqual([9, 7, 4, 1]);
    const t4000 = new DDPMScheduler({ numTrainTimesteps: 4000, timestepSpacing: 'trailing' });
    t4000.setTimesteps(7);
    expect(t4000.timesteps).toEqual([3999, 3428, 2856, 2285, 1713, 1142, 570]);
    // numpy gives 62 values for n = 61 (the last −1); we keep 61, equal to numpy's first 61.
    const t61 = new DDPMScheduler({ timestepSpacing: 'trailing' });
    t61.setTimesteps(61);
    expect(t61.timesteps.length).toBe(61);
    expect(t61.timesteps.slice(-2)).toEqual([32, 15]);
    // leading + steps_offset
    const off = new DDIMScheduler({ stepsOffset: 1 });
    off.setTimesteps(4);
    expect(off.timesteps).toEqual([751, 501, 251, 1]);
  });

  it('rejects step counts outside [1, T] and spacings that leave [0, T)', () => {
    const s = new DDPMScheduler({ numTrainTimesteps: 100 });
    for (const n of [0, 101, 2.5, -1, NaN]) {
      const e = errorOf(() => s.setTimesteps(n));
      expect(e.code).toBe('INVALID_TIMESTEP');
      expect(e.message).toMatch(/numInferenceSteps must be an integer in \[1, 100\]/);
    }
    const off = new DDPMScheduler({ numTrainTimesteps: 100, stepsOffset: 1 });
    expect(errorOf(() => off.setTimesteps(100)).message).toMatch(/gives timestep 100, outside \[0, 100\)/);
    expect(errorOf(() => s.setTimesteps({ timesteps: [50, 50, 10] })).message).toMatch(
      /strictly decreasing: timesteps\[2\] = 10 follows 50|strictly decreasing: timesteps\[1\] = 50 follows 50/,
    );
    expect(errorOf(() => s.setTimesteps({ timesteps: [100, 10] })).code).toBe('INVALID_TIMESTEP');
    s.setTimesteps({ timesteps: [90, 40, 5] });
    expect(s.previousTimestep(40)).toBe(5);
    expect(s.previousTimestep(5)).toBe(-1);
    expect(errorOf(() => s.previousTimestep(41)).message).toMatch(
      /timestep 41 is not one of the 3 inference timesteps/,
    );
  });
});

describe('fromConfig', () => {
  it("reads diffusers keys, ignores _-keys and other schedulers' keys, refuses unsupported math", () => {
    const cfg = {
      _class_name: 'DDPMScheduler',
      _diffusers_version: '0.32.2',
      num_train_timesteps: 500,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      beta_end: 0.012,
      variance_type: 'fixed_large',
      prediction_type: 'v_prediction',
      clip_sample: false,
      clip_sample_range: 2,
      timestep_spacing: 'trailing',
      steps_offset: 1,
      thresholding: false,
      dynamic_thresholding_ratio: 0.995,
      sample_max_value: 1,
      rescale_betas_zero_snr: false,
      set_alpha_to_one: false,
      trained_betas: null,
    };
    const s = DDPMScheduler.fromConfig(cfg);
    expect([
      s.numTrainTimesteps,
      s.betaSchedule,
      s.varianceType,
      s.predictionType,
      s.clipSample,
      s.clipSampleRange,
      s.timestepSpacing,
      s.stepsOffset,
    ]).toEqual([500, 'scaled_linear', 'fixed_large', 'v_prediction', false, 2, 'trailing', 1]);
    const back = DDPMScheduler.fromConfig(s.toConfig());
    expect(back.toConfig()).toEqual(s.toConfig());
    const d = DDIMScheduler.fromConfig({ ...cfg, _class_name: 'DDIMScheduler' });
    expect(d.setAlphaToOne).toBe(false);
    expect(d.finalAlphaCumprod).toBe(d.schedule.alphasCumprod[0]);
    expect(errorOf(() => DDPMScheduler.fromConfig({ ...cfg, thresholding: true })).message).toMatch(
      /thresholding = true is not supported/,
    );
    expect(errorOf(() => DDIMScheduler.fromConfig({ rescale_betas_zero_snr: true })).message).toMatch(
      /rescale_betas_zero_snr/,
    );
    expect(errorOf(() => DDPMScheduler.fromConfig({ variance_type: 'fixed_medium' })).message).toMatch(
      /varianceType must be one of .*found "fixed_medium"/,
    );
    expect(errorOf(() => DDPMScheduler.fromConfig({ prediction_type: 'noise' })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => DDPMScheduler.fromConfig('{}')).code).toBe('FORMAT');
  });
});
