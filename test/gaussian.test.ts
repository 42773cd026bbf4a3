import { describe, expect, it } from 'vitest';
import { type Engine, kernels } from '../src/index.js';
import type { StepCoefficients } from '../src/kernels/gaussian.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { gaussianStepRef, normalAt, philox4x32_10, qSampleRef } from './reference/gaussian.js';
import { useEngines } from './helpers/engines.js';
import { describeError } from './helpers/errors.js';

const make = useEngines();
function u32View(e: Engine, t: { ptr: number; size: number }): Uint32Array {
  return new Uint32Array(e.memory.buffer, t.ptr, t.size).slice();
}

/** |a − b| in float32 ulps of b. */
function ulps(a: number, b: number): number {
  const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(b), 2 ** -126))) - 23);
  return Math.abs(a - b) / ulp;
}

// Random123's published known answers for philox4x32_10 (kat_vectors).
const KAT: { ctr: number[]; key: number[]; out: number[] }[] = [
  { ctr: [0, 0, 0, 0], key: [0, 0], out: [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8] },
  {
    ctr: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    key: [0xffffffff, 0xffffffff],
    out: [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  },
  {
    ctr: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    key: [0xa4093822, 0x299f31d0],
    out: [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  },
];

describe('Philox4x32-10', () => {
  it('passes the Random123 known-answer vectors (kernel and reference)', async () => {
    const e = await make({ threads: 1 });
    const out = e.alloc(4, 'out');
    for (const k of KAT) {
      expect(philox4x32_10(k.ctr, k.key)).toEqual(k.out);
      kernels.philoxFill(e, out, 1, k.ctr, k.key);
      expect(Array.from(u32View(e, out))).toEqual(k.out);
    }
  });

  it('fills consecutive counters with the carry into word 1, equal on 1 and 3 threads', async () => {
    const nb = 37;
    const c = [0xfffffff0, 7, 0xdeadbeef, 42];
    const key = [0x12345678, 0x9abcdef0];
    const want: number[] = [];
    for (let b = 0; b < nb; b++) {
      const w = c[0] + b;
      want.push(...philox4x32_10([w % 2 ** 32, c[1] + Math.floor(w / 2 ** 32), c[2], c[3]], key));
    }
    for (const threads of [1, 3]) {
      const e = await make({ threads });
      const out = e.alloc(4 * nb, 'out');
      kernels.philoxFill(e, out, nb, c, key);
      expect(Array.from(u32View(e, out))).toEqual(want);
      e.dispose();
    }
  });
});

describe('randn', () => {
  it('equals Box–Muller over Math.log/cos/sin in float64 to 1 ulp (float32), mostly exactly', async () => {
    const e = await make({ threads: 2 });
    const n = 4099;
    const out = e.alloc(n, 'z');
    const seed = 0x1234_5678_9abc_def0n;
    const offset = 2 ** 35 + 3; // crosses into the counter's high word
    kernels.randn(e, out, n, { seed, stream: 2 ** 40 + 5, offset });
    const z = e.read(out);
    let exact = 0;
    for (let i = 0; i < n; i++) {
      const ref = Math.fround(normalAt([0x9abcdef0, 0x12345678], [5, 2 ** 8], offset + i));
      expect(ulps(z[i], ref)).toBeLessThanOrEqual(1);
      if (z[i] === ref) exact++;
    }
    expect(exact / n).toBeGreaterThan(0.99);
  });

  it('has standard normal moments and uncorrelated neighbours (n = 2^20, bounds = 5 standard errors)', async () => {
    const e = await make({ threads: 2 });
    const n = 2 ** 20;
    const out = e.alloc(n, 'z');
    kernels.randn(e, out, n, { seed: 7, stream: 1 });
    const z = e.read(out);
    let s1 = 0,
      s2 = 0,
      s3 = 0,
      s4 = 0,
      lag1 = 0,
      lag2 = 0,
      big = 0;
    for (let i = 0; i < n; i++) {
      const v = z[i];
      s1 += v;
      s2 += v * v;
      s3 += v * v * v;
      s4 += v * v * v * v;
      if (i + 1 < n) lag1 += v * z[i + 1]; // lanes of one Box–Muller pair, and pairs across lanes
      if (i + 2 < n) lag2 += v * z[i + 2]; // across the two pairs of a block
      if (Math.abs(v) > 4) big++;
    }
    const mean = s1 / n,
      m2 = s2 / n;
    const variance = m2 - mean * mean;
    // Standard errors of the sample mean, variance, skewness, excess kurtosis for N(0,1): √(1/n), √(2/n),
    // √(6/n), √(24/n); of a correlation: √(1/n).
    expect(Math.abs(mean)).toBeLessThan(5 * Math.sqrt(1 / n));
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(s3 / n)).toBeLessThan(5 * Math.sqrt(6 / n));
    expect(Math.abs(s4 / n - 3)).toBeLessThan(5 * Math.sqrt(24 / n));
    expect(Math.abs(lag1 / n)).toBeLessThan(5 * Math.sqrt(1 / n));
    expect(Math.abs(lag2 / n)).toBeLessThan(5 * Math.sqrt(1 / n));
    // P(|z| > 4) = 6.33e-5: expect 66 ± 8 of 2^20; the tails exist and are not inflated.
    expect(big).toBeGreaterThan(66 - 5 * 8);
    expect(big).toBeLessThan(66 + 5 * 8);
  });

  it('does not depend on how a range is split: [0, n) equals [0, k) + [k, n) with offset k', async () => {
    const e = await make({ threads: 3 });
    const n = 129;
    const whole = e.alloc(n, 'whole');
    kernels.randn(e, whole, n, { seed: 99, stream: 3, offset: 10 });
    for (const k of [1, 2, 3, 5, 64, 127]) {
      const a = e.alloc(k, 'a');
      const b = e.alloc(n - k, 'b');
      kernels.randn(e, a, k, { seed: 99, stream: 3, offset: 10 });
      kernels.randn(e, b, n - k, { seed: 99, stream: 3, offset: 10 + k });
      const joined = new Float32Array(n);
      joined.set(e.read(a));
      joined.set(e.read(b), k);
      expect(sameBits(joined, e.read(whole))).toBe(true);
    }
    // Different streams and seeds give different numbers.
    const other = e.alloc(n, 'other');
    kernels.randn(e, other, n, { seed: 99, stream: 4, offset: 10 });
    expect(sameBits(e.read(other), e.read(whole))).toBe(false);
  });
});

const D_LIST = [1, 3, 17, 63, 65, 129];

describe('qSample', () => {
  it('matches the float64 reference with given noise on awkward shapes', async () => {
    const e = await make({ threads: 3 });
    for (const N of [1, 5]) {
      for (const D of D_LIST) {
        const m = e.arena.mark();
        const x0 = randomF32(N * D, N + D);
        const eps = randomF32(N * D, 7 * D);
        const a = Float32Array.from({ length: N }, (_, n) => Math.sqrt(0.9 - 0.17 * n));
        const b = Float32Array.from({ length: N }, (_, n) => Math.sqrt(0.1 + 0.17 * n));
        const out = e.alloc(N * D, 'xt');
        kernels.qSample(e, {
          N,
          D,
          x0: e.upload(x0, N * D, 'x0'),
          noise: e.upload(eps, N * D, 'eps'),
          out,
          sqrtAlphasCumprod: e.upload(a, N, 'a'),
          sqrtOneMinusAlphasCumprod: e.upload(b, N, 'b'),
        });
        const want = qSampleRef(N, D, x0, a, b, eps);
        const got = e.read(out);
        const bad = Array.from(got).findIndex((g, i) => {
          const n = Math.floor(i / D);
          return !(Math.abs(g - want[i]) <= 2 ** -23 * (Math.abs(a[n] * x0[i]) + Math.abs(b[n] * eps[i])));
        });
        expect(bad, `${N}x${D}`).toBe(-1);
        e.arena.release(m);
      }
    }
  });

  it('draws ε at element offset + n·D + d, writes it out, and sample n does not depend on the batch', async () => {
    const e = await make({ threads: 2 });
    const N = 5,
      D = 63;
    const x0 = e.upload(randomF32(N * D, 1), N * D, 'x0');
    const a = e.upload([0.9, 0.8, 0.7, 0.6, 0.5], N, 'a');
    const b = e.upload([0.1, 0.2, 0.3, 0.4, 0.5], N, 'b');
    const out = e.alloc(N * D, 'xt');
    const epsOut = e.alloc(N * D, 'eps');
    const random = { seed: 5, stream: 11 };
    kernels.qSample(e, { N, D, x0, sqrtAlphasCumprod: a, sqrtOneMinusAlphasCumprod: b, out, random, noiseOut: epsOut });
    const z = e.alloc(N * D, 'z');
    kernels.randn(e, z, N * D, random);
    expect(sameBits(e.read(epsOut), e.read(z))).toBe(true);
    // Samples 3…4 alone, with offset 3·D and the coefficient arrays shifted, give the same bits.
    const tail = e.alloc(2 * D, 'tail');
    const x0Tail = { ...x0, ptr: x0.ptr + 3 * D * 4, size: 2 * D };
    const aTail = { ...a, ptr: a.ptr + 12, size: 2 };
    const bTail = { ...b, ptr: b.ptr + 12, size: 2 };
    kernels.qSample(e, {
      N: 2,
      D,
      x0: x0Tail,
      sqrtAlphasCumprod: aTail,
      sqrtOneMinusAlphasCumprod: bTail,
      out: tail,
      random: { ...random, offset: 3 * D },
    });
    expect(sameBits(e.read(tail), e.read(out).subarray(3 * D))).toBe(true);
  });
});

function stepCases(): { name: string; coef: StepCoefficients }[] {
  return [
    {
      name: 'ddpm eps clip',
      coef: { ax: 1 / Math.sqrt(0.3), am: -Math.sqrt(0.7 / 0.3), clip: 1, c0: 0.21, c1: 0.77, c2: 0, sigma: 0.12 },
    },
    { name: 'ddim no clip', coef: { ax: 1.3, am: -0.4, clip: Infinity, c0: 0.6, c1: 0, c2: 0.5, sigma: 0.05 } },
    {
      name: 'learned',
      coef: { ax: 1.1, am: -0.2, clip: 1.5, c0: 0.3, c1: 0.6, c2: 0.1, sigma: { learned: 'learned' } },
    },
    {
      name: 'learned_range',
      coef: {
        ax: 1.1,
        am: -0.2,
        clip: 1,
        c0: 0.3,
        c1: 0.6,
        c2: 0,
        sigma: { learned: 'learned_range', minLog: -9.2, maxLog: -4.1 },
      },
    },
  ];
}

describe('gaussianStep', () => {
  it('matches the float64 reference on awkward shapes, every σ mode, given / drawn / no noise', async () => {
    const e = await make({ threads: 3 });
    for (const { name, coef } of stepCases()) {
      const learned = typeof coef.sigma === 'object';
      for (const N of [1, 5]) {
        for (const D of D_LIST) {
          for (const noiseKind of ['given', 'drawn', 'none'] as const) {
            const mk = e.arena.mark();
            const stride = learned ? 2 * D : D;
            const m = randomF32(N * stride, D + 3 * N);
            // learned: the variance half must be positive; learned_range: v in [-1, 1] as a model gives
            if (typeof coef.sigma === 'object' && coef.sigma.learned === 'learned') {
              for (let n = 0; n < N; n++)
                for (let d = D; d < 2 * D; d++) m[n * stride + d] = 0.01 + Math.abs(m[n * stride + d]);
            }
            const x = randomF32(N * D, 5 * D + N).map((v) => 2.5 * v);
            const random = { seed: 123n, stream: 9, offset: 1000 };
            let z: Float32Array | null = null;
            const zt = e.alloc(N * D, 'z');
            if (noiseKind === 'given') {
              z = randomF32(N * D, 17 * D);
              e.write(zt, z);
            } else if (noiseKind === 'drawn') {
              kernels.randn(e, zt, N * D, random);
              z = e.read(zt);
            }
            const prev = e.alloc(N * D, 'prev');
            const x0 = e.alloc(N * D, 'x0');
            kernels.gaussianStep(e, {
              N,
              D,
              modelOutput: e.upload(m, N * stride, 'm'),
              sample: e.upload(x, N * D, 'x'),
              prevSample: prev,
              predOriginalSample: x0,
              coef,
              noise: noiseKind === 'given' ? zt : undefined,
              random: noiseKind === 'drawn' ? random : undefined,
            });
            const ref = gaussianStepRef(N, D, m, x, z, coef);
            const gp = e.read(prev),
              g0 = e.read(x0);
            const f = Math.fround;
            // Bounds: a few float32 roundings of the terms' magnitudes (each op rounds once, 2^-24).
            let bad = '';
            for (let i = 0; i < N * D && !bad; i++) {
              const n = Math.floor(i / D),
                mv = m[n * stride + (i % D)];
              const t0 = Math.abs(f(coef.ax) * x[i]) + Math.abs(f(coef.am) * mv);
              const scale =
                Math.abs(f(coef.c0)) * (Math.abs(ref.x0[i]) + 2 ** -22 * t0) +
                Math.abs(f(coef.c1) * x[i]) +
                Math.abs(f(coef.c2) * mv) +
                Math.abs(ref.prev[i]);
              if (!(Math.abs(g0[i] - ref.x0[i]) <= 2 ** -22 * t0)) bad = `x0 @${i}: ${g0[i]} vs ${ref.x0[i]}`;
              else if (!(Math.abs(gp[i] - ref.prev[i]) <= 2 ** -21 * scale))
                bad = `prev @${i}: ${gp[i]} vs ${ref.prev[i]}`;
            }
            expect(bad, `${name} ${N}x${D} noise ${noiseKind}`).toBe('');
            e.arena.release(mk);
          }
        }
      }
    }
  });

  it('updates in place (prevSample = sample)', async () => {
    const e = await make({ threads: 2 });
    const N = 2,
      D = 17;
    const m = e.upload(randomF32(N * D, 1), N * D, 'm');
    const x = e.upload(randomF32(N * D, 2), N * D, 'x');
    const out = e.alloc(N * D, 'out');
    const coef = stepCases()[0].coef;
    const random = { seed: 1, stream: 2 };
    kernels.gaussianStep(e, { N, D, modelOutput: m, sample: x, prevSample: out, coef, random });
    kernels.gaussianStep(e, { N, D, modelOutput: m, sample: x, prevSample: x, coef, random });
    expect(sameBits(e.read(x), e.read(out))).toBe(true);
  });
});

describe('determinism', () => {
  it('randn, qSample and gaussianStep are bit-identical for 1–4 threads in both builds', async () => {
    const N = 3,
      D = 67;
    const mData = randomF32(2 * N * D, 3),
      xData = randomF32(N * D, 4),
      x0Data = randomF32(N * D, 5);
    let first: Float32Array[] | null = null;
    for (const simd of ['simd', 'relaxed'] as const) {
      for (const threads of [1, 2, 3, 4]) {
        const e = await make({ threads, simd });
        const z = e.alloc(N * D, 'z');
        kernels.randn(e, z, N * D, { seed: 2n ** 63n + 1n, stream: 77, offset: 3 });
        const xt = e.alloc(N * D, 'xt');
        const eps = e.alloc(N * D, 'eps');
        kernels.qSample(e, {
          N,
          D,
          x0: e.upload(x0Data, N * D, 'x0'),
          sqrtAlphasCumprod: e.upload([0.9, 0.5, 0.1], N, 'a'),
          sqrtOneMinusAlphasCumprod: e.upload([0.43, 0.86, 0.99], N, 'b'),
          out: xt,
          noiseOut: eps,
          random: { seed: 8 },
        });
        const prev = e.alloc(N * D, 'prev');
        kernels.gaussianStep(e, {
          N,
          D,
          modelOutput: e.upload(mData, 2 * N * D, 'm'),
          sample: e.upload(xData, N * D, 'x'),
          prevSample: prev,
          coef: stepCases()[3].coef,
          random: { seed: 8, stream: 1 },
        });
        const got = [e.read(z), e.read(xt), e.read(eps), e.read(prev)];
        if (first)
          got.forEach((g, i) => expect(sameBits(g, first![i]), `${simd} ${threads} threads, output ${i}`).toBe(true));
        else first = got;
        e.dispose();
      }
    }
  });
});

describe('argument checks', () => {
  it('reject bad input with a DdpmError naming the argument before any kernel runs', async () => {
    const e = await make({ threads: 1 });
    const t = e.alloc(8, 't');
    const code = describeError;
    expect(code(() => kernels.randn(e, t, 9, { seed: 1 }))).toMatch(/^SHAPE_MISMATCH: randn: out .* at least 9/);
    expect(code(() => kernels.randn(e, t, 8, { seed: -1 }))).toMatch(/^INVALID_ARGUMENT: randn: seed must be/);
    expect(code(() => kernels.randn(e, t, 8, { seed: 2n ** 64n }))).toMatch(
      /^INVALID_ARGUMENT: randn: seed must be in \[0, 2\^64\)/,
    );
    expect(code(() => kernels.randn(e, t, 8, { seed: 1, offset: 0.5 }))).toMatch(/^INVALID_ARGUMENT: randn: offset/);
    expect(code(() => kernels.philoxFill(e, t, 1, [0, 0, 0, 2 ** 32], [0, 0]))).toMatch(
      /^INVALID_ARGUMENT: philoxFill: counter\[3\]/,
    );
    expect(
      code(() => kernels.qSample(e, { N: 2, D: 4, x0: t, sqrtAlphasCumprod: t, sqrtOneMinusAlphasCumprod: t, out: t })),
    ).toMatch(/^INVALID_ARGUMENT: qSample: give either noise or random/);
    expect(
      code(() =>
        kernels.gaussianStep(e, {
          N: 2,
          D: 4,
          modelOutput: t,
          sample: t,
          prevSample: t,
          coef: { ...stepCases()[2].coef },
        }),
      ),
    ).toMatch(/^SHAPE_MISMATCH: gaussianStep: modelOutput .* at least 16/);
    expect(
      code(() =>
        kernels.gaussianStep(e, {
          N: 2,
          D: 4,
          modelOutput: t,
          sample: t,
          prevSample: t,
          coef: { ...stepCases()[0].coef, clip: 0 },
        }),
      ),
    ).toMatch(/^INVALID_ARGUMENT: gaussianStep: clip must be > 0/);
    expect(
      code(() =>
        kernels.gaussianStep(e, {
          N: 2,
          D: 4,
          modelOutput: t,
          sample: t,
          prevSample: t,
          coef: { ...stepCases()[0].coef, c1: NaN },
        }),
      ),
    ).toMatch(/^INVALID_ARGUMENT: gaussianStep: c1 must be a finite number/);
  });
});
