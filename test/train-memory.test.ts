// What a training step costs in engine memory: the backward pass recycles the gradients of activations
// it is done with and its temporaries (src/nn/layers.ts Ctx), so it adds a fraction of the forward pass's
// activations instead of a gradient and a temporary per activation (it added 1.27× before).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import { UNet2DModel } from '../src/nn/unet';
import { UNET_PRESETS } from '../src/nn/presets';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
});
afterAll(() => engine?.dispose());

describe('training memory', () => {
  it('backward adds at most half the forward activations; a second step allocates nothing new', () => {
    const N = 8;
    const model = UNet2DModel.create(
      engine,
      { sample_size: 16, in_channels: 1, out_channels: 1, ...UNET_PRESETS.tiny },
      0,
    );
    model.grads();
    const x = engine.upload(
      new Float32Array(N * 256).map((_, i) => Math.sin(i)),
      [N, 256],
      'x',
    );
    const dOut = engine.upload(new Float32Array(N * 256).fill(1e-3), [N, 256], 'dOut');
    const ts = Array.from({ length: N }, (_, n) => 10 * n);
    const step = () => {
      engine.view(model.grads().all).fill(0);
      const mark = engine.arena.mark();
      const fwd = model.trainForward(x, ts);
      const afterForward = engine.arena.mark();
      fwd.backward(dOut);
      const afterBackward = engine.arena.mark();
      engine.arena.release(mark);
      return {
        forward: afterForward - mark,
        backward: afterBackward - afterForward,
        grads: engine.read(model.grads().all),
      };
    };
    const a = step();
    console.log(`forward ${(a.forward / 2 ** 20).toFixed(2)} MiB, backward +${(a.backward / 2 ** 20).toFixed(2)} MiB`);
    expect(a.backward).toBeGreaterThan(0);
    expect(a.backward).toBeLessThan(0.5 * a.forward);
    const bytes = engine.memory.buffer.byteLength;
    const b = step();
    expect(engine.memory.buffer.byteLength).toBe(bytes);
    // the same gradients from recycled buffers (compared as bits; not vacuous: they are not all zero)
    expect(Buffer.compare(Buffer.from(b.grads.buffer), Buffer.from(a.grads.buffer))).toBe(0);
    expect(a.grads.some((g) => g !== 0)).toBe(true);
  });
});
