// Plain float64 reference for assembly/conv.ts (direct convolution loops): the test oracle.

export interface RefConvGeometry {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  k: number;
  stride: number;
  pad: [number, number, number, number]; // top, left, bottom, right
}

export function outSize(g: RefConvGeometry): { Ho: number; Wo: number } {
  const [top, left, bottom, right] = g.pad;
  return {
    Ho: Math.floor((g.H + top + bottom - g.k) / g.stride) + 1,
    Wo: Math.floor((g.W + left + right - g.k) / g.stride) + 1,
  };
}

/** Calls f(x index, w index, y index) for every term x·w of the convolution sums whose input pixel
 * lies inside the image (padding contributes zeros). */
function forEachTerm(g: RefConvGeometry, f: (xi: number, wi: number, yi: number) => void): void {
  const { N, Cin, H, W, Cout, k, stride } = g;
  const [top, left] = g.pad;
  const { Ho, Wo } = outSize(g);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Cout; co++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++)
          for (let ci = 0; ci < Cin; ci++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = oy * stride - top + ky;
                const ix = ox * stride - left + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                f(
                  ((n * Cin + ci) * H + iy) * W + ix,
                  ((co * Cin + ci) * k + ky) * k + kx,
                  ((n * Cout + co) * Ho + oy) * Wo + ox,
                );
              }
}

/** y = conv2d(x, w) + b: x (N, Cin, H, W), w (Cout, Cin, k, k), b (Cout) → y (N, Cout, Ho, Wo), and the
 * per-element scale Σ|x·w| + |b| that float32 rounding errors are relative to. */
export function conv2dRef(g: RefConvGeometry, x: ArrayLike<number>, w: ArrayLike<number>, b?: ArrayLike<number>) {
  const { Ho, Wo } = outSize(g);
  const P = Ho * Wo;
  const y = new Float64Array(g.N * g.Cout * P);
  const scale = new Float64Array(y.length);
  if (b) {
    for (let i = 0; i < y.length; i++) {
      const co = Math.floor(i / P) % g.Cout;
      y[i] = b[co];
      scale[i] = Math.abs(b[co]);
    }
  }
  forEachTerm(g, (xi, wi, yi) => {
    y[yi] += x[xi] * w[wi];
    scale[yi] += Math.abs(x[xi] * w[wi]);
  });
  return { y, scale };
}

/** Gradients of conv2dRef given dy (each with its error scale Σ|terms|). */
export function conv2dBackwardRef(
  g: RefConvGeometry,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  dy: ArrayLike<number>,
) {
  const dx = new Float64Array(x.length),
    dxScale = new Float64Array(x.length);
  const dw = new Float64Array(w.length),
    dwScale = new Float64Array(w.length);
  const db = new Float64Array(g.Cout),
    dbScale = new Float64Array(g.Cout);
  forEachTerm(g, (xi, wi, yi) => {
    dx[xi] += w[wi] * dy[yi];
    dxScale[xi] += Math.abs(w[wi] * dy[yi]);
    dw[wi] += x[xi] * dy[yi];
    dwScale[wi] += Math.abs(x[xi] * dy[yi]);
  });
  const { Ho, Wo } = outSize(g);
  const P = Ho * Wo;
  for (let i = 0; i < dy.length; i++) {
    const co = Math.floor(i / P) % g.Cout;
    db[co] += dy[i];
    dbScale[co] += Math.abs(dy[i]);
  }
  return { dx, dxScale, dw, dwScale, db, dbScale };
}
