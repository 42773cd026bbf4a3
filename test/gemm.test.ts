import { describe, expect, it } from 'vitest';
import { type Engine, KERNEL, kernels, type Tensor } from '../src/index.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { gemmRef } from './reference/gemm.js';
import { useEngines } from './helpers/engines.js';
import { expectError } from './helpers/errors.js';

const make = useEngines();
interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  bias?: 'row' | 'col';
  /** Extra elements added to each leading dimension (strided views). */
  pad?: [number, number, number];
}

/** Runs one case on `e`; returns C and the float64 reference with its error scale. */
function runCase(e: Engine, c: Case, seed: number) {
  const { M, N, K, transA = false, transB = false, alpha = 1, beta = 0, pad = [0, 0, 0] } = c;
  const [aRows, aCols] = transA ? [K, M] : [M, K];
  const [bRows, bCols] = transB ? [N, K] : [K, N];
  const lda = Math.max(1, aCols) + pad[0],
    ldb = Math.max(1, bCols) + pad[1],
    ldc = Math.max(1, N) + pad[2];
  const a = randomF32(Math.max(1, aRows * lda), seed);
  const b = randomF32(Math.max(1, bRows * ldb), seed + 1);
  const c0 = randomF32(Math.max(1, M * ldc), seed + 2);
  const bias = c.bias ? randomF32(c.bias === 'row' ? M : N, seed + 3) : undefined;
  const mark = e.arena.mark();
  const A = e.upload(a, a.length, 'A');
  const B = e.upload(b, b.length, 'B');
  const C = e.upload(c0, c0.length, 'C');
  const tBias: Tensor | undefined = bias ? e.upload(bias, bias.length, 'bias') : undefined;
  kernels.gemm(e, { M, N, K, A, B, C, transA, transB, alpha, beta, bias: tBias, biasOn: c.bias, lda, ldb, ldc });
  const got = e.read(C);
  e.arena.release(mark);
  const want = gemmRef({
    M,
    N,
    K,
    A: a,
    B: b,
    C: c0,
    transA,
    transB,
    alpha,
    beta,
    bias,
    biasOn: c.bias,
    lda,
    ldb,
    ldc,
  });
  return { got, want, c0, ldc };
}

/** |got − want| ≤ (K + 4)·2⁻²⁴·Σ|terms| (the float32 dot-product bound), and padding left untouched. */
function expectClose(c: Case, r: ReturnType<typeof runCase>): void {
  const { M, N, K } = c;
  const tol = (K + 4) * 2 ** -24;
  let worst = 0;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < r.ldc; j++) {
      const idx = i * r.ldc + j;
      if (j >= N) {
        expect(r.got[idx], `padding C[${i}, ${j}] changed`).toBe(r.c0[idx]);
        continue;
      }
      const err = Math.abs(r.got[idx] - r.want.C[idx]) / Math.max(r.want.scale[idx], 1e-30);
      if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
    }
  }
  expect(worst, `relative error for ${JSON.stringify(c)}`).toBeLessThanOrEqual(tol);
}

const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [3, 17, 65],
  [17, 3, 129],
  [63, 65, 17],
  [65, 129, 3],
  [129, 63, 1],
  [17, 129, 63],
  [1, 65, 3],
  [129, 1, 17],
  [3, 3, 63],
];

describe('gemm', () => {
  for (const simd of ['simd', 'relaxed'] as const) {
    it(`${simd}: all transposes, sizes from {1, 3, 17, 63, 65, 129}, alpha/beta/bias variants`, async () => {
      const e = await make({ threads: simd === 'simd' ? 1 : 2, simd });
      let seed = 10;
      const variants: Partial<Case>[] = [
        {},
        { alpha: -0.5, beta: 1 },
        { beta: 0.25, bias: 'row' },
        { alpha: 2, bias: 'col' },
        { beta: -1.5, bias: 'col' },
      ];
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          SIZES.forEach(([M, N, K], n) => {
            const c: Case = {
              M,
              N,
              K,
              transA,
              transB,
              ...variants[(n + (transA ? 2 : 0) + (transB ? 1 : 0)) % variants.length],
            };
            expectClose(c, runCase(e, c, (seed += 5)));
          });
        }
      }
    });
  }

  it('blocks larger than one pack (K > KC = 256, N > NC = 512, M > MC) and strided lda/ldb/ldc', async () => {
    const e = await make({ threads: 2, simd: 'relaxed' });
    const cases: Case[] = [
      { M: 129, N: 600, K: 513, beta: 0.5, bias: 'row' },
      { M: 65, N: 63, K: 300, transA: true, transB: true, alpha: 0.75, pad: [3, 5, 7] },
      { M: 100, N: 17, K: 257, transB: true, beta: 1, pad: [1, 0, 2] },
      { M: 17, N: 129, K: 65, transA: true, bias: 'col', pad: [4, 4, 4] },
    ];
    cases.forEach((c, n) => expectClose(c, runCase(e, c, 100 + 7 * n)));
  });

  it('small M (conv-like weights kept packed across column blocks, tiles stored from registers), both builds', async () => {
    // M = 32, 16, 8, 7: the 6×8 / 4×8 / 2×8 tiles (5×8 / 4×8 / 2×8 in the plain build); K > KC: later K
    // blocks added in registers; N > NC: the resident packed A reused by later column blocks.
    const cases: Case[] = [
      { M: 32, N: 1100, K: 600, bias: 'row' },
      { M: 16, N: 700, K: 300 },
      { M: 8, N: 520, K: 257, bias: 'row', pad: [2, 0, 3] },
      { M: 7, N: 1030, K: 90, transA: true, bias: 'col' },
      { M: 16, N: 530, K: 300, beta: 1 },
    ];
    for (const simd of ['simd', 'relaxed'] as const) {
      const e = await make({ threads: 2, simd });
      cases.forEach((c, n) => expectClose(c, runCase(e, c, 300 + 7 * n)));
    }
  });

  it('K = 0 gives beta·C + bias; M or N = 0 touches nothing', async () => {
    const e = await make({ threads: 2, simd: 'simd' });
    expectClose(
      { M: 5, N: 9, K: 0, beta: 0.5, bias: 'col' },
      runCase(e, { M: 5, N: 9, K: 0, beta: 0.5, bias: 'col' }, 7),
    );
    const C = e.upload([1, 2, 3], 3, 'C');
    const A = e.alloc(12, 'A'); // also serves as B (4×3)
    kernels.gemm(e, { M: 0, N: 3, K: 4, A, B: A, C, beta: 0 });
    kernels.gemm(e, { M: 1, N: 0, K: 4, A, B: A, C, beta: 0 });
    expect(Array.from(e.read(C))).toEqual([1, 2, 3]);
  });

  it('beta = 0 does not read C (NaN in C does not leak)', async () => {
    const e = await make({ threads: 1, simd: 'relaxed' });
    const A = e.upload(randomF32(12, 1), 12, 'A');
    const B = e.upload(randomF32(12, 2), 12, 'B');
    const C = e.upload(new Float32Array(9).fill(NaN), 9, 'C');
    kernels.gemm(e, { M: 3, N: 3, K: 4, A, B, C, transB: true });
    expect(e.read(C).every(Number.isFinite)).toBe(true);
  });

  it('bit-identical for 1, 2, 3, 4 threads (split along M and along N), simd and relaxed', async () => {
    // [M, N, K]: more row tiles than column tiles (split M), then the other way (split N)
    const shapes: Case[] = [
      { M: 131, N: 40, K: 300, transA: true, bias: 'row', beta: 0.5 },
      { M: 20, N: 1037, K: 70, transB: true, bias: 'col' },
    ];
    for (const simd of ['simd', 'relaxed'] as const) {
      const first: (Float32Array | null)[] = shapes.map(() => null);
      for (const threads of [1, 2, 3, 4]) {
        const e = await make({ threads, simd });
        shapes.forEach((c, n) => {
          const r = runCase(e, c, 50 + n);
          if (threads === 1) {
            expectClose(c, r);
            first[n] = r.got;
          } else expect(sameBits(r.got, first[n]!), `${simd}, ${threads} threads, case ${n}`).toBe(true);
        });
        e.dispose();
      }
    }
  });

  it('rejects bad shapes, strides, small tensors, aliasing and a small workspace before any kernel runs', async () => {
    const e = await make({ threads: 1 });
    const A = e.alloc(6, 'A'); // 2×3
    const B = e.alloc(12, 'B'); // 3×4
    const C = e.upload(new Float32Array(8).fill(7), 8, 'C'); // 2×4
    const code = expectError;
    code(() => kernels.gemm(e, { M: -1, N: 4, K: 3, A, B, C }), 'INVALID_ARGUMENT', /gemm: M must be an integer/);
    code(() => kernels.gemm(e, { M: 2, N: 4.5, K: 3, A, B, C }), 'INVALID_ARGUMENT', /gemm: N must be an integer/);
    code(
      () => kernels.gemm(e, { M: 2, N: 4, K: 4, A, B, C }),
      'SHAPE_MISMATCH',
      /gemm: A \(M×K = 2×4, lda 4\) \(tensor A\) must hold at least 8 values, found 6/,
    );
    code(
      () => kernels.gemm(e, { M: 2, N: 5, K: 3, A, B, C, transB: true }),
      'SHAPE_MISMATCH',
      /gemm: B \(N×K = 5×3, ldb 3\) \(tensor B\) must hold at least 15 values, found 12/,
    );
    code(
      () => kernels.gemm(e, { M: 2, N: 4, K: 3, A, B, C, ldc: 5 }),
      'SHAPE_MISMATCH',
      /gemm: C \(M×N = 2×4, ldc 5\) \(tensor C\) must hold at least 9 values, found 8/,
    );
    code(
      () => kernels.gemm(e, { M: 2, N: 4, K: 3, A, B, C, lda: 2 }),
      'INVALID_ARGUMENT',
      /gemm: lda must be an integer >= 3, found 2/,
    );
    code(
      () => kernels.gemm(e, { M: 2, N: 4, K: 3, A, B, C, alpha: Infinity }),
      'INVALID_ARGUMENT',
      /gemm: alpha must be a finite number/,
    );
    const b3 = e.alloc(3, 'b3');
    code(
      () => kernels.gemm(e, { M: 2, N: 4, K: 3, A, B, C, bias: b3, biasOn: 'col' }),
      'SHAPE_MISMATCH',
      /gemm: bias \(on cols\) \(tensor b3\) must hold at least 4 values, found 3/,
    );
    code(() => kernels.gemm(e, { M: 2, N: 4, K: 3, A, B: A, C: A }), 'SHAPE_MISMATCH', /gemm: B/);
    code(
      () => kernels.gemm(e, { M: 2, N: 3, K: 3, A, B, C: A }),
      'INVALID_ARGUMENT',
      /C \(tensor A\) overlaps A \(tensor A\)/,
    );
    code(() => kernels.gemm(e, { M: 2, N: 4, K: 3, A, B, C: { ...C, ptr: 1 << 30 } }), 'OUT_OF_BOUNDS', /gemm: C/);
    expect(Array.from(e.read(C))).toEqual(new Array(8).fill(7));
    const small = await make({ threads: 1, scratchPerThread: 64 * 1024 });
    const a = small.alloc(6, 'A'),
      b = small.alloc(12, 'B'),
      c = small.alloc(8, 'C');
    code(
      () => kernels.gemm(small, { M: 2, N: 4, K: 3, A: a, B: b, C: c }),
      'INVALID_ARGUMENT',
      /workspace has 65536 bytes per thread, the packed GEMM needs \d+/,
    );
    // Called unchecked, the kernel itself refuses a workspace that is too small rather than overrun it.
    const { ptr, bytesPerThread } = small.workspace;
    expect(() =>
      small.run(KERNEL.gemm_f32, [0, 0, 2, 4, 3, 1, a.ptr, 3, b.ptr, 4, 0, c.ptr, 4, 0, 0, ptr, bytesPerThread], false),
    ).toThrowError(/unreachable/);
  });
});
