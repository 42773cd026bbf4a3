// gemmBatched: count GEMMs in one dispatch give the same bits as count gemm calls, on 1 and 3 threads,
// with transposes, strides between items larger than an item, alpha and beta.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, kernels } from '../src/index.js';
import { randomF32, sameBits } from './helpers/rng.js';

const engines: Engine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

describe('gemmBatched', () => {
  for (const threads of [1, 3]) {
    it(`matches separate gemm calls bit for bit (${threads} thread(s))`, async () => {
      const e = await Engine.create({ threads });
      engines.push(e);
      for (const [M, N, K, transA, transB] of [
        [7, 13, 5, false, false],
        [49, 49, 8, true, false],
        [8, 196, 196, false, true],
        [3, 9, 300, true, true],
      ] as const) {
        const count = 5;
        const aSize = M * K,
          bSize = K * N,
          cSize = M * N;
        const strideA = aSize + 3,
          strideB = bSize,
          strideC = cSize + 1;
        const A = e.upload(randomF32(count * strideA, 1), count * strideA, 'A');
        const B = e.upload(randomF32(count * strideB, 2), count * strideB, 'B');
        const c0 = randomF32(count * strideC, 3);
        const C1 = e.upload(c0, c0.length, 'C1');
        const C2 = e.upload(c0, c0.length, 'C2');
        const shape = { M, N, K, transA, transB, alpha: 0.5, beta: 1 };
        kernels.gemmBatched(e, { ...shape, count, strideA, strideB, strideC, A, B, C: C1 });
        for (let b = 0; b < count; b++) {
          const sub = (t: typeof A, s: number, n: number) => ({ ...t, ptr: t.ptr + 4 * b * s, size: n, shape: [n] });
          kernels.gemm(e, {
            ...shape,
            A: sub(A, strideA, aSize),
            B: sub(B, strideB, bSize),
            C: sub(C2, strideC, cSize),
          });
        }
        expect(sameBits(e.read(C1), e.read(C2)), `${M}×${N}×${K} ${transA} ${transB}`).toBe(true);
        expect(e.read(C1)[count * strideC - 1]).toBe(c0[count * strideC - 1]); // the gaps are untouched
      }
    });
  }

  it('refuses items of C that overlap', async () => {
    const e = await Engine.create({ threads: 1 });
    engines.push(e);
    const t = e.alloc(100, 't');
    const c = e.alloc(100, 'c');
    expect(() =>
      kernels.gemmBatched(e, { count: 2, strideA: 4, strideB: 4, strideC: 3, M: 2, N: 2, K: 2, A: t, B: t, C: c }),
    ).toThrow(/strideC/);
  });
});
