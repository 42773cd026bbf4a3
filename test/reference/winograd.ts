// Plain reference for assembly/winograd.ts: Winograd F(m×m, 3×3) for 3×3, stride 1, padding 1 convs written
// with the textbook matrices (Lavin & Gray 2016) and plain loops. `round` is applied after every arithmetic
// result: the identity gives the float64 algorithm (equal to the direct conv up to ~1e-15, which checks the
// matrices), Math.fround a float32 emulation in the kernel's formulation (its rounding error is the one
// Winograd adds, independent of our kernel's code).

const BT: Record<2 | 4, number[][]> = {
  2: [
    [1, 0, -1, 0],
    [0, 1, 1, 0],
    [0, -1, 1, 0],
    [0, 1, 0, -1],
  ],
  4: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
};
const G: Record<2 | 4, number[][]> = {
  2: [
    [1, 0, 0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0, 0, 1],
  ],
  4: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
};
const AT: Record<2 | 4, number[][]> = {
  2: [
    [1, 1, 1, 0],
    [0, 1, -1, -1],
  ],
  4: [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
  ],
};

export interface RefWinogradGeometry {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
}

type Round = (v: number) => number;
const exact: Round = (v) => v;

/** L · X · Rᵀ for small dense matrices (X: rows(L)' × cols), each product and sum rounded. */
function sandwich(L: number[][], X: number[][], R: number[][], round: Round): number[][] {
  const LX = L.map((l) =>
    X[0].map((_, c) => l.reduce((s, lk, k) => (lk === 0 ? s : round(s + round(lk * X[k][c]))), 0)),
  );
  return LX.map((row) => R.map((r) => r.reduce((s, rk, k) => (rk === 0 ? s : round(s + round(rk * row[k]))), 0)));
}

/**
 * y = conv2d(x, w) + b (3×3, stride 1, padding 1) by Winograd F(m×m, 3×3): x (N, Cin, H, W), w (Cout, Cin, 3, 3),
 * b (Cout) → y (N, Cout, H, W); with abs, the same sums over absolute values (the error scale). The filter transform is always exact (then rounded once, as the kernel's
 * float64 transform is); `round` applies to the input transform, the channel sums and the output transform.
 */
export function winogradConvRef(
  m: 2 | 4,
  g: RefWinogradGeometry,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | undefined,
  round: Round = exact,
  abs = false,
): Float64Array {
  const { N, Cin, H, W, Cout } = g;
  const a = m + 2;
  // abs: every matrix and value replaced by its absolute value — the error scale of the algorithm
  // (each rounding error is at most 2⁻²⁴ times the magnitude of what is summed).
  const mat = (M: number[][]) => (abs ? M.map((r) => r.map(Math.abs)) : M);
  const val = (v: number) => (abs ? Math.abs(v) : v);
  const [BTm, Gm, ATm] = [mat(BT[m]), mat(G[m]), mat(AT[m])];
  const U: number[][][] = []; // [co·Cin + ci] α×α
  for (let co = 0; co < Cout; co++)
    for (let ci = 0; ci < Cin; ci++) {
      const f = [0, 1, 2].map((ky) => [0, 1, 2].map((kx) => val(w[((co * Cin + ci) * 3 + ky) * 3 + kx])));
      U.push(sandwich(Gm, f, Gm, exact).map((r) => r.map(round)));
    }
  const y = new Float64Array(N * Cout * H * W);
  for (let n = 0; n < N; n++)
    for (let ty = 0; ty * m < H; ty++)
      for (let tx = 0; tx * m < W; tx++) {
        // V[ci] = Bᵀ d B for the α×α patch with corner (m·ty − 1, m·tx − 1)
        const V = [];
        for (let ci = 0; ci < Cin; ci++) {
          const d = [];
          for (let r = 0; r < a; r++) {
            const iy = m * ty - 1 + r;
            const row = [];
            for (let c = 0; c < a; c++) {
              const ix = m * tx - 1 + c;
              row.push(iy >= 0 && iy < H && ix >= 0 && ix < W ? val(x[((n * Cin + ci) * H + iy) * W + ix]) : 0);
            }
            d.push(row);
          }
          V.push(sandwich(BTm, d, BTm, round));
        }
        for (let co = 0; co < Cout; co++) {
          const Mx = [];
          for (let i = 0; i < a; i++) {
            const row = [];
            for (let j = 0; j < a; j++) {
              let s = 0;
              for (let ci = 0; ci < Cin; ci++) s = round(s + round(U[co * Cin + ci][i][j] * V[ci][i][j]));
              row.push(s);
            }
            Mx.push(row);
          }
          const Y = sandwich(ATm, Mx, ATm, round);
          for (let i = 0; i < m; i++)
            for (let j = 0; j < m; j++) {
              const oy = m * ty + i,
                ox = m * tx + j;
              if (oy < H && ox < W) y[((n * Cout + co) * H + oy) * W + ox] = round(Y[i][j] + (b ? val(b[co]) : 0));
            }
        }
      }
  return y;
}
