import { describe, expect, it } from 'vitest';
import { DdpmError, KERNEL, kernels } from '../src/index.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { useEngines } from './helpers/engines.js';

const make = useEngines();

describe('Engine', () => {
  it('picks a build and says why', async () => {
    const e = await make({ threads: 2 });
    expect(e.info.runtime).toBe('node');
    expect(e.info.build).toMatch(/^(simd|relaxed)-mt$/);
    expect(e.info.threads).toBe(2);
    expect(e.info.why.length).toBeGreaterThanOrEqual(2);
    const one = await make({ threads: 1, simd: 'simd' });
    expect(one.info.build).toBe('simd');
  });

  it('runs a kernel on 1–4 threads with bit-identical results, equal to a float64 reference', async () => {
    const n = 1037;
    const x = randomF32(n, 1);
    const y0 = randomF32(n, 2);
    const a = Math.fround(0.37);
    const want = Array.from(y0, (v, i) => a * x[i] + v); // float64
    const tol = Array.from(y0, (v, i) => 2 ** -22 * (Math.abs(a * x[i]) + Math.abs(v)));
    for (const simd of ['simd', 'relaxed'] as const) {
      let first: Float32Array | null = null;
      for (const threads of [1, 2, 3, 4]) {
        const e = await make({ threads, simd });
        const tx = e.upload(x, n, 'x');
        const ty = e.upload(y0, n, 'y');
        kernels.axpy(e, n, 0.37, tx, ty);
        const got = e.read(ty);
        for (let i = 0; i < n; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(tol[i]);
        if (first) expect(sameBits(got, first)).toBe(true);
        else first = got;
        e.dispose();
      }
    }
  });

  it('rejects tensors outside the arena and mismatched sizes before any kernel runs', async () => {
    const e = await make({ threads: 1 });
    const x = e.alloc(8, 'x');
    const y = e.alloc(4, 'y');
    expect(() => kernels.axpy(e, 8, 1, x, y)).toThrowError(/axpy: y \(tensor y\) must hold at least 8 values, found 4/);
    const forged = { ptr: 1 << 30, size: 8, shape: [8], name: 'forged' };
    try {
      kernels.axpy(e, 8, 1, forged, x);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DdpmError);
      expect((err as DdpmError).code).toBe('OUT_OF_BOUNDS');
      expect((err as DdpmError).message).toContain('forged');
    }
    expect(() => kernels.axpy(e, -1, 1, x, x)).toThrowError(/n must be an integer >= 0, found -1/);
    expect(() => kernels.axpy(e, 4, NaN, x, x)).toThrowError(/a must be a finite number/);
  });

  it('plans memory against the limit before allocating', async () => {
    const e = await make({ threads: 1, memoryLimit: 32 * 2 ** 20, initialMemory: 1 << 20 });
    const before = e.memory.buffer.byteLength;
    expect(() => e.alloc([1024, 1024, 16], 'huge')).toThrowError(
      /tensor huge \[1024,1024,16\] needs \d+\.\d MiB of Wasm memory \(64\.0 MiB new\), limit 32\.0 MiB/,
    );
    expect(e.memory.buffer.byteLength).toBe(before);
    // growing within the limit works and views are refreshed
    const t = e.alloc(4 * 2 ** 20, 'big');
    e.view(t).fill(3);
    expect(e.read(t)[4 * 2 ** 20 - 1]).toBe(3);
  });

  it('a trapping worker makes the call fail with an error naming it; the pool keeps working', async () => {
    const e = await make({ threads: 2 });
    const n = 64;
    const x = e.upload(randomF32(n, 3), n, 'x');
    const y = e.upload(new Float32Array(n), n, 'y');
    // Unchecked call: worker 1 owns elements 32…63, whose addresses we push past the end of memory.
    const end = e.memory.buffer.byteLength;
    try {
      e.run(KERNEL.axpy_f32, [n, 1, x.ptr, end - 32 * 4 - 4]);
      expect.unreachable();
    } catch (err) {
      expect((err as DdpmError).code).toBe('WORKER_FAILED');
      // worker 1's slice, run by worker 1 — or by the calling thread if it got there first
      expect((err as Error).message).toMatch(
        /slice 1 of axpy_f32 failed on (worker 1|the calling thread): .*memory access out of bounds/,
      );
    }
    kernels.axpy(e, n, 2, x, y);
    expect(e.read(y)[40]).toBe(Math.fround(2 * e.read(x)[40]));
  });

  it('a dead worker delays nothing: the calling thread runs the slices it does not claim', async () => {
    const e = await make({ threads: 3 });
    const n = 999;
    const x = e.upload(randomF32(n, 3), n, 'x');
    const y = e.upload(new Float32Array(n), n, 'y');
    e.killWorkerForTest(2);
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 3; i++) kernels.axpy(e, n, 1, x, y);
    const want = e.read(x).map((v) => Math.fround(Math.fround(v + v) + v));
    expect(sameBits(e.read(y), want)).toBe(true);
  });

  it('a slice claimed by a worker that never finishes fails after the timeout instead of hanging', async () => {
    const e = await make({ threads: 2, callTimeoutMs: 300 });
    const n = 1 << 16; // large enough to go through the pool (small elementwise calls run on the caller alone)
    const x = e.upload(randomF32(n, 3), n, 'x');
    e.hangSliceForTest(1);
    expect(() => kernels.axpy(e, n, 1, x, x)).toThrowError(
      /1 slice\(s\) of axpy_f32 claimed by a worker did not finish within 300 ms/,
    );
    expect(() => kernels.axpy(e, n, 1, x, x)).toThrowError(/pool is unusable/);
  });

  it('refuses use after dispose', async () => {
    const e = await make({ threads: 2 });
    e.dispose();
    e.dispose();
    expect(() => e.alloc(4, 'x')).toThrowError(/disposed/);
  });
});
