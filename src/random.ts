// Random numbers shared by every layer: splitmix32 for small host-side streams (initial weights, data
// order, the bound's timestep draws) and the 64-bit seed words the Philox4x32-10 kernels are keyed by.
// Both are integer-only, so the same seed gives the same bits in every runtime.
import { DdpmError } from './errors.js';

/** A 64-bit unsigned integer: a safe non-negative integer number, or a bigint below 2^64. */
export type U64 = number | bigint;

const TWO32 = 2 ** 32;

/** Splits a U64 into [lo, hi] u32 words (a Philox key or counter pair), or throws INVALID_ARGUMENT naming `what`. */
export function splitU64(what: string, v: U64): [number, number] {
  if (typeof v === 'bigint') {
    if (v < 0n || v >= 1n << 64n) throw new DdpmError('INVALID_ARGUMENT', `${what} must be in [0, 2^64), found ${v}`);
    return [Number(v & 0xffffffffn), Number(v >> 32n)];
  }
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new DdpmError('INVALID_ARGUMENT', `${what} must be a non-negative safe integer or a bigint, found ${v}`);
  }
  return [v % TWO32, Math.floor(v / TWO32)];
}

/** splitmix32: a small integer-only generator of uniforms in [0, 1), seeded by a u32. */
export function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}
