import { describe, expect, it } from 'vitest';
import { loadMnist } from '../src/io/mnist.js';

describe('MNIST from the mnist package', () => {
  it('loads 10,000 digits on the 256-level grid, split 8,000 / 2,000 per class', async () => {
    const all = await loadMnist('all');
    const train = await loadMnist('train');
    const test = await loadMnist('test');
    expect(all.N).toBe(10000);
    expect(train.N + test.N).toBe(10000);
    expect(Math.abs(train.N - 8000)).toBeLessThan(10);
    for (let d = 0; d < 10; d++) expect(test.labels.filter((l) => l === d).length).toBeGreaterThan(150);
    // every value is byte/127.5 − 1 for an integer byte; backgrounds are −1 and strokes reach +1
    let min = Infinity,
      max = -Infinity,
      offGrid = 0;
    for (const v of all.images) {
      const byte = (v + 1) * 127.5;
      if (Math.abs(byte - Math.round(byte)) > 1e-3) offGrid++;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(offGrid).toBe(0);
    expect([min, max]).toEqual([-1, 1]);
    // the test split is the tail of each class: its first image is the train split's class-0 count later
    expect(test.images.subarray(0, 784)).toEqual(
      all.images.subarray(
        train.labels.filter((l) => l === 0).length * 784,
        (train.labels.filter((l) => l === 0).length + 1) * 784,
      ),
    );
  });
});
