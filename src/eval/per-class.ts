// Quality of a class-conditional model, class by class: sample i asks for digit i mod 10, and the
// classifier says whether it got one. `ddpm eval --per-class` and scripts/guidance-sweep.mjs report these.
import { DdpmError } from '../errors.js';
import { CLASSES, argmax } from './classifier.js';

/**
 * (n) the requested label of each sample: i mod K. Interleaved rather than in blocks so that the first m
 * samples of a run of n are the run of m (sample i's noise does not depend on n either), and every class
 * has ⌊n/K⌋ or ⌈n/K⌉ samples.
 */
export function requestedLabels(n: number, K = CLASSES): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i % K);
}

/** One class's numbers. */
export interface ClassScore {
  /** The requested class. */
  label: number;
  /** Samples asked for with it. */
  n: number;
  /** Fraction the classifier assigns to `label` (its most probable class). */
  accuracy: number;
  /** Fraction whose top probability is ≥ the threshold (whatever the class). */
  confident: number;
}

export interface PerClassScores {
  classes: ClassScore[];
  /** Means over the classes (each class weighs the same, whatever its count). */
  meanAccuracy: number;
  meanConfident: number;
}

/** Per-class accuracy and confidence of (N, 10) probabilities for samples requested as `labels` (N). */
export function perClassScores(probs: Float32Array, labels: ArrayLike<number>, threshold = 0.9): PerClassScores {
  const N = labels.length;
  if (probs.length !== N * CLASSES)
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `perClassScores: ${probs.length} probabilities for ${N} labels of ${CLASSES} classes`,
    );
  const count = new Float64Array(CLASSES),
    right = new Float64Array(CLASSES),
    sure = new Float64Array(CLASSES);
  for (let i = 0; i < N; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= CLASSES)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `perClassScores: labels[${i}] = ${c} is not a class in [0, ${CLASSES - 1}]`,
      );
    const k = argmax(probs, i);
    count[c]++;
    if (k === c) right[c]++;
    if (probs[i * CLASSES + k] >= threshold) sure[c]++;
  }
  const classes: ClassScore[] = [];
  for (let c = 0; c < CLASSES; c++)
    if (count[c] > 0)
      classes.push({ label: c, n: count[c], accuracy: right[c] / count[c], confident: sure[c] / count[c] });
  if (!classes.length) throw new DdpmError('INVALID_ARGUMENT', 'perClassScores: no samples');
  const mean = (f: (s: ClassScore) => number) => classes.reduce((a, s) => a + f(s), 0) / classes.length;
  return { classes, meanAccuracy: mean((s) => s.accuracy), meanConfident: mean((s) => s.confident) };
}
