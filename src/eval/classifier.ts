// A small MNIST digit classifier built from the engine's own layers, to score generated digits (the
// fraction classified confidently, the class histogram) and to embed them for a Fréchet distance — the
// FID recipe with a network trained on the data set itself instead of Inception.
//
//   conv3×3 1→16            (N, 16, 28, 28) → SiLU
//   conv3×3 16→32 stride 2  (N, 32, 14, 14) → SiLU
//   conv3×3 32→32 stride 2  (N, 32, 7, 7)   → SiLU → flatten (N, 1568)
//   linear 1568→64          (N, 64)         → SiLU: the features
//   linear 64→10            (N, 10): the logits
//
// Shape letters: N batch, F features (64), K classes (10).
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { adamw } from '../kernels/optim.js';
import { blockTensors, loadBlock } from '../nn/param-tensors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { Ctx, conv, linear, siluAct, siluT } from '../nn/layers.js';
import { ParamBlock, initializeParams, type ParamSpec } from '../nn/params.js';
import { splitmix32 } from '../random.js';

export const SIDE = 28;
/** Pixels per digit. */
export const PIXELS = SIDE * SIDE;
/** F: width of the penultimate layer, the features the Fréchet distance compares. */
export const FEATURES = 64;
/** K: classes. */
export const CLASSES = 10;
/** Version of the weights file (its safetensors metadata `format`); a change in the network bumps it. */
export const CLASSIFIER_FORMAT = 'ddpm-wasm-digit-classifier-1';

const SPECS: ParamSpec[] = [
  { name: 'conv1.weight', shape: [16, 1, 3, 3] },
  { name: 'conv1.bias', shape: [16] },
  { name: 'conv2.weight', shape: [32, 16, 3, 3] },
  { name: 'conv2.bias', shape: [32] },
  { name: 'conv3.weight', shape: [32, 32, 3, 3] },
  { name: 'conv3.bias', shape: [32] },
  { name: 'fc1.weight', shape: [FEATURES, 32 * 7 * 7] },
  { name: 'fc1.bias', shape: [FEATURES] },
  { name: 'fc2.weight', shape: [CLASSES, FEATURES] },
  { name: 'fc2.bias', shape: [CLASSES] },
];

export interface ClassifierOutput {
  /** (N, K) softmax probabilities. */
  probs: Float32Array;
  /** (N, F) penultimate features. */
  features: Float32Array;
}

export interface ClassifierTrainForward {
  /** (N, K) logits, in the arena. */
  logits: Tensor;
  /** Backpropagates dL/d(logits) (N, K) into grads(). Call at most once. */
  backward(dLogits: Tensor): void;
}

export class DigitClassifier {
  readonly params: ParamBlock;
  private gradBlock: ParamBlock | null = null;
  /** What the weights file records (training settings, held-out accuracy), kept when loaded. */
  metadata: Record<string, string> = {};

  private constructor(readonly engine: Engine) {
    this.params = new ParamBlock(engine, SPECS, 'classifier.params');
  }

  /** Untrained, PyTorch's default initialisation, reproducible from `seed`. */
  static create(engine: Engine, seed = 0): DigitClassifier {
    const c = new DigitClassifier(engine);
    initializeParams(engine, c.params, seed);
    return c;
  }

  /** From the bytes toBytes() wrote; `file` names them in errors. */
  static fromBytes(engine: Engine, bytes: Uint8Array, file: string): DigitClassifier {
    const st = readSafetensors(bytes, file);
    const format = st.metadata.get('format');
    if (format !== CLASSIFIER_FORMAT) {
      throw new DdpmError(
        'FORMAT',
        `${file}: not a digit classifier of this version (metadata format ${JSON.stringify(format ?? null)}, expected "${CLASSIFIER_FORMAT}")`,
      );
    }
    const c = new DigitClassifier(engine);
    loadBlock(engine, c.params, st.tensors, file, 'the digit classifier', true);
    c.metadata = Object.fromEntries(st.metadata);
    return c;
  }

  /** safetensors bytes: the weights, with `format` and this.metadata as string metadata. */
  toBytes(): Uint8Array {
    return writeSafetensors(blockTensors(this.engine, this.params), { ...this.metadata, format: CLASSIFIER_FORMAT });
  }

  grads(): ParamBlock {
    this.gradBlock ??= new ParamBlock(this.engine, SPECS, 'classifier.grads');
    return this.gradBlock;
  }

  /** Training forward on x (N, 1, 28, 28) in engine memory; the caller brackets it with arena mark/release. */
  trainForward(x: Tensor): ClassifierTrainForward {
    const ctx = new Ctx(this.engine, this.params, this.grads());
    ctx.noGrad(x);
    const { logits } = this.forwardActs(ctx, x);
    return { logits, backward: (dLogits) => ctx.backward(logits, dLogits) };
  }

  /** Probabilities and features of `images` (N·784 values in [−1, 1]), `batch` digits per pass. */
  classify(images: Float32Array, batch = 256): ClassifierOutput {
    const N = checkImages(images, 'classify');
    const e = this.engine;
    const probs = new Float32Array(N * CLASSES); // (N, K)
    const features = new Float32Array(N * FEATURES); // (N, F)
    for (let i0 = 0; i0 < N; i0 += batch) {
      const nb = Math.min(batch, N - i0);
      const mark = e.arena.mark();
      try {
        const x = e.upload(images.subarray(i0 * PIXELS, (i0 + nb) * PIXELS), [nb, 1, SIDE, SIDE], 'digits');
        const out = this.forwardActs(new Ctx(e, this.params), x);
        features.set(e.view(out.features), i0 * FEATURES);
        probs.set(softmaxRows(e.view(out.logits), nb), i0 * CLASSES);
      } finally {
        e.arena.release(mark);
      }
    }
    return { probs, features };
  }

  private forwardActs(ctx: Ctx, x: Tensor): { features: Tensor; logits: Tensor } {
    const N = x.size / PIXELS;
    let h = siluAct(ctx, conv(ctx, 'conv1', { t: x, N, C: 1, H: SIDE, W: SIDE }, 16, 3), 'act1'); // (N, 16, 28, 28)
    h = siluAct(ctx, conv(ctx, 'conv2', h, 32, 3, 2), 'act2'); // (N, 32, 14, 14)
    h = siluAct(ctx, conv(ctx, 'conv3', h, 32, 3, 2), 'act3'); // (N, 32, 7, 7)
    const features = siluT(ctx, linear(ctx, 'fc1', h.t, N, h.C * h.H * h.W, FEATURES), 'features'); // (N, F)
    const logits = linear(ctx, 'fc2', features, N, FEATURES, CLASSES); // (N, K)
    return { features, logits };
  }
}

function checkImages(images: Float32Array, what: string): number {
  const N = images.length / PIXELS;
  if (!Number.isInteger(N) || N < 1)
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `DigitClassifier.${what}: ${images.length} values, expected N × 784 (28×28 digits) with N ≥ 1`,
    );
  return N;
}

/** Row-wise softmax of (N, K) logits, in float64 with the row maximum subtracted. */
export function softmaxRows(logits: Float32Array, N: number): Float32Array {
  const p = new Float32Array(N * CLASSES);
  const row = new Float64Array(CLASSES);
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let k = 0; k < CLASSES; k++) max = Math.max(max, logits[n * CLASSES + k]);
    let sum = 0;
    for (let k = 0; k < CLASSES; k++) sum += row[k] = Math.exp(logits[n * CLASSES + k] - max);
    for (let k = 0; k < CLASSES; k++) p[n * CLASSES + k] = row[k] / sum;
  }
  return p;
}

/**
 * Mean softmax cross-entropy of (N, K) logits against labels, and its gradient (softmax − onehot)/N,
 * in float64.
 */
export function softmaxCrossEntropy(
  logits: Float32Array,
  labels: ArrayLike<number>,
  N: number,
): { loss: number; dLogits: Float32Array } {
  const dLogits = new Float32Array(N * CLASSES); // (N, K)
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const o = n * CLASSES;
    let max = -Infinity;
    for (let k = 0; k < CLASSES; k++) max = Math.max(max, logits[o + k]);
    let sum = 0;
    for (let k = 0; k < CLASSES; k++) sum += Math.exp(logits[o + k] - max);
    const logSum = max + Math.log(sum);
    loss += logSum - logits[o + labels[n]];
    for (let k = 0; k < CLASSES; k++)
      dLogits[o + k] = (Math.exp(logits[o + k] - logSum) - (k === labels[n] ? 1 : 0)) / N;
  }
  return { loss: loss / N, dLogits };
}

export interface ClassifierTrainOptions {
  epochs: number;
  batchSize: number;
  /** AdamW learning rate; decays linearly to 0 over the run. */
  lr: number;
  weightDecay: number;
  /** Each training digit is shifted by up to this many pixels in x and y (background filled in). */
  maxShift: number;
  /** Initial weights, the data order and the shifts. */
  seed: number;
  onStep?: (p: { step: number; total: number; loss: number }) => void;
}

export const CLASSIFIER_TRAINING: ClassifierTrainOptions = {
  epochs: 6,
  batchSize: 64,
  lr: 2e-3,
  weightDecay: 1e-4,
  maxShift: 2,
  seed: 0,
};

/**
 * Trains a classifier on digits (N·784 values in [−1, 1]) with AdamW and softmax cross-entropy. Each digit
 * is shifted by up to maxShift pixels (with 8,000 digits this lifts held-out accuracy from 96.6% to 97.8%).
 * The data order (a Fisher–Yates shuffle per epoch) and the shifts come from splitmix32(seed, epoch):
 * same seed, same weights, for any thread count.
 */
export function trainClassifier(
  engine: Engine,
  images: Float32Array,
  labels: ArrayLike<number>,
  o: ClassifierTrainOptions = CLASSIFIER_TRAINING,
): DigitClassifier {
  const N = checkImages(images, 'train');
  if (labels.length !== N)
    throw new DdpmError('SHAPE_MISMATCH', `trainClassifier: ${labels.length} labels for ${N} digits`);
  for (let n = 0; n < N; n++) {
    if (!Number.isInteger(labels[n]) || labels[n] < 0 || labels[n] >= CLASSES)
      throw new DdpmError('INVALID_ARGUMENT', `trainClassifier: labels[${n}] = ${labels[n]} is not a digit 0…9`);
  }
  const e = engine;
  const clf = DigitClassifier.create(e, o.seed);
  const grads = clf.grads();
  const m = new ParamBlock(e, SPECS, 'classifier.adam.exp_avg');
  const v = new ParamBlock(e, SPECS, 'classifier.adam.exp_avg_sq');
  e.view(m.all).fill(0);
  e.view(v.all).fill(0);
  const B = Math.min(o.batchSize, N);
  const perEpoch = Math.floor(N / B); // the remainder of each shuffled epoch is left out
  const total = o.epochs * perEpoch;
  const order = Int32Array.from({ length: N }, (_, i) => i);
  const xb = new Float32Array(B * PIXELS); // (B, 1, 28, 28)
  const yb = new Uint8Array(B);
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const next = splitmix32((Math.imul(o.seed, 0x9e3779b9) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let b = 0; b < perEpoch; b++) {
      for (let k = 0; k < B; k++) {
        const i = order[b * B + k];
        const [dx, dy] = [
          Math.floor(next() * (2 * o.maxShift + 1)) - o.maxShift,
          Math.floor(next() * (2 * o.maxShift + 1)) - o.maxShift,
        ];
        shiftDigit(images.subarray(i * PIXELS, (i + 1) * PIXELS), dx, dy, xb.subarray(k * PIXELS, (k + 1) * PIXELS));
        yb[k] = labels[i];
      }
      e.view(grads.all).fill(0);
      const mark = e.arena.mark();
      let loss: number;
      try {
        const x = e.upload(xb, [B, 1, SIDE, SIDE], 'digits');
        const f = clf.trainForward(x);
        const ce = softmaxCrossEntropy(e.view(f.logits), yb, B);
        loss = ce.loss;
        f.backward(e.upload(ce.dLogits, [B, CLASSES], 'dlogits'));
      } finally {
        e.arena.release(mark);
      }
      step++;
      adamw(e, {
        params: clf.params.all,
        grads: grads.all,
        m: m.all,
        v: v.all,
        n: clf.params.size,
        step,
        lr: o.lr * (1 - (step - 1) / total),
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weightDecay: o.weightDecay,
      });
      o.onStep?.({ step, total, loss });
    }
  }
  clf.metadata = {
    trained_on: `${N} digits`,
    epochs: String(o.epochs),
    batch_size: String(B),
    lr: String(o.lr),
    weight_decay: String(o.weightDecay),
    max_shift: String(o.maxShift),
    seed: String(o.seed),
  };
  return clf;
}

/** out = the 28×28 digit moved right by dx and down by dy, uncovered pixels set to the background −1. */
function shiftDigit(digit: Float32Array, dx: number, dy: number, out: Float32Array): void {
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const sy = y - dy,
        sx = x - dx;
      out[y * SIDE + x] = sy >= 0 && sy < SIDE && sx >= 0 && sx < SIDE ? digit[sy * SIDE + sx] : -1;
    }
  }
}

/** Fraction of digits whose most probable class is their label. */
export function accuracy(probs: Float32Array, labels: ArrayLike<number>): number {
  const N = labels.length;
  let right = 0;
  for (let n = 0; n < N; n++) if (argmax(probs, n) === labels[n]) right++;
  return right / N;
}

/** The most probable class of row n of (N, K) probabilities (the first on ties). */
export function argmax(probs: Float32Array, n: number): number {
  let best = 0;
  for (let k = 1; k < CLASSES; k++) if (probs[n * CLASSES + k] > probs[n * CLASSES + best]) best = k;
  return best;
}
