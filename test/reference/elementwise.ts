// Plain float64 references for assembly/elementwise.ts: the test oracle. Written from the definitions,
// loop by loop, with no attempt at speed. Arrays are flat, row-major, shapes as in the comments.
type Arr = ArrayLike<number>;

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** x·σ(x)   (n) */
export function silu(x: Arr): Float64Array {
  return Float64Array.from(x, (v) => v * sigmoid(v));
}

/** dy·σ(x)·(1 + x·(1 − σ(x)))   (n) */
export function siluBackward(x: Arr, dy: Arr): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const s = sigmoid(v);
    return dy[i] * s * (1 + v * (1 - s));
  });
}

/** softmax(scale·x) per row   x: (rows, cols) */
export function softmax(x: Arr, rows: number, cols: number, scale = 1): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < cols; j++) m = Math.max(m, scale * x[r * cols + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += y[r * cols + j] = Math.exp(scale * x[r * cols + j] - m);
    for (let j = 0; j < cols; j++) y[r * cols + j] /= sum;
  }
  return y;
}

/** dx = scale · y ⊙ (dy − Σ_j dy_j·y_j) per row, y the forward output   (rows, cols) */
export function softmaxBackward(y: Arr, dy: Arr, rows: number, cols: number, scale = 1): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let d = 0;
    for (let j = 0; j < cols; j++) d += dy[r * cols + j] * y[r * cols + j];
    for (let j = 0; j < cols; j++) dx[r * cols + j] = scale * y[r * cols + j] * (dy[r * cols + j] - d);
  }
  return dx;
}

/** y[p, 2h+a, 2w+b] = x[p, h, w]   x: (P, H, W) with P = N·C → (P, 2H, 2W) */
export function upsampleNearest2x(x: Arr, P: number, H: number, W: number): Float64Array {
  const y = new Float64Array(P * 4 * H * W);
  for (let p = 0; p < P; p++)
    for (let i = 0; i < 2 * H; i++)
      for (let j = 0; j < 2 * W; j++) y[(p * 2 * H + i) * 2 * W + j] = x[(p * H + (i >> 1)) * W + (j >> 1)];
  return y;
}

/** dx[p, h, w] = Σ over the output pixels copied from it   dy: (P, 2H, 2W) → (P, H, W) */
export function upsampleNearest2xBackward(dy: Arr, P: number, H: number, W: number): Float64Array {
  const dx = new Float64Array(P * H * W);
  for (let p = 0; p < P; p++)
    for (let i = 0; i < 2 * H; i++)
      for (let j = 0; j < 2 * W; j++) dx[(p * H + (i >> 1)) * W + (j >> 1)] += dy[(p * 2 * H + i) * 2 * W + j];
  return dx;
}

/** x[p, :] + bias[p]   bias: (P), x: (P, HW) */
export function addChannelBias(x: Arr, bias: Arr, _P: number, HW: number): Float64Array {
  return Float64Array.from(x, (v, i) => v + bias[Math.floor(i / HW)]);
}

/** dbias[p] = Σ_hw dy[p, hw]   dy: (P, HW) → (P) */
export function addChannelBiasBackward(dy: Arr, P: number, HW: number): Float64Array {
  const db = new Float64Array(P);
  for (let i = 0; i < P * HW; i++) db[Math.floor(i / HW)] += dy[i];
  return db;
}

/** torch.cat([a, b], 1)   a: (N, C1, HW), b: (N, C2, HW) → (N, C1 + C2, HW) */
export function concatChannels(a: Arr, b: Arr, N: number, C1: number, C2: number, HW: number): Float64Array {
  const C = C1 + C2;
  const y = new Float64Array(N * C * HW);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < HW; i++)
        y[(n * C + c) * HW + i] = c < C1 ? a[(n * C1 + c) * HW + i] : b[(n * C2 + c - C1) * HW + i];
  return y;
}

/** The split of dy into the parts of a and b   dy: (N, C1 + C2, HW) → (N, C1, HW), (N, C2, HW) */
export function concatChannelsBackward(
  dy: Arr,
  N: number,
  C1: number,
  C2: number,
  HW: number,
): [Float64Array, Float64Array] {
  const C = C1 + C2;
  const da = new Float64Array(N * C1 * HW);
  const db = new Float64Array(N * C2 * HW);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < HW; i++) {
        const v = dy[(n * C + c) * HW + i];
        if (c < C1) da[(n * C1 + c) * HW + i] = v;
        else db[(n * C2 + c - C1) * HW + i] = v;
      }
  return [da, db];
}
