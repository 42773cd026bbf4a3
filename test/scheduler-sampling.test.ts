// Resumable sampling chains: stop after any step, serialize, resume (on another engine, thread count and
// build) and get the same bits as an uninterrupted run.
import { describe, expect, it } from 'vitest';
import { DdpmError, type Engine, type Tensor } from '../src/index.js';
import {
  DDIMScheduler,
  DDPMScheduler,
  SamplingChain,
  type SamplingModel,
  type SamplingState,
} from '../src/diffusion/index.js';
import { sameBits } from './helpers/rng.js';
import { useEngines } from './helpers/engines.js';

const make = useEngines();
/** The fixtures' dummy model ε = 0.1·x (float32), writing into one buffer allocated on first use. */
function dummyModel(engine: Engine): SamplingModel {
  let out: Tensor | null = null;
  return (x) => {
    out ??= engine.alloc(x.shape, 'eps');
    const k = Math.fround(0.1);
    engine.write(
      out,
      engine.read(x).map((v) => Math.fround(k * v)),
    );
    return out;
  };
}

const shape = [2, 3, 4, 4];

async function uninterrupted(
  newScheduler: () => DDPMScheduler | DDIMScheduler,
  o: { steps: number; eta?: number; seed: bigint; offset?: number; shape?: number[] },
) {
  const e = await make({ threads: 2, simd: 'simd' });
  const chain = SamplingChain.start(e, newScheduler(), {
    shape: o.shape ?? shape,
    numInferenceSteps: o.steps,
    seed: o.seed,
    eta: o.eta,
    offset: o.offset,
  });
  await chain.run(dummyModel(e));
  expect(chain.done).toBe(true);
  const x = e.read(chain.sample);
  e.dispose();
  return x;
}

describe('SamplingChain', () => {
  for (const kind of ['DDPM', 'DDIM'] as const) {
    it(`${kind}: stop after k steps, JSON round trip, resume elsewhere → bit-identical to an uninterrupted run`, async () => {
      const mk = () =>
        kind === 'DDPM'
          ? DDPMScheduler.fromConfig({ beta_schedule: 'squaredcos_cap_v2', variance_type: 'fixed_small' })
          : DDIMScheduler.fromConfig({ timestep_spacing: 'trailing' });
      const seed = 2n ** 40n + 3n;
      const eta = kind === 'DDIM' ? 0.5 : 0;
      const want = await uninterrupted(mk, { steps: 10, eta, seed });
      expect(want.every(Number.isFinite)).toBe(true);
      for (const k of [0, 4, 9]) {
        const a = await make({ threads: 1 });
        const first = SamplingChain.start(a, mk(), { shape, numInferenceSteps: 10, seed, eta });
        await first.run(dummyModel(a), { maxSteps: k });
        expect(first.stepIndex).toBe(k);
        const text = JSON.stringify(first.toJSON());
        a.dispose();
        const b = await make({ threads: 3, simd: 'relaxed' });
        const resumed = SamplingChain.resume(b, JSON.parse(text) as SamplingState);
        expect(resumed.stepIndex).toBe(k);
        expect(resumed.scheduler).toBeInstanceOf(kind === 'DDPM' ? DDPMScheduler : DDIMScheduler);
        await resumed.run(dummyModel(b));
        expect(sameBits(b.read(resumed.sample), want), `${kind} resumed after ${k} steps`).toBe(true);
        b.dispose();
      }
    });
  }

  it('sample n of a batch equals a chain of batch 1 at offset n·D', async () => {
    const mk = () => new DDPMScheduler();
    const seed = 77n;
    const batch = await uninterrupted(mk, { steps: 5, seed });
    const D = 3 * 4 * 4;
    const single = await uninterrupted(mk, { steps: 5, seed, offset: D, shape: [1, 3, 4, 4] });
    expect(sameBits(single, batch.subarray(D))).toBe(true);
    const other = await uninterrupted(mk, { steps: 5, seed: 78n });
    expect(sameBits(other, batch)).toBe(false);
  });

  it('run() honours an AbortSignal between steps and reports progress', async () => {
    const e = await make({ threads: 1 });
    const chain = SamplingChain.start(e, new DDPMScheduler(), { shape, numInferenceSteps: 10, seed: 1 });
    const ac = new AbortController();
    const seen: number[] = [];
    await expect(
      chain.run(dummyModel(e), {
        signal: ac.signal,
        onStep: (i, t) => {
          seen.push(t);
          if (i === 3) ac.abort();
        },
      }),
    ).rejects.toThrow();
    expect(seen).toEqual([900, 800, 700]);
    expect(chain.stepIndex).toBe(3);
  });

  it('a non-finite model output is a NON_FINITE error naming the step; the chain is left resumable', async () => {
    const e = await make({ threads: 1 });
    const seed = 5n;
    const want = await uninterrupted(() => new DDPMScheduler(), { steps: 6, seed });
    const chain = SamplingChain.start(e, new DDPMScheduler(), { shape, numInferenceSteps: 6, seed });
    const model = dummyModel(e);
    const poisoned: SamplingModel = async (x, t) => {
      const out = await model(x, t);
      if (chain.stepIndex === 2) e.view(out)[7] = NaN;
      return out;
    };
    const err = await chain.run(poisoned).catch((x) => x);
    expect(err).toBeInstanceOf(DdpmError);
    expect((err as DdpmError).code).toBe('NON_FINITE');
    expect((err as Error).message).toMatch(
      /at step 2 \(t = 498\) has 1 non-finite values, the first at element 7 \(NaN\); x_t is unchanged/,
    );
    expect(chain.stepIndex).toBe(2);
    await chain.run(model);
    expect(sameBits(e.read(chain.sample), want)).toBe(true);
  });

  it('refuses malformed states with FORMAT errors', async () => {
    const e = await make({ threads: 1 });
    const chain = SamplingChain.start(e, new DDPMScheduler(), { shape, numInferenceSteps: 10, seed: 1 });
    const good = chain.toJSON();
    const bad: [Partial<SamplingState> | Record<string, unknown>, RegExp][] = [
      [{ format: 'other' }, /format must be "ddpm-wasm.sampling-chain"/],
      [{ version: 3 }, /version 3 is not supported/],
      [{ sample: good.sample.slice(0, 20) }, /sample has \d+ bytes, shape \[2,3,4,4\] needs 384/],
      [{ stepIndex: 11 }, /stepIndex must be an integer in \[0, 10\]/],
      [{ timesteps: [1, 2] }, /timesteps \[1,2\] differ/],
      [{ seed: '-1' }, /seed must be a decimal string/],
      [
        { scheduler: { _class_name: 'PNDMScheduler' } },
        /_class_name must be one of DDPMScheduler, DDIMScheduler, .* found "PNDMScheduler"/,
      ],
    ];
    for (const [patch, msg] of bad) {
      try {
        SamplingChain.resume(e, { ...good, ...patch } as SamplingState);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(DdpmError);
        expect((err as DdpmError).code).toBe('FORMAT');
        expect((err as Error).message).toMatch(msg);
      }
    }
  });
});
