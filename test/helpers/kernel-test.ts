// Shared machinery for the kernel tests: one engine per SIMD build × thread count, a runner that checks
// every thread count gives the same bits, central differences, and an error measure for sums with
// cancellation.
import { afterAll, beforeAll, expect } from 'vitest';
import { Engine, type SimdLevel } from '../../src/index.js';
import { sameBits } from './rng.js';

export const SIMD_LEVELS: readonly SimdLevel[] = ['simd', 'relaxed'];
export const THREAD_COUNTS = [1, 2, 3, 4];

export interface MatrixEntry {
  simd: SimdLevel;
  threads: number;
  engine: Engine;
}

/** Registers hooks that create the 2 × 4 engines before the file's tests and dispose them after. */
export function engineMatrix(): MatrixEntry[] {
  const list: MatrixEntry[] = [];
  beforeAll(async () => {
    for (const simd of SIMD_LEVELS) {
      for (const threads of THREAD_COUNTS) {
        // A short spin: eight engines' workers share this machine's few cores with other tests.
        list.push({ simd, threads, engine: await Engine.create({ simd, threads, spinUs: 20 }) });
      }
    }
  });
  afterAll(() => list.forEach((e) => e.engine.dispose()));
  return list;
}

/**
 * Runs `fn` (upload inputs, run the kernel, return copies of its outputs) on every engine, releasing what
 * it allocated; asserts that within each SIMD build all thread counts give the same bits; returns the
 * outputs per build.
 */
export function onAllEngines(
  list: MatrixEntry[],
  label: string,
  fn: (e: Engine) => Float32Array[],
): Record<SimdLevel, Float32Array[]> {
  const first = {} as Record<SimdLevel, Float32Array[]>;
  for (const { simd, threads, engine } of list) {
    const mark = engine.arena.mark();
    let out: Float32Array[];
    try {
      out = fn(engine);
    } finally {
      engine.arena.release(mark);
    }
    const ref = first[simd];
    if (!ref) first[simd] = out;
    else
      out.forEach((o, k) =>
        expect(sameBits(o, ref[k]), `${label}: ${simd}, ${threads} threads, output ${k} differs from 1 thread`).toBe(
          true,
        ),
      );
  }
  return first;
}

/**
 * ∂(Σ w ⊙ f(x))/∂x by central differences in float64, for every element of x (keep x small).
 * f must not keep x; x is restored after each probe.
 */
export function numericGrad(
  f: (x: Float64Array) => ArrayLike<number>,
  x: Float64Array,
  w: ArrayLike<number>,
  h = 1e-5,
): Float64Array {
  const loss = () => {
    const y = f(x);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i] * y[i];
    return s;
  };
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    x[i] = xi + h;
    const up = loss();
    x[i] = xi - h;
    const down = loss();
    x[i] = xi;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/** max |a − b| / mag over the elements: mag is the size of the terms that produced b (so cancellation is fair). */
export function maxScaledErr(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  mag: ArrayLike<number>,
  floor = 1e-30,
): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(mag[i], floor);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

/** Float64 copy, for the references. */
export const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);
