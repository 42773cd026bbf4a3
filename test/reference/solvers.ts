// Plain float64 twins of the few-step solvers' updates (DPM-Solver++, UniPC, Euler, Euler ancestral,
// Heun), written straight from diffusers v0.32's formulas over arrays — no kernel, no coefficient folding.
// Test oracles: the fused-kernel path must agree with them to float32 rounding.

export type Vec = Float64Array;
export type Pred = 'epsilon' | 'sample' | 'v_prediction';

const map2 = (a: ArrayLike<number>, b: ArrayLike<number>, f: (x: number, y: number) => number): Vec =>
  Float64Array.from(a, (x, i) => f(x, b[i]));

function alphaSigma(s: number): [number, number] {
  const a = 1 / Math.sqrt(s * s + 1);
  return [a, s * a];
}
const lambda = (s: number) => {
  const [a, st] = alphaSigma(s);
  return Math.log(a) - Math.log(st);
};

/** DPM-Solver++ convert_model_output: the data prediction (VP form). */
export function dpmX0(pred: Pred, s: number, x: ArrayLike<number>, m: ArrayLike<number>): Vec {
  const [a, st] = alphaSigma(s);
  if (pred === 'epsilon') return map2(x, m, (xv, mv) => (xv - st * mv) / a);
  if (pred === 'v_prediction') return map2(x, m, (xv, mv) => a * xv - st * mv);
  return Float64Array.from(m);
}

/** One DPM-Solver++ update of `order` from sigmas[i] to sigmas[i + 1]; hist = [m0 (newest), m1, m2]. */
export function dpmUpdate(
  o: { order: number; sde: boolean; solverType: 'midpoint' | 'heun' },
  sigmas: number[],
  i: number,
  x: ArrayLike<number>,
  hist: ArrayLike<number>[],
  z: ArrayLike<number> | null,
): Vec {
  const [at, st] = alphaSigma(sigmas[i + 1]);
  const [, ss0] = alphaSigma(sigmas[i]);
  const lt = lambda(sigmas[i + 1]),
    l0 = lambda(sigmas[i]);
  const h = lt - l0;
  const out = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) {
    const m0 = hist[0][e];
    let v: number;
    if (o.order === 1) {
      v = o.sde
        ? (st / ss0) * Math.exp(-h) * x[e] + at * (1 - Math.exp(-2 * h)) * m0
        : (st / ss0) * x[e] - at * (Math.exp(-h) - 1) * m0;
    } else if (o.order === 2) {
      const l1 = lambda(sigmas[i - 1]);
      const r0 = (l0 - l1) / h;
      const D1 = (1 / r0) * (m0 - hist[1][e]);
      if (!o.sde) {
        v =
          (st / ss0) * x[e] -
          at * (Math.exp(-h) - 1) * m0 +
          (o.solverType === 'midpoint'
            ? -0.5 * (at * (Math.exp(-h) - 1)) * D1
            : at * ((Math.exp(-h) - 1) / h + 1) * D1);
      } else {
        v =
          (st / ss0) * Math.exp(-h) * x[e] +
          at * (1 - Math.exp(-2 * h)) * m0 +
          (o.solverType === 'midpoint'
            ? 0.5 * (at * (1 - Math.exp(-2 * h))) * D1
            : at * ((1 - Math.exp(-2 * h)) / (-2 * h) + 1) * D1);
      }
    } else {
      const l1 = lambda(sigmas[i - 1]),
        l2 = lambda(sigmas[i - 2]);
      const r0 = (l0 - l1) / h,
        r1 = (l1 - l2) / h;
      const D10 = (1 / r0) * (m0 - hist[1][e]),
        D11 = (1 / r1) * (hist[1][e] - hist[2][e]);
      const D1 = D10 + (r0 / (r0 + r1)) * (D10 - D11);
      const D2 = (1 / (r0 + r1)) * (D10 - D11);
      v = o.sde
        ? (st / ss0) * Math.exp(-h) * x[e] +
          at * (1 - Math.exp(-2 * h)) * m0 +
          at * ((1 - Math.exp(-2 * h)) / (-2 * h) + 1) * D1 +
          at * ((1 - Math.exp(-2 * h) - 2 * h) / (2 * h) ** 2 - 0.5) * D2
        : (st / ss0) * x[e] -
          at * (Math.exp(-h) - 1) * m0 +
          at * ((Math.exp(-h) - 1) / h + 1) * D1 -
          at * ((Math.exp(-h) - 1 + h) / h ** 2 - 0.5) * D2;
    }
    if (o.sde && z) v += st * Math.sqrt(1 - Math.exp(-2 * h)) * z[e];
    out[e] = v;
  }
  return out;
}

function solveSmall(A: number[][], b: number[]): number[] {
  // Cramer's rule (k ≤ 3): independent of the elimination the library uses.
  const det = (M: number[][]): number =>
    M.length === 1
      ? M[0][0]
      : M.length === 2
        ? M[0][0] * M[1][1] - M[0][1] * M[1][0]
        : M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) -
          M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
          M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]);
  const d = det(A);
  return b.map((_, c) => det(A.map((row, r) => row.map((v, k) => (k === c ? b[r] : v)))) / d);
}

/** UniPC's B(h) update (bh1/bh2; data prediction, or noise prediction with predictX0 false): predictor (corrector = false) from sigmas[i] to [i + 1]
 * with hist = [m0, m1, …], or corrector at sigmas[i] from [i − 1] with the new output mt. */
export function unipcUpdate(
  o: { order: number; bh: 'bh1' | 'bh2'; corrector: boolean; predictX0?: boolean },
  sigmas: number[],
  i: number,
  x: ArrayLike<number>,
  hist: ArrayLike<number>[],
  mt: ArrayLike<number> | null,
): Vec {
  const [tIdx, sIdx] = o.corrector ? [i, i - 1] : [i + 1, i];
  const [at, st] = alphaSigma(sigmas[tIdx]);
  const [as0, ss0] = alphaSigma(sigmas[sIdx]);
  const h = lambda(sigmas[tIdx]) - lambda(sigmas[sIdx]);
  const x0 = o.predictX0 ?? true;
  const p = o.order;
  const rks: number[] = [];
  for (let k = 1; k < p; k++) rks.push((lambda(sigmas[sIdx - k]) - lambda(sigmas[sIdx])) / h);
  rks.push(1);
  const hh = x0 ? -h : h;
  const hPhi1 = Math.expm1(hh);
  let hPhiK = hPhi1 / hh - 1;
  let fact = 1;
  const Bh = o.bh === 'bh1' ? hh : Math.expm1(hh);
  const R: number[][] = [],
    b: number[] = [];
  for (let k = 1; k <= p; k++) {
    R.push(rks.map((r) => r ** (k - 1)));
    b.push((hPhiK * fact) / Bh);
    fact *= k + 1;
    hPhiK = hPhiK / hh - 1 / fact;
  }
  let rhos: number[];
  if (o.corrector) rhos = p === 1 ? [0.5] : solveSmall(R, b);
  else
    rhos =
      p === 1
        ? []
        : p === 2
          ? [0.5]
          : solveSmall(
              R.slice(0, -1).map((r) => r.slice(0, -1)),
              b.slice(0, -1),
            );
  const out = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) {
    const m0 = hist[0][e];
    let res = 0;
    for (let k = 1; k < p; k++) res += rhos[k - 1] * ((hist[k][e] - m0) / rks[k - 1]);
    if (o.corrector) res += rhos[rhos.length - 1] * (mt![e] - m0);
    const c = x0 ? at : st;
    out[e] = (x0 ? st / ss0 : at / as0) * x[e] - c * hPhi1 * m0 - (p === 1 && !o.corrector ? 0 : c * Bh * res);
  }
  return out;
}

/** x̂_0 of the σ-space samplers. */
export function sigmaX0(pred: Pred, s: number, x: ArrayLike<number>, m: ArrayLike<number>): Vec {
  if (pred === 'epsilon') return map2(x, m, (xv, mv) => xv - s * mv);
  if (pred === 'v_prediction') return map2(x, m, (xv, mv) => mv * (-s / Math.sqrt(s * s + 1)) + xv / (s * s + 1));
  return Float64Array.from(m);
}

/** Euler from sigmas[i] to sigmas[i + 1]. */
export function eulerUpdate(sigmas: number[], i: number, x: ArrayLike<number>, x0: ArrayLike<number>): Vec {
  const s = sigmas[i],
    dt = sigmas[i + 1] - s;
  return map2(x, x0, (xv, pv) => xv + ((xv - pv) / s) * dt);
}

/** Euler ancestral from sigmas[i] to sigmas[i + 1] with noise z. */
export function eulerAncestralUpdate(
  sigmas: number[],
  i: number,
  x: ArrayLike<number>,
  x0: ArrayLike<number>,
  z: ArrayLike<number>,
): Vec {
  const sf = sigmas[i],
    stt = sigmas[i + 1];
  const up = Math.sqrt((stt ** 2 * (sf ** 2 - stt ** 2)) / sf ** 2);
  const down = Math.sqrt(stt ** 2 - up ** 2);
  return Float64Array.from(x, (xv, e) => xv + ((xv - x0[e]) / sf) * (down - sf) + up * z[e]);
}

/** Heun's corrector: x_saved + dt·(d_prev + (x − x0)/σ_next)/2. */
export function heunCorrect(
  xSaved: ArrayLike<number>,
  dPrev: ArrayLike<number>,
  dt: number,
  sigmaNext: number,
  x: ArrayLike<number>,
  x0: ArrayLike<number>,
): Vec {
  return Float64Array.from(xSaved, (xs, e) => xs + dt * ((dPrev[e] + (x[e] - x0[e]) / sigmaNext) / 2));
}

/** The combine kernel's definition in float64: clamp(a·x + Σ b_i·y_i + c·z, ±clip), then float32. */
export function combineRef(
  x: ArrayLike<number> | null,
  a: number,
  ys: (ArrayLike<number> | null)[],
  bs: number[],
  z: ArrayLike<number> | null,
  c: number,
  n: number,
  clip = Infinity,
): Float64Array {
  const out = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    let v = x ? a * x[e] : 0;
    ys.forEach((y, k) => {
      if (y) v += bs[k] * y[e];
    });
    if (z) v += c * z[e];
    out[e] = Math.fround(Math.min(Math.max(v, -clip), clip));
  }
  return out;
}

/** UniPC's noise prediction ε̂ (predict_x0 = false) of the model output. */
export function unipcEps(pred: Pred, s: number, x: ArrayLike<number>, m: ArrayLike<number>): Vec {
  const [a, st] = alphaSigma(s);
  if (pred === 'epsilon') return Float64Array.from(m);
  if (pred === 'sample') return map2(x, m, (xv, mv) => (xv - a * mv) / st);
  return map2(x, m, (xv, mv) => a * mv + st * xv);
}
