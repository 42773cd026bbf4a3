// Few-step solvers against diffusers v0.32.2 (test/fixtures/diffusers/solvers.json: 12 complete loops of
// DPM-Solver++ 2M, UniPC bh2, Euler, Euler ancestral and Heun), against the float64 twins in
// test/reference/solvers.ts, and the shared solver_combine_f32 kernel against its reference on both
// builds × 1–3 threads.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DdpmError, Engine, kernels, type Tensor } from '../src/index.js';
import {
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  HeunDiscreteScheduler,
  SCHEDULER_CLASSES,
  SAMPLER_NAMES,
  UniPCMultistepScheduler,
  betas32,
  createSampler,
  torchLinspace32,
  modelCallsForSteps,
  schedulerFromConfig,
  stepsForModelCalls,
  type AnyScheduler,
} from '../src/diffusion/index.js';
import { normalAt } from './reference/gaussian.js';
import * as ref from './reference/solvers.js';
import { randomF32, sameBits } from './helpers/rng.js';

interface Json {
  shape: number[];
  data: number[];
}
interface Step {
  t: number;
  model_input?: Json;
  model_output: Json;
  x0_pred: Json;
  prev_sample?: Json;
  corrected_sample?: Json;
  order?: number;
  corrector_order?: number | null;
  heun_stage?: number;
  noise_index?: number;
}
interface Loop {
  id: string;
  scheduler_class: string;
  config: Record<string, unknown>;
  num_inference_steps: number;
  timesteps: number[];
  sigmas: number[];
  init_noise_sigma: number;
  initial_sample?: Json;
  final_sample: Json;
  num_model_calls: number;
  steps?: Step[];
  steps_same_as?: string;
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/diffusers/solvers.json', import.meta.url), 'utf8')) as {
  x_T: Json;
  loop_noises: Json[];
  loops: Loop[];
};
const f32 = Math.fround;
const K = f32(0.1);

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 2 });
});
afterAll(() => engine?.dispose());

/** max |got − want| / max |want|: the error relative to the tensor's scale (values reach |x| ≈ 500). */
function scaled(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0,
    s = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    s = Math.max(s, Math.abs(want[i]));
  }
  return Number.isNaN(d) ? Infinity : d / s;
}

function stepsOf(loop: Loop): Step[] {
  if (loop.steps) return loop.steps;
  const other = fx.loops.find((l) => l.id === loop.steps_same_as);
  if (!other?.steps) throw new Error(`${loop.id}: steps_same_as ${loop.steps_same_as} not found`);
  return other.steps;
}

function errorOf(f: () => unknown): DdpmError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DdpmError);
    return e as DdpmError;
  }
  throw new Error('expected a DdpmError');
}

describe('diffusers parity: solvers.json', () => {
  for (const loop of fx.loops) {
    it(`${loop.id}: timesteps exact, σ, every step within 1e-5 of the tensor's scale`, () => {
      const sched = schedulerFromConfig(
        { _class_name: loop.scheduler_class, ...loop.config },
        { engine },
      ) as AnyScheduler & { sigmas: number[]; stepIndex: number | null };
      expect(sched.constructor.name).toBe(loop.scheduler_class);
      sched.setTimesteps(loop.num_inference_steps);
      expect(sched.timesteps).toEqual(loop.timesteps);
      expect(sched.timesteps.length).toBe(loop.num_model_calls);
      // Bit-exact float32 σ's (diffusers' float32 table, including σ(0) = 0.0100013297… that sets σ_min of
      // the Karras loops) and init_noise_sigma.
      expect(sched.sigmas).toEqual(loop.sigmas);
      expect(sched.initNoiseSigma).toBe(loop.init_noise_sigma);

      const mark = engine.arena.mark();
      try {
        let x: Tensor = engine.upload(
          Float32Array.from(fx.x_T.data, (v) => f32(v * sched.initNoiseSigma)),
          fx.x_T.shape,
          'x',
        );
        if (loop.initial_sample) expect(scaled(engine.read(x), loop.initial_sample.data)).toBeLessThan(1e-6);
        const eps = engine.alloc(fx.x_T.shape, 'eps');
        const worst: Record<string, number> = {};
        const note = (k: string, e: number) => (worst[k] = Math.max(worst[k] ?? 0, e));
        const steps = stepsOf(loop);
        steps.forEach((s, i) => {
          expect(s.t).toBe(sched.timesteps[i]);
          if (sched instanceof HeunDiscreteScheduler) expect(sched.stateInFirstOrder).toBe(s.heun_stage === 1);
          const inp = sched.scaleModelInput(x, s.t);
          if (s.model_input) note('model_input', scaled(engine.read(inp), s.model_input.data));
          engine.write(
            eps,
            engine.read(inp).map((v) => f32(K * v)),
          );
          note('model_output', scaled(engine.read(eps), s.model_output.data));
          const noise =
            s.noise_index !== undefined
              ? engine.upload(fx.loop_noises[s.noise_index].data, fx.x_T.shape, 'z')
              : undefined;
          const out = sched.step(eps, s.t, x, { noise });
          note('x0_pred', scaled(engine.read(out.predOriginalSample), s.x0_pred.data));
          if (sched instanceof DPMSolverMultistepScheduler) expect(sched.lastOrder, `order at step ${i}`).toBe(s.order);
          if (sched instanceof UniPCMultistepScheduler) {
            expect(sched.lastOrders).toEqual({ predictor: s.order, corrector: s.corrector_order ?? null });
            if (s.corrected_sample)
              note('corrected_sample', scaled(engine.read(sched.correctedSample!), s.corrected_sample.data));
          }
          const want = s.prev_sample ?? loop.final_sample;
          note('prev_sample', scaled(engine.read(out.prevSample), want.data));
          x = engine.upload(engine.read(out.prevSample), fx.x_T.shape, 'x');
        });
        note('final_sample', scaled(engine.read(x), loop.final_sample.data));
        console.log(
          `${loop.id}: worst scaled error ${Object.entries(worst)
            .map(([k, e]) => `${k} ${e.toExponential(1)}`)
            .join(', ')}`,
        );
        for (const [k, e] of Object.entries(worst)) expect(e, `${loop.id}: ${k}`).toBeLessThan(1e-5);
      } finally {
        engine.arena.release(mark);
      }
    });
  }

  it("diffusers' float32 betas and ᾱ (schedules.json) bit for bit: torch.linspace emulated, cumprod in double", () => {
    const sch = JSON.parse(
      readFileSync(new URL('./fixtures/diffusers/schedules.json', import.meta.url), 'utf8'),
    ).schedules;
    for (const name of ['linear', 'scaled_linear', 'scaled_linear_sd', 'squaredcos_cap_v2']) {
      const kw = sch[name].constructor_kwargs;
      const s = DPMSolverMultistepScheduler.fromConfig(kw);
      expect(Array.from(betas32(s.schedule, s.betaSchedule, s.betaStart, s.betaEnd)), name).toEqual(
        sch[name].betas.data ?? sch[name].betas,
      );
      expect(Array.from(s.alphasCumprod32), name).toEqual(sch[name].alphas_cumprod.data ?? sch[name].alphas_cumprod);
    }
    expect(Array.from(torchLinspace32(0, 1, 1))).toEqual([0]);
  });

  it('the two leading_karras loops equal the linspace ones (DPM-Solver Karras ignores timestep_spacing)', () => {
    for (const id of ['n10', 'n20']) {
      const a = DPMSolverMultistepScheduler.fromConfig({ timestep_spacing: 'leading', use_karras_sigmas: true });
      const b = DPMSolverMultistepScheduler.fromConfig({ timestep_spacing: 'linspace', use_karras_sigmas: true });
      const n = id === 'n10' ? 10 : 20;
      a.setTimesteps(n);
      b.setTimesteps(n);
      expect(a.timesteps).toEqual(b.timesteps);
      expect(a.sigmas).toEqual(b.sigmas);
    }
  });
});

/** Runs a full loop twice: the library (fused kernels, float32 tensors) and the float64 reference twins fed
 * the library's own σ's; returns the worst scaled difference. */
function againstReference(
  sched: AnyScheduler & { sigmas: number[] },
  n: number,
  o: { pred: ref.Pred; seedNoise?: boolean },
) {
  sched.engine = engine;
  sched.setTimesteps(n);
  const D = 2 * 16;
  const shape = [2, 1, 4, 4];
  const sig = sched.sigmas;
  const mark = engine.arena.mark();
  try {
    const xT = randomF32(D, 11).map((v) => f32(v * 1.7 * sched.initNoiseSigma));
    let x = engine.upload(xT, shape, 'x');
    let xr: ref.Vec = Float64Array.from(xT);
    const eps = engine.alloc(shape, 'eps');
    const hist: Float64Array[] = [];
    let last: Float64Array | null = null;
    let lastOrder = 0;
    let heun: { d: Float64Array; xs: Float64Array; dt: number } | null = null;
    let worst = 0;
    sched.timesteps.forEach((t, i) => {
      // the model: a fixed nonlinear function of its input, so both paths see the same map
      const inp = engine.read(sched.scaleModelInput(x, t));
      const m = inp.map((v, k) => f32(0.3 * v + 0.2 * Math.sin(3 * v + k)));
      engine.write(eps, m);
      const z = o.seedNoise
        ? Float64Array.from({ length: D }, (_, k) => f32(normalAt([7, 0], [sched.numTrainTimesteps + 1 + i, 0], k)))
        : null;
      const out = sched.step(eps, t, x, { seed: 7 });
      // the reference step, on the float32 input the library's model saw
      const xin = Float64Array.from(engine.read(x));
      const md = Float64Array.from(m);
      let next: ref.Vec;
      if (sched instanceof DPMSolverMultistepScheduler) {
        hist.unshift(Float64Array.from(ref.dpmX0(o.pred, sig[i], xin, md), f32)); // stored as float32, as the library does
        const order = sched.lastOrder!;
        // diffusers' order rule: warm-up, then lower orders at the end (see dpm-solver.ts)
        const n = sched.timesteps.length;
        const lof =
          i === n - 1 && (sched.eulerAtFinal || (sched.lowerOrderFinal && n < 15) || sched.finalSigmasType === 'zero');
        const los = i === n - 2 && sched.lowerOrderFinal && n < 15;
        expect(order).toBe(
          sched.solverOrder === 1 || i < 1 || lof ? 1 : sched.solverOrder === 2 || i < 2 || los ? 2 : 3,
        );
        next = ref.dpmUpdate(
          { order, sde: sched.algorithmType === 'sde-dpmsolver++', solverType: sched.solverType },
          sig,
          i,
          xin,
          hist,
          z,
        );
      } else if (sched instanceof UniPCMultistepScheduler) {
        const predictX0 = sched.predictX0;
        const mt = Float64Array.from(
          predictX0 ? ref.dpmX0(o.pred, sig[i], xin, md) : ref.unipcEps(o.pred, sig[i], xin, md),
          f32,
        );
        let start: ArrayLike<number> = xin;
        if (i > 0)
          start = ref.unipcUpdate(
            { order: lastOrder, bh: sched.solverType, corrector: true, predictX0 },
            sig,
            i,
            last!,
            hist,
            mt,
          );
        hist.unshift(mt);
        const p = Math.min(
          sched.lowerOrderFinal ? Math.min(sched.solverOrder, sched.timesteps.length - i) : sched.solverOrder,
          i + 1,
        );
        next = ref.unipcUpdate(
          { order: p, bh: sched.solverType, corrector: false, predictX0 },
          sig,
          i,
          Float64Array.from(start, f32),
          hist,
          null,
        );
        last = Float64Array.from(start, f32);
        lastOrder = p;
      } else if (sched instanceof HeunDiscreteScheduler) {
        const clip = (v: Float64Array) =>
          sched.clipSample ? v.map((u) => Math.min(Math.max(u, -sched.clipSampleRange), sched.clipSampleRange)) : v;
        if (!heun) {
          const x0 = clip(ref.sigmaX0(o.pred, sig[i], xin, md));
          const d = Float64Array.from(xin, (v, k) => (v - x0[k]) / sig[i]);
          heun = { d, xs: xin, dt: sig[i + 1] - sig[i] };
          next = Float64Array.from(xin, (v, k) => v + heun!.dt * d[k]);
        } else {
          const x0 = clip(ref.sigmaX0(o.pred, sig[i], xin, md));
          next = ref.heunCorrect(heun.xs, heun.d, heun.dt, sig[i], xin, x0);
          heun = null;
        }
      } else if (sched instanceof EulerAncestralDiscreteScheduler) {
        const x0 = ref.sigmaX0(o.pred, sig[i], xin, md);
        const zz = Float64Array.from({ length: D }, (_, k) =>
          f32(normalAt([7, 0], [sched.numTrainTimesteps + 1 + i, 0], k)),
        );
        next = ref.eulerAncestralUpdate(sig, i, xin, x0, zz);
      } else {
        next = ref.eulerUpdate(sig, i, xin, ref.sigmaX0(o.pred, sig[i], xin, md));
      }
      for (let k = 0; k < hist.length; k++) hist[k] = Float64Array.from(hist[k], f32); // the library keeps float32 history
      while (hist.length > 3) hist.pop();
      worst = Math.max(worst, scaled(engine.read(out.prevSample), next));
      x = engine.upload(engine.read(out.prevSample), shape, 'x');
      xr = next;
    });
    expect(xr.every(Number.isFinite)).toBe(true);
    return worst;
  } finally {
    engine.arena.release(mark);
  }
}

describe('fused-kernel path vs the float64 reference twins', () => {
  const cases: [string, () => AnyScheduler & { sigmas: number[] }, number, ref.Pred, boolean?][] = [
    ['DPM-Solver++ 1', () => new DPMSolverMultistepScheduler({ solverOrder: 1 }), 8, 'epsilon'],
    [
      'DPM-Solver++ 2M heun, v_prediction, trailing',
      () =>
        new DPMSolverMultistepScheduler({
          solverType: 'heun',
          predictionType: 'v_prediction',
          timestepSpacing: 'trailing',
        }),
      12,
      'v_prediction',
    ],
    [
      'DPM-Solver++ 3M Karras',
      () => new DPMSolverMultistepScheduler({ solverOrder: 3, useKarrasSigmas: true }),
      16,
      'epsilon',
    ],
    [
      'DPM-Solver++ 3M, sample prediction, lower_order_final off',
      () =>
        new DPMSolverMultistepScheduler({
          solverOrder: 3,
          predictionType: 'sample',
          lowerOrderFinal: false,
          finalSigmasType: 'sigma_min',
        }),
      9,
      'sample',
    ],
    [
      'SDE-DPM-Solver++ 2M (Philox noise)',
      () => new DPMSolverMultistepScheduler({ algorithmType: 'sde-dpmsolver++' }),
      10,
      'epsilon',
      true,
    ],
    [
      'SDE-DPM-Solver++ 3M',
      () => new DPMSolverMultistepScheduler({ algorithmType: 'sde-dpmsolver++', solverOrder: 3 }),
      10,
      'epsilon',
      true,
    ],
    ['UniPC bh1 order 3', () => new UniPCMultistepScheduler({ solverType: 'bh1', solverOrder: 3 }), 10, 'epsilon'],
    [
      'UniPC bh2, noise prediction (predict_x0 false), v_prediction',
      () =>
        new UniPCMultistepScheduler({ predictX0: false, predictionType: 'v_prediction', finalSigmasType: 'sigma_min' }),
      10,
      'v_prediction',
    ],
    [
      'UniPC bh1 order 2, noise prediction, sample prediction',
      () =>
        new UniPCMultistepScheduler({
          predictX0: false,
          solverType: 'bh1',
          predictionType: 'sample',
          finalSigmasType: 'sigma_min',
        }),
      8,
      'sample',
    ],
    [
      'UniPC bh2 order 3 Karras, leading',
      () => new UniPCMultistepScheduler({ solverOrder: 3, useKarrasSigmas: true, timestepSpacing: 'leading' }),
      12,
      'epsilon',
    ],
    [
      'Euler Karras, v_prediction',
      () => new EulerDiscreteScheduler({ useKarrasSigmas: true, predictionType: 'v_prediction' }),
      10,
      'v_prediction',
    ],
    [
      'Euler ancestral, leading (Philox noise)',
      () => new EulerAncestralDiscreteScheduler({ timestepSpacing: 'leading' }),
      10,
      'epsilon',
    ],
    [
      'Heun Karras',
      () => new HeunDiscreteScheduler({ useKarrasSigmas: true, betaStart: 1e-4, betaEnd: 0.02 }),
      6,
      'epsilon',
    ],
    [
      'Heun, clip_sample, v_prediction, trailing',
      () =>
        new HeunDiscreteScheduler({ clipSample: true, predictionType: 'v_prediction', timestepSpacing: 'trailing' }),
      5,
      'v_prediction',
    ],
  ];
  for (const [label, mk, n, pred, noise] of cases) {
    it(`${label}: every step within 2e-6 of the tensor's scale`, () => {
      expect(againstReference(mk(), n, { pred, seedNoise: noise })).toBeLessThan(2e-6);
    });
  }
});

describe('solver_combine_f32', () => {
  const builds: Engine[] = [];
  beforeAll(async () => {
    for (const simd of ['simd', 'relaxed'] as const)
      for (const threads of [1, 2, 3]) builds.push(await Engine.create({ simd, threads, spinUs: 20 }));
  });
  afterAll(() => builds.forEach((e) => e.dispose()));

  it('equals its float64 reference (one rounding), bit-identical for 1–3 threads in both builds; Philox noise as randn', () => {
    const N = 3,
      D = 37,
      n = N * D; // awkward sizes: slices end mid-row and mid-vector
    const x = randomF32(n, 1),
      y0 = randomF32(2 * n, 2),
      y1 = randomF32(n, 3),
      y2 = randomF32(n, 4),
      y3 = randomF32(n, 5);
    const y0rows = Float64Array.from({ length: n }, (_, i) => y0[Math.floor(i / D) * 2 * D + (i % D)]);
    const cases = [
      {
        a: 0.75,
        bs: [-1.25, 0.5, 2 / 3, -1e-3],
        noise: null as null | 'given' | 'philox',
        clip: Infinity,
        stride: 2 * D,
      },
      { a: 1, bs: [0.1, 0, -3, 7], noise: 'philox' as const, clip: Infinity, stride: 2 * D },
      { a: 2.5, bs: [1, 1, 0, 0], noise: 'given' as const, clip: 0.9, stride: 2 * D },
    ];
    for (const c of cases) {
      let first: Float32Array | null = null;
      for (const e of builds) {
        const mark = e.arena.mark();
        const tx = e.upload(x, [N, D], 'x'),
          t0 = e.upload(y0, [N, 2 * D], 'y0'),
          t1 = e.upload(y1, [N, D], 'y1'),
          t2 = e.upload(y2, [N, D], 'y2'),
          t3 = e.upload(y3, [N, D], 'y3');
        const z = e.upload(
          y1.map((v) => v * 3),
          [N, D],
          'z',
        );
        const out = e.alloc([N, D], 'out');
        kernels.solverCombine(e, {
          N,
          D,
          out,
          x: { t: tx, coef: c.a },
          stride0: c.stride,
          terms: [
            { t: t0, coef: c.bs[0] },
            { t: t1, coef: c.bs[1] },
            { t: t2, coef: c.bs[2] },
            { t: t3, coef: c.bs[3] },
          ],
          noise:
            c.noise === 'given'
              ? { coef: 0.3, z }
              : c.noise === 'philox'
                ? { coef: -0.7, random: { seed: 2n ** 33n + 5n, stream: 1001, offset: 2 ** 33 + 1 } }
                : undefined,
          clip: c.clip,
        });
        const got = e.read(out);
        e.arena.release(mark);
        if (!first) {
          first = got;
          const zz =
            c.noise === 'given'
              ? Float64Array.from(y1, (v) => f32(v * 3))
              : c.noise === 'philox'
                ? Float64Array.from({ length: n }, (_, i) => f32(normalAt([5, 2], [1001, 0], 2 ** 33 + 1 + i)))
                : null;
          const want = ref.combineRef(
            x,
            c.a,
            [y0rows, y1, y2, y3],
            c.bs,
            zz,
            c.noise === 'given' ? 0.3 : -0.7,
            n,
            c.clip,
          );
          // Philox normals may differ from Math.log/cos by 1 ulp of z: allow that through |c|.
          const tol = c.noise === 'philox' ? 1e-6 : 0;
          for (let i = 0; i < n; i++)
            expect(Math.abs(got[i] - want[i]), `element ${i}`).toBeLessThanOrEqual(
              tol * Math.abs(want[i]) + (tol ? 1e-7 : 0),
            );
        } else expect(sameBits(got, first), `${e.info.simd} ${e.info.threads} threads`).toBe(true);
      }
    }
  });

  it('may write in place over x or a term; checks its arguments with typed errors', () => {
    const e = builds[0];
    const mark = e.arena.mark();
    const x = e.upload([1, 2, 3, 4], [1, 4], 'x'),
      y = e.upload([10, 20, 30, 40], [1, 4], 'y');
    kernels.solverCombine(e, { N: 1, D: 4, out: x, x: { t: x, coef: 2 }, terms: [{ t: y, coef: 0.5 }] });
    expect(Array.from(e.read(x))).toEqual([7, 14, 21, 28]);
    kernels.solverCombine(e, { N: 1, D: 4, out: y, x: { t: x, coef: 1 }, terms: [{ t: y, coef: -1 }] });
    expect(Array.from(e.read(y))).toEqual([-3, -6, -9, -12]);
    expect(errorOf(() => kernels.solverCombine(e, { N: 2, D: 4, out: x })).code).toBe('SHAPE_MISMATCH');
    expect(errorOf(() => kernels.solverCombine(e, { N: 1, D: 4, out: x, x: { t: x, coef: NaN } })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(errorOf(() => kernels.solverCombine(e, { N: 1, D: 4, out: x, noise: { coef: 1 } })).code).toBe(
      'INVALID_ARGUMENT',
    );
    e.arena.release(mark);
  });
});

describe('configs and the registries', () => {
  it("toConfig → fromConfig round-trips, and matches diffusers' config keys", () => {
    for (const loop of fx.loops) {
      const s = schedulerFromConfig({ _class_name: loop.scheduler_class, ...loop.config });
      const c = s.toConfig();
      for (const [k, v] of Object.entries(c))
        if (k in loop.config && k !== 'trained_betas') expect(v, `${loop.id}: ${k}`).toEqual(loop.config[k]);
      const again = schedulerFromConfig(c);
      expect(again.toConfig()).toEqual(c);
    }
  });

  it('refuses options it cannot honour, by name', () => {
    for (const [cfg, code, word] of [
      [{ use_lu_lambdas: true }, 'UNSUPPORTED', 'use_lu_lambdas'],
      [{ use_exponential_sigmas: true }, 'UNSUPPORTED', 'use_exponential_sigmas'],
      [{ thresholding: true }, 'INVALID_ARGUMENT', 'thresholding'],
      [{ algorithm_type: 'dpmsolver' }, 'UNSUPPORTED', 'dpmsolver'],
      [{ solver_order: 4 }, 'UNSUPPORTED', 'solverOrder'],
      [{ final_sigmas_type: 'max' }, 'INVALID_ARGUMENT', 'finalSigmasType'],
      [{ prediction_type: 'flow_prediction' }, 'INVALID_ARGUMENT', 'predictionType'],
    ] as const) {
      const err = errorOf(() => DPMSolverMultistepScheduler.fromConfig(cfg));
      expect(err.code).toBe(code);
      expect(err.message).toContain(word);
    }
    expect(errorOf(() => UniPCMultistepScheduler.fromConfig({ solver_p: {} })).message).toContain('solver_p');
    expect(errorOf(() => UniPCMultistepScheduler.fromConfig({ predict_x0: false })).message).toContain(
      'final_sigmas_type',
    );
    expect(errorOf(() => EulerDiscreteScheduler.fromConfig({ interpolation_type: 'log_linear' })).message).toContain(
      'interpolation_type',
    );
    expect(errorOf(() => EulerAncestralDiscreteScheduler.fromConfig({ prediction_type: 'sample' })).code).toBe(
      'UNSUPPORTED',
    );
    expect(errorOf(() => schedulerFromConfig({ _class_name: 'LMSDiscreteScheduler' })).message).toContain(
      'DPMSolverMultistepScheduler',
    );
  });

  it("createSampler keeps the model's schedule and sets the solver keys; unknown names and --karras misuse are typed errors", () => {
    const model = JSON.parse(readFileSync(new URL('../models/mnist/scheduler_config.json', import.meta.url), 'utf8'));
    const want: Record<string, string> = {
      ddpm: 'DDPMScheduler',
      ddim: 'DDIMScheduler',
      'dpm++2m': 'DPMSolverMultistepScheduler',
      'dpm++3m': 'DPMSolverMultistepScheduler',
      'dpm++2m-sde': 'DPMSolverMultistepScheduler',
      unipc: 'UniPCMultistepScheduler',
      euler: 'EulerDiscreteScheduler',
      'euler-a': 'EulerAncestralDiscreteScheduler',
      heun: 'HeunDiscreteScheduler',
    };
    for (const name of SAMPLER_NAMES) {
      const s = createSampler(
        name,
        JSON.stringify({ ...model, beta_schedule: 'squaredcos_cap_v2', num_train_timesteps: 500 }),
      );
      expect(s.constructor.name).toBe(want[name]);
      expect(s.numTrainTimesteps).toBe(500);
      expect(s.betaSchedule).toBe('squaredcos_cap_v2');
      expect(s.timestepSpacing).toBe('leading'); // as diffusers' from_config keeps it
    }
    const d3 = createSampler('dpm++3m', model, { karras: true }) as DPMSolverMultistepScheduler;
    expect([d3.solverOrder, d3.useKarrasSigmas, d3.algorithmType]).toEqual([3, true, 'dpmsolver++']);
    expect((createSampler('dpm++2m-sde', model) as DPMSolverMultistepScheduler).algorithmType).toBe('sde-dpmsolver++');
    expect(errorOf(() => createSampler('lms', model)).message).toContain('dpm++2m');
    expect(errorOf(() => createSampler('euler-a', model, { karras: true })).code).toBe('UNSUPPORTED');
    expect(Object.keys(SCHEDULER_CLASSES)).toHaveLength(7);
  });

  it('timestep spacings as diffusers computes them; lambda_min_clipped drops the low-λ end', () => {
    const dpm = (o: Record<string, unknown>, n: number) => {
      const s = DPMSolverMultistepScheduler.fromConfig(o);
      s.setTimesteps(n);
      return s;
    };
    expect(dpm({ timestep_spacing: 'trailing' }, 10).timesteps).toEqual([
      999, 899, 799, 699, 599, 499, 399, 299, 199, 99,
    ]);
    expect(dpm({ timestep_spacing: 'leading', steps_offset: 1 }, 10).timesteps).toEqual([
      901, 811, 721, 631, 541, 451, 361, 271, 181, 91,
    ]);
    const e = new EulerDiscreteScheduler({ timestepSpacing: 'leading' });
    e.setTimesteps(10);
    expect(e.timesteps).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    const et = new EulerAncestralDiscreteScheduler({ timestepSpacing: 'trailing' });
    et.setTimesteps(4);
    expect(et.timesteps).toEqual([999, 749, 499, 249]);
    // squaredcos_cap_v2 with SD's clip: λ(t) < −5.1 near t = T is never used
    const cos = dpm({ beta_schedule: 'squaredcos_cap_v2', lambda_min_clipped: -5.1 }, 10);
    const free = dpm({ beta_schedule: 'squaredcos_cap_v2' }, 10);
    expect(free.timesteps[0]).toBe(999);
    expect(cos.timesteps[0]).toBeLessThan(999);
    const lam = (sg: number) => -Math.log(sg);
    for (const sg of cos.sigmas.slice(0, -1)) expect(lam(sg)).toBeGreaterThanOrEqual(-5.1 - 1e-3);
    expect(cos.toConfig().lambda_min_clipped).toBe(-5.1);
  });

  it("variance_type learned_range: the model output's variance channels are dropped", () => {
    const mark = engine.arena.mark();
    const shape = [2, 2, 2, 2];
    const x0 = randomF32(16, 8),
      m = randomF32(16, 9);
    const wide = new Float32Array(32);
    for (let nIdx = 0; nIdx < 2; nIdx++) {
      wide.set(m.subarray(8 * nIdx, 8 * nIdx + 8), 16 * nIdx);
      wide.set(randomF32(8, 10 + nIdx), 16 * nIdx + 8);
    }
    const run = (learned: boolean) => {
      const s = new DPMSolverMultistepScheduler({ engine, varianceType: learned ? 'learned_range' : null });
      s.setTimesteps(4);
      let x = engine.upload(x0, shape, 'x');
      const mo = learned ? engine.upload(wide, [2, 4, 2, 2], 'mo') : engine.upload(m, shape, 'mo');
      for (const t of s.timesteps) x = engine.upload(engine.read(s.step(mo, t, x).prevSample), shape, 'x');
      return engine.read(x);
    };
    expect(sameBits(run(true), run(false))).toBe(true);
    engine.arena.release(mark);
  });

  it('model-call budgets: Heun spends 2n − 1 calls on n steps, the others n', () => {
    expect([5, 10, 15, 20].map((c) => stepsForModelCalls('heun', c))).toEqual([3, 5, 8, 10]);
    expect(stepsForModelCalls('dpm++2m', 10)).toBe(10);
    for (const c of [1, 2, 9, 30, 50]) {
      const n = stepsForModelCalls('heun', c);
      const s = new HeunDiscreteScheduler();
      s.setTimesteps(n);
      expect(s.timesteps.length).toBe(modelCallsForSteps('heun', n));
      expect(s.timesteps.length).toBeLessThanOrEqual(c);
      expect(s.timesteps.length).toBeGreaterThanOrEqual(c - 1);
    }
  });

  it('steps out of order, before setTimesteps, or with the wrong shapes are typed errors', () => {
    const mark = engine.arena.mark();
    const x = engine.upload(randomF32(8, 3), [2, 4], 'x');
    const s = new DPMSolverMultistepScheduler({ engine });
    expect(errorOf(() => s.step(x, 999, x)).code).toBe('INVALID_ARGUMENT');
    s.setTimesteps(5);
    expect(errorOf(() => s.step(x, 500, x)).code).toBe('INVALID_TIMESTEP');
    expect(errorOf(() => s.step(engine.alloc([2, 3], 'm'), s.timesteps[0], x)).code).toBe('SHAPE_MISMATCH');
    s.step(x, s.timesteps[0], x);
    expect(errorOf(() => s.step(x, s.timesteps[0], x)).code).toBe('INVALID_TIMESTEP');
    const sde = new DPMSolverMultistepScheduler({ engine, algorithmType: 'sde-dpmsolver++' });
    sde.setTimesteps(5);
    expect(errorOf(() => sde.step(x, sde.timesteps[0], x)).message).toContain('seed');
    engine.arena.release(mark);
  });
});
