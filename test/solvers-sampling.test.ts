// SamplingChain with the few-step solvers: x_T = initNoiseSigma·z, scaleModelInput, Heun's two calls per
// step, multistep history in the state; stop after any model call, JSON round trip, resume on another
// engine (thread count, build) with a fresh scheduler → bit-identical to an uninterrupted run.
import { afterAll, describe, expect, it } from 'vitest';
import { DdpmError, Engine, type Tensor } from '../src/index.js';
import {
  DDIMScheduler,
  DDPMScheduler,
  type EulerDiscreteScheduler,
  SamplingChain,
  createSampler,
  stepsForModelCalls,
  type SamplerName,
  type SamplingModel,
  type SamplingState,
} from '../src/diffusion/index.js';
import { normalAt } from './reference/gaussian.js';
import { sameBits } from './helpers/rng.js';

const engines: Engine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));
async function make(opts: Parameters<typeof Engine.create>[0]) {
  const e = await Engine.create(opts);
  engines.push(e);
  return e;
}

/** A toy ε-model that depends on its input and on t, so history and timesteps both matter (and not on the
 * sample's place in the batch: shape [N, 1, 4, 4], D = 16). */
function toyModel(engine: Engine): SamplingModel {
  let out: Tensor | null = null;
  return (x, t) => {
    out ??= engine.alloc(x.shape, 'eps');
    engine.write(
      out,
      engine.read(x).map((v, i) => Math.fround(0.3 * v + 0.1 * Math.sin(v + (i % 16) + t / 100))),
    );
    return out;
  };
}

const shape = [2, 1, 4, 4];
const modelConfig = {
  _class_name: 'DDPMScheduler',
  num_train_timesteps: 1000,
  beta_schedule: 'linear',
  beta_start: 0.0001,
  beta_end: 0.02,
  prediction_type: 'epsilon',
  clip_sample: true,
  timestep_spacing: 'leading',
  variance_type: 'fixed_small',
};

async function uninterrupted(
  name: SamplerName,
  calls: number,
  o: { seed: bigint; karras?: boolean; offset?: number; shape?: number[] },
) {
  const e = await make({ threads: 2, simd: 'simd' });
  const chain = SamplingChain.start(e, createSampler(name, modelConfig, { karras: o.karras }), {
    shape: o.shape ?? shape,
    numInferenceSteps: stepsForModelCalls(name, calls),
    seed: o.seed,
    offset: o.offset,
  });
  await chain.run(toyModel(e));
  expect(chain.done).toBe(true);
  const x = e.read(chain.sample);
  e.dispose();
  return x;
}

describe('SamplingChain with the few-step solvers', () => {
  const cases: [SamplerName, boolean, number[]][] = [
    ['dpm++2m', false, [1, 4, 8]],
    ['dpm++3m', true, [1, 2, 5, 8]],
    ['dpm++2m-sde', true, [3, 8]],
    ['unipc', false, [1, 2, 6, 8]],
    ['heun', true, [1, 2, 5]], // 9 calls: stopping after an odd count leaves Heun's corrector pending
    ['euler', true, [4]],
    ['euler-a', false, [4]],
  ];
  for (const [name, karras, stops] of cases) {
    it(`${name}${karras ? ' (Karras)' : ''}: stop after ${stops.join(', ')} calls, resume elsewhere with a fresh scheduler → same bits`, async () => {
      const seed = 2n ** 36n + 9n;
      const calls = 9;
      const want = await uninterrupted(name, calls, { seed, karras });
      expect(want.every(Number.isFinite)).toBe(true);
      for (const k of stops) {
        const a = await make({ threads: 1 });
        const first = SamplingChain.start(a, createSampler(name, modelConfig, { karras }), {
          shape,
          numInferenceSteps: stepsForModelCalls(name, calls),
          seed,
        });
        await first.run(toyModel(a), { maxSteps: k });
        expect(first.stepIndex).toBe(k);
        const text = JSON.stringify(first.toJSON());
        a.dispose();
        const state = JSON.parse(text) as SamplingState;
        expect(state.version).toBe(2);
        expect(state.solver).not.toBeNull();
        const b = await make({ threads: 3, simd: 'relaxed' });
        const resumed = SamplingChain.resume(b, state);
        expect(resumed.stepIndex).toBe(k);
        await resumed.run(toyModel(b));
        expect(sameBits(b.read(resumed.sample), want), `${name} resumed after ${k} calls`).toBe(true);
        b.dispose();
      }
    });
  }

  it('x_T is initNoiseSigma·z with z Philox at (seed, stream T, offset)', async () => {
    const e = await make({ threads: 1 });
    const s = createSampler('euler', modelConfig) as EulerDiscreteScheduler;
    const chain = SamplingChain.start(e, s, { shape, numInferenceSteps: 10, seed: 3 });
    const f = Math.fround;
    expect(s.initNoiseSigma).toBe(f(Math.sqrt(f(f(s.sigmas[0] ** 2) + 1)))); // leading spacing: sqrt(σ_max² + 1)
    const x = e.read(chain.sample);
    for (let i = 0; i < x.length; i++)
      expect(x[i]).toBeCloseTo(Math.fround(normalAt([3, 0], [1000, 0], i)) * s.initNoiseSigma, 3);
  });

  it('stochastic solvers: sample n of a batch equals a chain of batch 1 at offset n·D', async () => {
    for (const name of ['dpm++2m-sde', 'euler-a'] as const) {
      const seed = 77n;
      const batch = await uninterrupted(name, 6, { seed });
      const D = 16;
      const single = await uninterrupted(name, 6, { seed, offset: D, shape: [1, 1, 4, 4] });
      expect(sameBits(single, batch.subarray(D)), name).toBe(true);
      const other = await uninterrupted(name, 6, { seed: 78n });
      expect(sameBits(other, batch)).toBe(false);
    }
  });

  it('version-1 states (DDPM, DDIM) still resume; a version-1 state naming a solver is refused', async () => {
    const e = await make({ threads: 1 });
    for (const sched of [new DDPMScheduler(), new DDIMScheduler()]) {
      const chain = SamplingChain.start(e, sched, { shape, numInferenceSteps: 5, seed: 1 });
      await chain.run(toyModel(e), { maxSteps: 2 });
      const v1 = { ...chain.toJSON(), version: 1 } as Record<string, unknown>;
      delete v1.solver;
      const resumed = SamplingChain.resume(e, v1 as unknown as SamplingState);
      await resumed.run(toyModel(e));
      await chain.run(toyModel(e));
      expect(sameBits(e.read(resumed.sample), e.read(chain.sample))).toBe(true);
    }
    const dpm = SamplingChain.start(e, createSampler('dpm++2m', modelConfig), { shape, numInferenceSteps: 5, seed: 1 });
    const err = (() => {
      try {
        SamplingChain.resume(e, { ...dpm.toJSON(), version: 1 });
      } catch (x) {
        return x;
      }
    })();
    expect(err).toBeInstanceOf(DdpmError);
    expect((err as DdpmError).message).toMatch(/version 1 states hold DDPMScheduler or DDIMScheduler/);
  });

  it('malformed states are DdpmErrors, never TypeErrors (every field replaced by wrong types)', async () => {
    const e = await make({ threads: 1 });
    const bads: unknown[] = [null, undefined, 0, -1, 1.5, 'x', '', [], {}, [1, 'a'], true, { m0: 'AAAA' }];
    for (const name of ['dpm++3m', 'unipc', 'heun'] as const) {
      const chain = SamplingChain.start(e, createSampler(name, modelConfig), {
        shape,
        numInferenceSteps: stepsForModelCalls(name, 7),
        seed: 1,
      });
      await chain.run(toyModel(e), { maxSteps: 3 });
      const good = chain.toJSON() as unknown as Record<string, unknown>;
      const solver = good.solver as Record<string, Record<string, unknown>>;
      const variants: unknown[] = [null, 'state', [], 42];
      for (const [k] of Object.entries(good)) for (const b of bads) variants.push({ ...good, [k]: b });
      for (const part of ['values', 'tensors'] as const) {
        for (const k of Object.keys(solver[part]))
          for (const b of bads) variants.push({ ...good, solver: { ...solver, [part]: { ...solver[part], [k]: b } } });
      }
      for (const b of bads)
        variants.push(
          { ...good, solver: { ...solver, stepIndex: b } },
          { ...good, scheduler: { ...(good.scheduler as object), solver_order: b } },
        );
      let refused = 0;
      for (const v of variants) {
        try {
          SamplingChain.resume(e, v as SamplingState);
        } catch (x) {
          expect(x, `${name}: ${JSON.stringify(v)?.slice(0, 200)}`).toBeInstanceOf(DdpmError);
          refused++;
        }
      }
      expect(refused).toBeGreaterThan(variants.length / 2);
    }
  });

  it('a non-finite model output leaves a multistep chain resumable with the same bits', async () => {
    const seed = 5n;
    const want = await uninterrupted('unipc', 6, { seed });
    const e = await make({ threads: 1 });
    const chain = SamplingChain.start(e, createSampler('unipc', modelConfig), { shape, numInferenceSteps: 6, seed });
    const model = toyModel(e);
    const poisoned: SamplingModel = async (x, t) => {
      const out = await model(x, t);
      if (chain.stepIndex === 3) e.view(out)[2] = Infinity;
      return out;
    };
    const err = await chain.run(poisoned).catch((x) => x);
    expect((err as DdpmError).code).toBe('NON_FINITE');
    expect(chain.stepIndex).toBe(3);
    await chain.run(model);
    expect(sameBits(e.read(chain.sample), want)).toBe(true);
  });
});
