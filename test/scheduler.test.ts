// DDPMScheduler and DDIMScheduler steps: against diffusers v0.32's outputs (test/fixtures/diffusers/
// ddpm_step.json), against a float64 transliteration of diffusers' step() for what the fixtures do not
// cover (learned variances, DDIM), and the forward process.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, kernels, type Tensor } from '../src/index.js';
import {
  DDIMScheduler,
  DDPMScheduler,
  addNoise,
  predictStartFromNoise,
  qPosterior,
  type DDIMSchedulerOptions,
  type DDPMSchedulerOptions,
} from '../src/diffusion/index.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { errorOf } from './helpers/errors.js';

interface Json {
  shape: number[];
  data: number[];
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/diffusers/ddpm_step.json', import.meta.url), 'utf8'));
const f32 = (t: Json) => Float32Array.from(t.data);

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 2 });
});
afterAll(() => engine?.dispose());

/**
 * Largest |got − want| / (|want| + 1): diffusers works in float32, we in float64 with one rounding to f32
 * per coefficient; the README puts the difference at ~1e-5 relative, ~1e-4 near t = 1 (where
 * 1 − ᾱ_t/ᾱ_prev loses digits in float32). Values here are O(1), so the +1 makes it an absolute bound for
 * small values.
 */
function err(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let w = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + 1);
    w = Number.isNaN(e) ? Infinity : Math.max(w, e);
  }
  return w;
}

function tensor(data: Float32Array, shape: number[], name: string): Tensor {
  return engine.upload(data, shape, name);
}

describe('DDPMScheduler.step vs diffusers (every case of ddpm_step.json)', () => {
  it('single steps: every schedule, prediction type, clip setting, variance type, t ∈ {999, 500, 1, 0}', () => {
    let worst = 0,
      worstNearOne = 0;
    for (const c of fx.cases) {
      const mark = engine.arena.mark();
      const inp = fx.inputs[c.input];
      const shape = inp.sample.shape;
      const s = DDPMScheduler.fromConfig(
        {
          num_train_timesteps: 1000,
          ...fx.schedule_kwargs[c.beta_schedule],
          variance_type: c.variance_type,
          prediction_type: c.prediction_type,
          clip_sample: c.clip_sample,
        },
        { engine },
      );
      expect(s.previousTimestep(c.t)).toBe(c.prev_t);
      const out = s.step(tensor(f32(inp.model_output), shape, 'm'), c.t, tensor(f32(inp.sample), shape, 'x'), {
        noise: tensor(f32(inp.noise), shape, 'z'),
      });
      const ep = err(engine.read(out.prevSample), c.prev_sample.data);
      const e0 = err(engine.read(out.predOriginalSample), c.pred_original_sample.data);
      const e = Math.max(ep, e0);
      if (c.t === 1) worstNearOne = Math.max(worstNearOne, e);
      else worst = Math.max(worst, e);
      // At t = 1 diffusers' float32 1 − ᾱ_1/ᾱ_0 carries ~6e-8 absolute error against 1 − ᾱ_1 = 2.2e-4
      // (linear), so its x̂_0 coefficient is off by up to ~3e-4 relative; elsewhere the README's ~1e-5.
      expect(
        e,
        `${c.input} ${c.beta_schedule} ${c.variance_type} ${c.prediction_type} clip=${c.clip_sample} t=${c.t}`,
      ).toBeLessThan(c.t === 1 ? 4e-4 : 2e-5);
      engine.arena.release(mark);
    }
    expect(worst).toBeGreaterThan(0); // float64 vs float32: equality would mean we compared the wrong things
  });

  it('10-step loops (leading, trailing, linspace; clip on/off) with the dummy model ε = 0.1·x', () => {
    for (const loop of fx.loops) {
      const s = DDPMScheduler.fromConfig(loop.config, { engine });
      s.setTimesteps(loop.num_inference_steps);
      expect(s.timesteps).toEqual(loop.timesteps);
      const shape = fx.x_T.shape;
      const x = tensor(f32(fx.x_T), shape, 'x');
      const eps = engine.alloc(shape, 'eps');
      const noise = engine.alloc(shape, 'noise');
      loop.steps.forEach(
        (st: {
          i: number;
          t: number;
          prev_t: number;
          noise_index: number;
          prev_sample: Json;
          pred_original_sample: Json;
        }) => {
          expect(s.timesteps[st.i]).toBe(st.t);
          expect(s.previousTimestep(st.t)).toBe(st.prev_t);
          // torch: 0.1 * x with x float32 multiplies in float32
          engine.write(
            eps,
            engine.read(x).map((v) => Math.fround(Math.fround(0.1) * v)),
          );
          engine.write(noise, f32(fx.loop_noises[st.noise_index]));
          const out = s.step(eps, st.t, x, { noise, out: { prevSample: x } });
          const e = Math.max(
            err(engine.read(out.prevSample), st.prev_sample.data),
            err(engine.read(out.predOriginalSample), st.pred_original_sample.data),
          );
          expect(e, `${loop.timestep_spacing} clip=${loop.clip_sample} step ${st.i} t=${st.t}`).toBeLessThan(1e-4);
        },
      );
      expect(err(engine.read(x), loop.final_sample.data)).toBeLessThan(1e-4);
    }
  });
});

// ---- A float64 transliteration of diffusers v0.32 step() (scheduling_ddpm.py / scheduling_ddim.py), per
// element, as an independent oracle for what the fixtures do not cover. ----

function ddpmRef(
  o: DDPMSchedulerOptions,
  acp: Float64Array,
  prevT: number,
  t: number,
  m: Float32Array,
  x: Float32Array,
  z: Float32Array,
) {
  const C = x.length; // one sample, D = C
  const a = acp[t],
    ap = prevT >= 0 ? acp[prevT] : 1;
  const bt = 1 - a,
    bp = 1 - ap,
    curA = a / ap,
    curB = 1 - curA;
  const prev = new Float64Array(C),
    x0 = new Float64Array(C);
  for (let i = 0; i < C; i++) {
    const mv = m[i];
    let p =
      o.predictionType === 'epsilon'
        ? (x[i] - Math.sqrt(bt) * mv) / Math.sqrt(a)
        : o.predictionType === 'sample'
          ? mv
          : Math.sqrt(a) * x[i] - Math.sqrt(bt) * mv;
    if (o.clipSample) p = Math.min(Math.max(p, -(o.clipSampleRange ?? 1)), o.clipSampleRange ?? 1);
    x0[i] = p;
    let y = ((Math.sqrt(ap) * curB) / bt) * p + ((Math.sqrt(curA) * bp) / bt) * x[i];
    if (t > 0) {
      const v = m[C + i]; // predicted variance channel
      const variance = Math.max((bp / bt) * curB, 1e-20);
      const frac = (v + 1) / 2;
      const std =
        o.varianceType === 'learned'
          ? Math.sqrt(v)
          : Math.exp(0.5 * (frac * Math.log(curB) + (1 - frac) * Math.log(variance)));
      y += std * z[i];
    }
    prev[i] = y;
  }
  return { prev, x0 };
}

function ddimRef(
  o: DDIMSchedulerOptions,
  acp: Float64Array,
  T: number,
  n: number,
  t: number,
  m: Float32Array,
  x: Float32Array,
  z: Float32Array,
  eta: number,
  useClipped: boolean,
) {
  const prevT = t - Math.floor(T / n);
  const a = acp[t],
    ap = prevT >= 0 ? acp[prevT] : o.setAlphaToOne === false ? acp[0] : 1;
  const bt = 1 - a;
  const prev = new Float64Array(x.length),
    x0 = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const mv = m[i];
    let p: number, e: number;
    if (o.predictionType === 'epsilon') [p, e] = [(x[i] - Math.sqrt(bt) * mv) / Math.sqrt(a), mv];
    else if (o.predictionType === 'sample') [p, e] = [mv, (x[i] - Math.sqrt(a) * mv) / Math.sqrt(bt)];
    else [p, e] = [Math.sqrt(a) * x[i] - Math.sqrt(bt) * mv, Math.sqrt(a) * mv + Math.sqrt(bt) * x[i]];
    if (o.clipSample !== false) p = Math.min(Math.max(p, -(o.clipSampleRange ?? 1)), o.clipSampleRange ?? 1);
    x0[i] = p;
    const variance = ((1 - ap) / (1 - a)) * (1 - a / ap);
    const std = eta * Math.sqrt(variance);
    if (useClipped) e = (x[i] - Math.sqrt(a) * p) / Math.sqrt(bt);
    prev[i] = Math.sqrt(ap) * p + Math.sqrt(1 - ap - std * std) * e + (eta > 0 ? std * z[i] : 0);
  }
  return { prev, x0 };
}

describe('DDPMScheduler learned variances (vs a float64 transliteration of diffusers)', () => {
  it('learned and learned_range split 2C-channel model outputs and use the variance per element', () => {
    const D = 48; // one sample (1, 3, 4, 4) with model output (1, 6, 4, 4)
    for (const varianceType of ['learned', 'learned_range'] as const) {
      for (const predictionType of ['epsilon', 'v_prediction'] as const) {
        for (const t of [999, 500, 3, 0]) {
          const mark = engine.arena.mark();
          const o: DDPMSchedulerOptions = {
            varianceType,
            predictionType,
            clipSample: true,
            betaSchedule: 'squaredcos_cap_v2',
            engine,
          };
          const s = new DDPMScheduler(o);
          const m = randomF32(2 * D, t + 1);
          if (varianceType === 'learned') for (let i = D; i < 2 * D; i++) m[i] = 0.001 + 0.01 * Math.abs(m[i]); // a variance
          const x = randomF32(D, t + 2).map((v) => 2 * v);
          const z = randomF32(D, t + 3);
          const out = s.step(tensor(m, [1, 6, 4, 4], 'm'), t, tensor(x, [1, 3, 4, 4], 'x'), {
            noise: tensor(z, [1, 3, 4, 4], 'z'),
          });
          const ref = ddpmRef(o, s.schedule.alphasCumprod, t - 1, t, m, x, z);
          expect(err(engine.read(out.prevSample), ref.prev), `${varianceType} ${predictionType} t=${t}`).toBeLessThan(
            1e-5,
          );
          expect(err(engine.read(out.predOriginalSample), ref.x0)).toBeLessThan(1e-5);
          engine.arena.release(mark);
        }
      }
    }
  });

  it('fixed_large_log adds noise with σ = sqrt(β) (diffusers computes log(β)^½, a NaN), like fixed_large', () => {
    const D = 16;
    const m = tensor(randomF32(D, 1), [1, D], 'm'),
      x = tensor(randomF32(D, 2), [1, D], 'x'),
      z = tensor(randomF32(D, 3), [1, D], 'z');
    const a = engine.read(
      new DDPMScheduler({ varianceType: 'fixed_large', engine }).step(m, 400, x, { noise: z }).prevSample,
    );
    const b = engine.read(
      new DDPMScheduler({ varianceType: 'fixed_large_log', engine }).step(m, 400, x, { noise: z }).prevSample,
    );
    expect(err(b, a)).toBeLessThan(1e-6);
  });
});

describe('DDIMScheduler.step', () => {
  it('matches a float64 transliteration of diffusers for η ∈ {0, 0.5, 1}, every prediction type, clipped ε, final ᾱ', () => {
    const N = 2,
      D = 27;
    for (const predictionType of ['epsilon', 'sample', 'v_prediction'] as const) {
      for (const [eta, useClipped, setAlphaToOne, spacing] of [
        [0, false, true, 'leading'],
        [0.5, true, false, 'trailing'],
        [1, false, true, 'linspace'],
        [0, true, false, 'leading'],
      ] as const) {
        const o: DDIMSchedulerOptions = {
          predictionType,
          setAlphaToOne,
          timestepSpacing: spacing,
          betaSchedule: 'scaled_linear',
          betaStart: 0.00085,
          betaEnd: 0.012,
          engine,
        };
        const s = new DDIMScheduler(o);
        s.setTimesteps(7);
        for (const t of [s.timesteps[0], s.timesteps[3], s.timesteps[6]]) {
          const m = randomF32(N * D, t),
            x = randomF32(N * D, t + 1).map((v) => 1.5 * v),
            z = randomF32(N * D, t + 2);
          const out = s.step(tensor(m, [N, 3, 3, 3], 'm'), t, tensor(x, [N, 3, 3, 3], 'x'), {
            noise: tensor(z, [N, 3, 3, 3], 'z'),
            eta,
            useClippedModelOutput: useClipped,
          });
          const ref = ddimRef(o, s.schedule.alphasCumprod, 1000, 7, t, m, x, z, eta, useClipped);
          const what = `${predictionType} eta=${eta} clipped=${useClipped} ${spacing} t=${t}`;
          expect(err(engine.read(out.prevSample), ref.prev), what).toBeLessThan(2e-6);
          expect(err(engine.read(out.predOriginalSample), ref.x0), what).toBeLessThan(2e-6);
        }
      }
    }
  });

  it('with η = 1 and no clipping equals DDPM fixed_small on the same noise (Song et al., eq. 16)', () => {
    const ddpm = DDPMScheduler.fromConfig({ clip_sample: false }, { engine });
    const ddim = DDIMScheduler.fromConfig({ clip_sample: false }, { engine });
    ddpm.setTimesteps(10);
    ddim.setTimesteps(10);
    const inp = fx.inputs.A;
    const shape = inp.sample.shape;
    const m = tensor(f32(inp.model_output), shape, 'm'),
      x = tensor(f32(inp.sample), shape, 'x'),
      z = tensor(f32(inp.noise), shape, 'z');
    for (const t of [900, 500, 100]) {
      const a = engine.read(ddpm.step(m, t, x, { noise: z }).prevSample);
      const b = engine.read(ddim.step(m, t, x, { noise: z, eta: 1 }).prevSample);
      expect(err(b, a), `t=${t}`).toBeLessThan(1e-5);
    }
  });

  it('with η = 0 needs no noise and is deterministic; refuses η that makes the direction imaginary', () => {
    const s = new DDIMScheduler({ engine });
    const m = tensor(randomF32(8, 1), [2, 4], 'm'),
      x = tensor(randomF32(8, 2), [2, 4], 'x');
    expect(errorOf(() => s.step(m, 500, x)).message).toMatch(/call setTimesteps/);
    s.setTimesteps(20);
    const a = engine.read(s.step(m, 500, x).prevSample);
    const b = engine.read(s.step(m, 500, x).prevSample);
    expect(sameBits(a, b)).toBe(true);
    expect(errorOf(() => s.step(m, 500, x, { eta: 0.5 })).message).toMatch(
      /adds noise: give \{ seed \} or \{ noise \}/,
    );
    expect(errorOf(() => s.step(m, 950, x, { eta: 50, seed: 1 })).message).toMatch(/eta 50 is too large at t = 950/);
    expect(errorOf(() => s.step(m, 500, x, { eta: -1 })).message).toMatch(/eta must be a finite number >= 0/);
  });
});

describe('noise, timesteps and shapes', () => {
  it('{ seed } draws z at (seed, stream t, offset + n·D): sample n does not depend on the batch', () => {
    const s = new DDPMScheduler({ engine });
    const N = 3,
      D = 21;
    const m = tensor(randomF32(N * D, 4), [N, D], 'm'),
      x = tensor(randomF32(N * D, 5), [N, D], 'x');
    const seeded = engine.read(s.step(m, 700, x, { seed: 42n, offset: 5 }).prevSample);
    const z = engine.alloc([N, D], 'z');
    kernels.randn(engine, z, N * D, { seed: 42n, stream: 700, offset: 5 });
    expect(sameBits(seeded, engine.read(s.step(m, 700, x, { noise: z }).prevSample))).toBe(true);
    // sample 2 alone, offset 5 + 2·D
    const m2 = { ...m, ptr: m.ptr + 2 * D * 4, size: D, shape: [1, D] },
      x2 = { ...x, ptr: x.ptr + 2 * D * 4, size: D, shape: [1, D] };
    const one = engine.read(s.step(m2, 700, x2, { seed: 42n, offset: 5 + 2 * D }).prevSample);
    expect(sameBits(one, seeded.subarray(2 * D))).toBe(true);
    // no noise at t = 0: seed not needed
    expect(() => s.step(m, 0, x)).not.toThrow();
    expect(errorOf(() => s.step(m, 1, x)).message).toMatch(/step at t = 1 adds noise/);
  });

  it('rejects bad timesteps and shapes before any kernel runs', () => {
    const s = new DDPMScheduler({ engine, numTrainTimesteps: 100 });
    const m = tensor(randomF32(8, 1), [2, 4], 'm'),
      x = tensor(randomF32(8, 2), [2, 4], 'x');
    for (const t of [100, -1, 1.5, NaN]) {
      const e = errorOf(() => s.step(m, t, x, { seed: 1 }));
      expect(e.code).toBe('INVALID_TIMESTEP');
      expect(e.message).toMatch(/timestep must be an integer in \[0, 100\)/);
    }
    s.setTimesteps(10);
    expect(errorOf(() => s.step(m, 95, x, { seed: 1 })).message).toMatch(
      /timestep 95 is not one of the 10 inference timesteps/,
    );
    const m3 = tensor(randomF32(9, 1), [9], 'm3');
    expect(errorOf(() => s.step(m3, 90, x, { seed: 1 })).message).toMatch(
      /modelOutput \(tensor m3, \[9\]\) must hold as many values as sample \[2,4\]/,
    );
    const learned = new DDPMScheduler({ engine, numTrainTimesteps: 100, varianceType: 'learned_range' });
    expect(errorOf(() => learned.step(m, 50, x, { seed: 1 })).message).toMatch(/twice as many values/);
    expect(errorOf(() => new DDPMScheduler().step(m, 5, x, { seed: 1 })).message).toMatch(/no engine/);
    expect(errorOf(() => s.step(m, 90, x, { seed: -3 })).message).toMatch(/seed must be a non-negative/);
  });

  it('reuses its output buffers: a 50-step loop allocates nothing after the first step', () => {
    const s = new DDPMScheduler({ engine });
    s.setTimesteps(50);
    const x = tensor(randomF32(64, 1), [1, 64], 'x');
    const m = engine.alloc([1, 64], 'm');
    let cur = x;
    let used = 0;
    s.timesteps.forEach((t, i) => {
      engine.write(
        m,
        engine.read(cur).map((v) => 0.1 * v),
      );
      cur = s.step(m, t, cur, { seed: 3 }).prevSample;
      if (i === 0) used = engine.arena.used;
      else expect(engine.arena.used).toBe(used);
    });
    expect(engine.read(cur).every(Number.isFinite)).toBe(true);
  });
});

describe('forward process', () => {
  it('addNoise = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε per sample; drawn ε is written out', () => {
    const s = new DDPMScheduler({ engine, betaSchedule: 'squaredcos_cap_v2' });
    const N = 4,
      D = 19,
      ts = [0, 10, 500, 999];
    const x0 = randomF32(N * D, 1),
      eps = randomF32(N * D, 2);
    const out = engine.alloc([N, D], 'xt');
    s.addNoise(tensor(x0, [N, D], 'x0'), tensor(eps, [N, D], 'eps'), ts, { out });
    const got = engine.read(out);
    for (let i = 0; i < N * D; i++) {
      const t = ts[Math.floor(i / D)];
      const want = Math.sqrt(s.schedule.alphasCumprod[t]) * x0[i] + Math.sqrt(1 - s.schedule.alphasCumprod[t]) * eps[i];
      expect(Math.abs(got[i] - want)).toBeLessThan(3e-7 * (Math.abs(x0[i]) + Math.abs(eps[i])));
    }
    const drawn = engine.alloc([N, D], 'drawn');
    const out2 = engine.alloc([N, D], 'xt2');
    addNoise(engine, s.schedule, tensor(x0, [N, D], 'x0'), null, ts, {
      out: out2,
      random: { seed: 9, stream: 1 },
      noiseOut: drawn,
    });
    const z = engine.alloc([N, D], 'z');
    kernels.randn(engine, z, N * D, { seed: 9, stream: 1 });
    expect(sameBits(engine.read(drawn), engine.read(z))).toBe(true);
    expect(errorOf(() => s.addNoise(tensor(x0, [N, D], 'x0'), null, ts, { out })).message).toMatch(
      /give noise, or opts.random/,
    );
    expect(
      errorOf(() => s.addNoise(tensor(x0, [N, D], 'x0'), null, [0, 1, 2, 1000], { out, random: { seed: 1 } })).code,
    ).toBe('INVALID_TIMESTEP');
    expect(
      errorOf(() => s.addNoise(tensor(x0, [N, D], 'x0'), null, [0, 1, 2], { out, random: { seed: 1 } })).code,
    ).toBe('SHAPE_MISMATCH');
  });

  it('predictStartFromNoise inverts addNoise, and the posterior mean at x_t from the true x_0 is consistent', () => {
    const s = new DDPMScheduler({ engine });
    const N = 3,
      D = 33,
      ts = [1, 200, 900];
    const x0 = tensor(randomF32(N * D, 3), [N, D], 'x0'),
      eps = tensor(randomF32(N * D, 4), [N, D], 'eps');
    const xt = engine.alloc([N, D], 'xt');
    s.addNoise(x0, eps, ts, { out: xt });
    const back = engine.alloc([N, D], 'back');
    predictStartFromNoise(engine, s.schedule, xt, eps, ts, back);
    expect(err(engine.read(back), engine.read(x0))).toBeLessThan(2e-4); // 1/sqrt(ᾱ_900) ≈ 16 amplifies f32 rounding
    const mean = engine.alloc([N, D], 'mean');
    const post = qPosterior(engine, s.schedule, x0, xt, ts, mean);
    const vx0 = engine.read(x0),
      vxt = engine.read(xt),
      got = engine.read(mean);
    for (let i = 0; i < N * D; i++) {
      const t = ts[Math.floor(i / D)];
      const want = s.schedule.posteriorMeanCoef1[t] * vx0[i] + s.schedule.posteriorMeanCoef2[t] * vxt[i];
      expect(Math.abs(got[i] - want)).toBeLessThan(1e-6 * (1 + Math.abs(vx0[i]) + Math.abs(vxt[i])));
    }
    expect(Array.from(post.variance)).toEqual(ts.map((t) => s.schedule.posteriorVariance[t]));
    // The DDPM step's noiseless mean with the true ε and no clipping is this posterior mean (DDPM eq. 7 & 15).
    const noClip = new DDPMScheduler({ engine, clipSample: false });
    const x1 = { ...xt, ptr: xt.ptr + 1 * D * 4, size: D, shape: [1, D] },
      e1 = { ...eps, ptr: eps.ptr + D * 4, size: D, shape: [1, D] };
    const zero = tensor(new Float32Array(D), [1, D], 'zero');
    const stepMean = engine.read(noClip.step(e1, 200, x1, { noise: zero }).prevSample);
    expect(err(stepMean, got.subarray(D, 2 * D))).toBeLessThan(1e-5);
  });
});
