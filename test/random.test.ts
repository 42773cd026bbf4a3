import { describe, expect, it } from 'vitest';
import { splitmix32, splitU64 } from '../src/random.js';
import { kernels } from '../src/index.js';

// An independent BigInt transcription of the generator: Weyl step, then murmur3's 32-bit finalizer.
function splitmix32Ref(seed: number, n: number): number[] {
  const M = (1n << 32n) - 1n;
  let s = BigInt(seed >>> 0);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b9n) & M;
    let z = s;
    z = ((z ^ (z >> 16n)) * 0x85ebca6bn) & M;
    z = ((z ^ (z >> 13n)) * 0xc2b2ae35n) & M;
    out.push(Number(z ^ (z >> 16n)) / 2 ** 32);
  }
  return out;
}

describe('random', () => {
  it('splitmix32 matches a BigInt transcription and stays in [0, 1)', () => {
    for (const seed of [0, 1, 42, 0xffffffff, 0x5bd1e995]) {
      const next = splitmix32(seed);
      const got = Array.from({ length: 64 }, next);
      expect(got).toEqual(splitmix32Ref(seed, 64));
      expect(got.every((u) => u >= 0 && u < 1)).toBe(true);
    }
  });

  it('splitU64 splits numbers and bigints into u32 words and names bad values', () => {
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      const [lo, hi] = splitU64('seed', v);
      expect(BigInt(lo) + (BigInt(hi) << 32n)).toBe(BigInt(v));
    }
    expect(splitU64('seed', (1n << 64n) - 1n)).toEqual([0xffffffff, 0xffffffff]);
    expect(() => splitU64('seed', -1)).toThrow(/seed must be a non-negative safe integer/);
    expect(() => splitU64('seed', 1.5)).toThrow(/seed/);
    expect(() => splitU64('seed', 1n << 64n)).toThrow(/seed must be in \[0, 2\^64\)/);
  });

  it('is the one re-exported by kernels', () => {
    expect(kernels.splitU64).toBe(splitU64);
  });
});
