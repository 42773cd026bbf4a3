// Elementwise kernels over f32 vectors of length n, and the shape-moving ones (softmax rows, upsampling,
// channel broadcast, concatenation). Pointers are byte addresses into linear memory.
import { sliceStart, sliceEnd, CHUNK, madd } from './shared';
import { exp_f32, exp_f32x4, sigmoid_f32x4, silu_backward_f32x4, reduce_f32, RED_SUM, RED_DOT_DEV } from './math';

/** y[i] += a * x[i]   (n) */
export function axpy_f32(n: i32, a: f32, x: usize, y: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  const va = f32x4.splat(a);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, madd(va, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, a * load<f32>(x + o) + load<f32>(y + o));
  }
}

// ── Binary and scalar maps ───────────────────────────────────────────────────────────────────────────

const OP_ADD: i32 = 0;
const OP_MUL: i32 = 1;

// @ts-ignore: decorator
@inline
function zip(op: i32, n: i32, x: usize, y: usize, z: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    const a = v128.load(x + o);
    const b = v128.load(y + o);
    v128.store(z + o, op == OP_ADD ? f32x4.add(a, b) : f32x4.mul(a, b));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    const a = load<f32>(x + o);
    const b = load<f32>(y + o);
    store<f32>(z + o, op == OP_ADD ? a + b : a * b);
  }
}

/** z[i] = x[i] + y[i]   (n); z may be x or y. */
export function add_f32(n: i32, x: usize, y: usize, z: usize, ith: i32, nth: i32): void {
  zip(OP_ADD, n, x, y, z, ith, nth);
}

/** z[i] = x[i] · y[i]   (n); z may be x or y. Its backward is two more muls (dx = dz·y, dy = dz·x). */
export function mul_f32(n: i32, x: usize, y: usize, z: usize, ith: i32, nth: i32): void {
  zip(OP_MUL, n, x, y, z, ith, nth);
}

/** z[i] += x[i] · y[i]   (n), the product rounded before the add (not fused): the gradient of a product
 * accumulated, e.g. dropout's dx += dy ⊙ mask. z must not alias x or y. */
export function mul_acc_f32(n: i32, x: usize, y: usize, z: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    v128.store(z + o, f32x4.add(v128.load(z + o), f32x4.mul(v128.load(x + o), v128.load(y + o))));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    store<f32>(z + o, load<f32>(z + o) + load<f32>(x + o) * load<f32>(y + o));
  }
}

/** y[i] = a · x[i]   (n); y may be x (gradient clipping scales the gradients in place). */
export function scale_f32(n: i32, a: f32, x: usize, y: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  const va = f32x4.splat(a);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.mul(va, v128.load(x + o)));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, a * load<f32>(x + o));
  }
}

// ── SiLU ─────────────────────────────────────────────────────────────────────────────────────────────
// The scalar tails run the same lane code on a splat, so an element's bits do not depend on whether it
// falls in the vector body or the tail.

// @ts-ignore: decorator
@inline
function silu4(x: v128): v128 {
  return f32x4.mul(x, sigmoid_f32x4(x));
}

/** y = x·σ(x)   x, y: (n); y may be x. */
export function silu_f32(n: i32, x: usize, y: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, silu4(v128.load(x + o)));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, f32x4.extract_lane(silu4(f32x4.splat(load<f32>(x + o))), 0));
  }
}

/**
 * dx = beta·dx + dy·σ(x)·(1 + x·(1 − σ(x)))   x, dy, dx: (n); beta 0 (overwrite; dx may be dy) or 1
 * (accumulate into the gradient, the backward convention of every *_backward kernel).
 */
export function silu_backward_f32(n: i32, x: usize, dy: usize, dx: usize, beta: f32, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  let i = lo;
  if (beta == 0) {
    for (; i + 4 <= hi; i += 4) {
      const o = <usize>i << 2;
      v128.store(dx + o, silu_backward_f32x4(v128.load(x + o), v128.load(dy + o)));
    }
  } else {
    for (; i + 4 <= hi; i += 4) {
      const o = <usize>i << 2;
      v128.store(dx + o, f32x4.add(v128.load(dx + o), silu_backward_f32x4(v128.load(x + o), v128.load(dy + o))));
    }
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    const v = f32x4.extract_lane(silu_backward_f32x4(f32x4.splat(load<f32>(x + o)), f32x4.splat(load<f32>(dy + o))), 0);
    store<f32>(dx + o, beta == 0 ? v : load<f32>(dx + o) + v);
  }
}

// ── Row softmax ──────────────────────────────────────────────────────────────────────────────────────
// One thread owns each row, so the row's max and sums are reduced in one fixed order.

/** y[r] = softmax(scale · x[r]) for each row r   x, y: (R, L); y may be x. */
export function softmax_f32(R: i32, L: i32, scale: f32, x: usize, y: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(R, ith, nth, 1);
  const hi = sliceEnd(R, ith, nth, 1);
  const vs = f32x4.splat(scale);
  for (let r = lo; r < hi; r++) {
    const xr = x + ((<usize>r * <usize>L) << 2);
    const yr = y + ((<usize>r * <usize>L) << 2);
    // 1. m = max_i scale·x_i, so every exponent is ≤ 0 and nothing overflows
    let vm = f32x4.splat(-Infinity);
    let i = 0;
    // (pmax: one maxps. A NaN score is dropped from m here, but its exp is NaN, so the sum and every y_i
    // still come out NaN, as with Wasm's NaN-propagating max.)
    for (; i + 4 <= L; i += 4) vm = f32x4.pmax(vm, f32x4.mul(vs, v128.load(xr + (<usize>i << 2))));
    let m = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
    for (; i < L; i++) m = max(m, scale * load<f32>(xr + (<usize>i << 2)));
    // 2. y_i = e^(scale·x_i − m)
    const vmax = f32x4.splat(m);
    i = 0;
    for (; i + 4 <= L; i += 4) {
      const o = <usize>i << 2;
      v128.store(yr + o, exp_f32x4(f32x4.sub(f32x4.mul(vs, v128.load(xr + o)), vmax)));
    }
    for (; i < L; i++) {
      const o = <usize>i << 2;
      store<f32>(yr + o, exp_f32(scale * load<f32>(xr + o) - m));
    }
    // 3. y_i /= Σ_j y_j
    const inv = <f32>(1.0 / reduce_f32(RED_SUM, yr, 0, 0, L));
    const vinv = f32x4.splat(inv);
    i = 0;
    for (; i + 4 <= L; i += 4) {
      const o = <usize>i << 2;
      v128.store(yr + o, f32x4.mul(v128.load(yr + o), vinv));
    }
    for (; i < L; i++) {
      const o = <usize>i << 2;
      store<f32>(yr + o, load<f32>(yr + o) * inv);
    }
  }
}

/** dx[r] = scale · y[r] ⊙ (dy[r] − Σ_j dy[r,j]·y[r,j])   y, dy, dx: (R, L); dx overwritten, may be dy. */
export function softmax_backward_f32(R: i32, L: i32, scale: f32, y: usize, dy: usize, dx: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(R, ith, nth, 1);
  const hi = sliceEnd(R, ith, nth, 1);
  const vs = f32x4.splat(scale);
  for (let r = lo; r < hi; r++) {
    const off = (<usize>r * <usize>L) << 2;
    const yr = y + off;
    const dyr = dy + off;
    const dxr = dx + off;
    const d = <f32>reduce_f32(RED_DOT_DEV, dyr, yr, 0, L);
    const vd = f32x4.splat(d);
    let i = 0;
    for (; i + 4 <= L; i += 4) {
      const o = <usize>i << 2;
      v128.store(dxr + o, f32x4.mul(vs, f32x4.mul(v128.load(yr + o), f32x4.sub(v128.load(dyr + o), vd))));
    }
    for (; i < L; i++) {
      const o = <usize>i << 2;
      store<f32>(dxr + o, scale * (load<f32>(yr + o) * (load<f32>(dyr + o) - d)));
    }
  }
}

// ── Nearest 2× upsampling ────────────────────────────────────────────────────────────────────────────
// Input row r of the (N·C·H) rows of W becomes output rows 2r and 2r+1 of 2W: (n·C + c)·2H + 2h = 2r.

/** y[n,c,2h+a,2w+b] = x[n,c,h,w]   x: (N·C, H, W), y: (N·C, 2H, 2W); NC = N·C. */
export function upsample_nearest2x_f32(NC: i32, H: i32, W: i32, x: usize, y: usize, ith: i32, nth: i32): void {
  const rows = NC * H;
  const lo = sliceStart(rows, ith, nth, 1);
  const hi = sliceEnd(rows, ith, nth, 1);
  const rowBytes = <usize>W << 2;
  for (let r = lo; r < hi; r++) {
    const src = x + <usize>r * rowBytes;
    const dst0 = y + <usize>r * (rowBytes << 2);
    const dst1 = dst0 + (rowBytes << 1);
    let w = 0;
    for (; w + 4 <= W; w += 4) {
      const v = v128.load(src + (<usize>w << 2));
      const a = i32x4.shuffle(v, v, 0, 0, 1, 1);
      const b = i32x4.shuffle(v, v, 2, 2, 3, 3);
      const o = <usize>w << 3;
      v128.store(dst0 + o, a);
      v128.store(dst0 + o + 16, b);
      v128.store(dst1 + o, a);
      v128.store(dst1 + o + 16, b);
    }
    for (; w < W; w++) {
      const v = load<f32>(src + (<usize>w << 2));
      const o = <usize>w << 3;
      store<f32>(dst0 + o, v);
      store<f32>(dst0 + o + 4, v);
      store<f32>(dst1 + o, v);
      store<f32>(dst1 + o + 4, v);
    }
  }
}

/**
 * dx[n,c,h,w] = beta·dx + (dy[2h,2w] + dy[2h,2w+1]) + (dy[2h+1,2w] + dy[2h+1,2w+1])
 *   dy: (N·C, 2H, 2W), dx: (N·C, H, W); beta 0 (overwrite) or 1 (accumulate).
 */
export function upsample_nearest2x_backward_f32(NC: i32, H: i32, W: i32, dy: usize, dx: usize, beta: f32, ith: i32, nth: i32): void {
  const rows = NC * H;
  const lo = sliceStart(rows, ith, nth, 1);
  const hi = sliceEnd(rows, ith, nth, 1);
  const rowBytes = <usize>W << 2;
  for (let r = lo; r < hi; r++) {
    const dst = dx + <usize>r * rowBytes;
    const src0 = dy + <usize>r * (rowBytes << 2);
    const src1 = src0 + (rowBytes << 1);
    let w = 0;
    for (; w + 4 <= W; w += 4) {
      const o = <usize>w << 3;
      const a0 = v128.load(src0 + o);
      const a1 = v128.load(src0 + o + 16);
      const b0 = v128.load(src1 + o);
      const b1 = v128.load(src1 + o + 16);
      // even + odd lanes: the horizontal pair sums, in the same order as the scalar tail
      const top = f32x4.add(i32x4.shuffle(a0, a1, 0, 2, 4, 6), i32x4.shuffle(a0, a1, 1, 3, 5, 7));
      const bottom = f32x4.add(i32x4.shuffle(b0, b1, 0, 2, 4, 6), i32x4.shuffle(b0, b1, 1, 3, 5, 7));
      const v = f32x4.add(top, bottom);
      const d = dst + (<usize>w << 2);
      v128.store(d, beta == 0 ? v : f32x4.add(v128.load(d), v));
    }
    for (; w < W; w++) {
      const o = <usize>w << 3;
      const top = load<f32>(src0 + o) + load<f32>(src0 + o + 4);
      const bottom = load<f32>(src1 + o) + load<f32>(src1 + o + 4);
      const d = dst + (<usize>w << 2);
      store<f32>(d, beta == 0 ? top + bottom : load<f32>(d) + (top + bottom));
    }
  }
}

// ── Per-channel broadcast add (the time embedding added to every pixel of a ResNet block) ─────────────

/** x[n,c,:] += b[n,c]   b: (N·C), x: (N·C, HW); NC = N·C. */
export function add_channel_bias_f32(NC: i32, HW: i32, b: usize, x: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(NC, ith, nth, 1);
  const hi = sliceEnd(NC, ith, nth, 1);
  for (let p = lo; p < hi; p++) {
    const bias = load<f32>(b + (<usize>p << 2));
    const vb = f32x4.splat(bias);
    const xp = x + ((<usize>p * <usize>HW) << 2);
    let i = 0;
    for (; i + 4 <= HW; i += 4) {
      const o = <usize>i << 2;
      v128.store(xp + o, f32x4.add(v128.load(xp + o), vb));
    }
    for (; i < HW; i++) {
      const o = <usize>i << 2;
      store<f32>(xp + o, load<f32>(xp + o) + bias);
    }
  }
}

/** db[n,c] = beta·db[n,c] + Σ_hw dy[n,c,hw]   dy: (N·C, HW), db: (N·C); beta 0 (overwrite) or 1 (accumulate). */
export function add_channel_bias_backward_f32(NC: i32, HW: i32, dy: usize, db: usize, beta: f32, ith: i32, nth: i32): void {
  const lo = sliceStart(NC, ith, nth, 1);
  const hi = sliceEnd(NC, ith, nth, 1);
  for (let p = lo; p < hi; p++) {
    const v = <f32>reduce_f32(RED_SUM, dy + ((<usize>p * <usize>HW) << 2), 0, 0, HW);
    const d = db + (<usize>p << 2);
    store<f32>(d, beta == 0 ? v : load<f32>(d) + v);
  }
}

// ── Channel concatenation (U-Net skip connections) ───────────────────────────────────────────────────
// Both directions walk the output's N·(C1+C2) channel planes; each plane is owned by one thread.

// @ts-ignore: decorator
@inline
function concat_planes(split: bool, accumulate: bool, N: i32, C1: i32, C2: i32, HW: i32, a: usize, b: usize, y: usize, ith: i32, nth: i32): void {
  const C = C1 + C2;
  const lo = sliceStart(N * C, ith, nth, 1);
  const hi = sliceEnd(N * C, ith, nth, 1);
  const planeBytes = <usize>HW << 2;
  for (let p = lo; p < hi; p++) {
    const n = p / C;
    const c = p - n * C;
    const part = c < C1 ? a + <usize>(n * C1 + c) * planeBytes : b + <usize>(n * C2 + c - C1) * planeBytes;
    const whole = y + <usize>p * planeBytes;
    if (!split) memory.copy(whole, part, planeBytes);
    else if (!accumulate) memory.copy(part, whole, planeBytes);
    else {
      let i = 0;
      for (; i + 4 <= HW; i += 4) {
        const o = <usize>i << 2;
        v128.store(part + o, f32x4.add(v128.load(part + o), v128.load(whole + o)));
      }
      for (; i < HW; i++) {
        const o = <usize>i << 2;
        store<f32>(part + o, load<f32>(part + o) + load<f32>(whole + o));
      }
    }
  }
}

/** y = concat_C(a, b)   a: (N, C1, HW), b: (N, C2, HW), y: (N, C1+C2, HW). */
export function concat_channels_f32(N: i32, C1: i32, C2: i32, HW: i32, a: usize, b: usize, y: usize, ith: i32, nth: i32): void {
  concat_planes(false, false, N, C1, C2, HW, a, b, y, ith, nth);
}

/**
 * da, db = split_C(dy)   dy: (N, C1+C2, HW), da: (N, C1, HW), db: (N, C2, HW). With accumulate ≠ 0 the
 * parts are added (da += …): a skip connection's source also feeds the main path, and its gradient is
 * the sum of both.
 */
export function concat_channels_backward_f32(N: i32, C1: i32, C2: i32, HW: i32, dy: usize, da: usize, db: usize, accumulate: i32, ith: i32, nth: i32): void {
  if (accumulate != 0) concat_planes(true, true, N, C1, C2, HW, da, db, dy, ith, nth);
  else concat_planes(true, false, N, C1, C2, HW, da, db, dy, ith, nth);
}
