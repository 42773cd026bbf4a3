// Plain-JS twins of assembly/gaussian.ts, used as test oracles: Philox4x32-10 with 16-bit-limb products,
// Box–Muller with Math.log/Math.cos/Math.sin in float64, q_sample and the reverse step in float64.

const M0 = 0xd2511f53,
  M1 = 0xcd9e8d57,
  W0 = 0x9e3779b9,
  W1 = 0xbb67ae85;

/** [hi, lo] of the 64-bit product of two u32. */
function mulhilo(a: number, b: number): [number, number] {
  const aL = a & 0xffff,
    aH = a >>> 16,
    bL = b & 0xffff,
    bH = b >>> 16;
  const ll = aL * bL,
    lh = aL * bH,
    hl = aH * bL,
    hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const hi = (hh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
  return [hi, Math.imul(a, b) >>> 0];
}

export function philox4x32_10(ctr: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [h0, l0] = mulhilo(M0, c0);
    const [h1, l1] = mulhilo(M1, c2);
    [c0, c1, c2, c3] = [(h1 ^ c1 ^ k0) >>> 0, l1, (h0 ^ c3 ^ k1) >>> 0, l0];
  }
  return [c0, c1, c2, c3];
}

/** The normal at element e (a safe integer) of stream [lo, hi] under seed [lo, hi], in float64 before the
 * final rounding to f32. */
export function normalAt(seed: [number, number], stream: [number, number], e: number): number {
  const b = Math.floor(e / 4);
  const x = philox4x32_10([b % 2 ** 32, Math.floor(b / 2 ** 32), stream[0], stream[1]], seed);
  const pair = (e % 4) >> 1;
  const u1 = (x[2 * pair] + 0.5) / 2 ** 32;
  const u2 = x[2 * pair + 1] / 2 ** 32;
  const r = Math.sqrt(-2 * Math.log(u1));
  return e % 2 === 0 ? r * Math.cos(2 * Math.PI * u2) : r * Math.sin(2 * Math.PI * u2);
}

/** x_t = a[n]·x0 + b[n]·ε in float64.  x0, eps: (N, D)   a, b: (N) */
export function qSampleRef(
  N: number,
  D: number,
  x0: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  eps: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(N * D);
  for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) out[n * D + d] = a[n] * x0[n * D + d] + b[n] * eps[n * D + d];
  return out;
}

export interface StepRefCoef {
  ax: number;
  am: number;
  clip: number;
  c0: number;
  c1: number;
  c2: number;
  sigma: number | { learned: 'learned' } | { learned: 'learned_range'; minLog: number; maxLog: number };
}

/** The reverse step of gaussian_step_f32 in float64, with the coefficients taken as f32 (as the kernel
 * receives them).  m: (N, mStride)   x, z: (N, D) (z null: no noise) */
export function gaussianStepRef(
  N: number,
  D: number,
  m: ArrayLike<number>,
  x: ArrayLike<number>,
  z: ArrayLike<number> | null,
  c: StepRefCoef,
) {
  const f = Math.fround;
  const learned = typeof c.sigma === 'object';
  const stride = learned ? 2 * D : D;
  const prev = new Float64Array(N * D);
  const x0 = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < D; d++) {
      const i = n * D + d;
      const mv = m[n * stride + d];
      const p = Math.min(Math.max(f(c.ax) * x[i] + f(c.am) * mv, -f(c.clip)), f(c.clip));
      x0[i] = p;
      let y = f(c.c0) * p + f(c.c1) * x[i] + f(c.c2) * mv;
      if (z) {
        let s: number;
        if (typeof c.sigma === 'number') s = f(c.sigma);
        else if (c.sigma.learned === 'learned') s = Math.sqrt(m[n * stride + D + d]);
        else {
          const fr = (m[n * stride + D + d] + 1) / 2;
          s = Math.exp(0.5 * (fr * f(c.sigma.maxLog) + (1 - fr) * f(c.sigma.minLog)));
        }
        y += s * z[i];
      }
      prev[i] = y;
    }
  }
  return { prev, x0 };
}
