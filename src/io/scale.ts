// Nearest-neighbour upscaling for small samples (28-pixel digits are hard to see): `ddpm sample --scale K`.
// Browser-safe: plain arrays, no node: imports.
import { DdpmError } from '../errors.js';
import type { RgbaImage } from './image.js';

/** Largest factor accepted: a 64× grid of 64 digits is already 16k pixels wide. */
export const MAX_SCALE = 64;

/** `image` with every pixel repeated as a k×k block (k an integer in [1, 64]); k = 1 returns a copy. */
export function upscaleNearest(image: RgbaImage, k: number): RgbaImage {
  if (!Number.isInteger(k) || k < 1 || k > MAX_SCALE) {
    throw new DdpmError('INVALID_ARGUMENT', `upscaleNearest: the factor must be an integer in [1, ${MAX_SCALE}], found ${k}`);
  }
  const { width: w, height: h } = image;
  const W = w * k;
  const data = new Uint8ClampedArray(4 * W * h * k); // (h·k, w·k, 4)
  const row = new Uint8ClampedArray(4 * W); // one source row widened
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const px = image.data.subarray(4 * (y * w + x), 4 * (y * w + x) + 4);
      for (let d = 0; d < k; d++) row.set(px, 4 * (x * k + d));
    }
    for (let d = 0; d < k; d++) data.set(row, 4 * W * (y * k + d));
  }
  return { width: W, height: h * k, data };
}
