// Stand-in Denoisers for trainer tests: one whose output is a known function of its input (an oracle for
// the loss), and a wrapper that injects non-finite outputs or gradients on chosen calls.
import type { Engine, Tensor } from '../../src/index.js';
import type { Denoiser, TrainForward, TrainForwardOptions } from '../../src/nn/denoiser.js';
import { ParamBlock } from '../../src/nn/params.js';

/** out = k·x_t, with one unused parameter (zero gradient); records every call's x_t and timesteps. */
export class ScaledInputDenoiser implements Denoiser {
  readonly params: ParamBlock;
  private readonly g: ParamBlock;
  readonly calls: { xt: Float32Array; timesteps: number[] }[] = [];
  constructor(
    readonly engine: Engine,
    readonly sampleSize: number,
    readonly k: number,
  ) {
    this.params = new ParamBlock(engine, [{ name: 'unused', shape: [1] }], 'fake.params');
    this.g = new ParamBlock(engine, this.params.specs, 'fake.grads');
    engine.view(this.params.all).fill(0);
  }
  grads(): ParamBlock {
    return this.g;
  }
  async forward(x: Float32Array): Promise<Float32Array> {
    return x.map((v) => this.k * v);
  }
  trainForward(x: Tensor, timesteps: ArrayLike<number>): TrainForward {
    const xt = this.engine.read(x);
    this.calls.push({ xt, timesteps: Array.from(timesteps) });
    const out = this.engine.upload(
      xt.map((v) => this.k * v),
      x.size,
      'out',
    );
    return { out, backward: () => {} };
  }
}

/** Delegates to `inner`, but on trainForward call i ∈ nanOut the output gets a NaN, and i ∈ infGrad a gradient gets +∞. */
export class FaultyDenoiser implements Denoiser {
  calls = 0;
  constructor(
    readonly inner: Denoiser,
    readonly nanOut: Set<number>,
    readonly infGrad: Set<number> = new Set(),
  ) {}
  get engine(): Engine {
    return this.inner.engine;
  }
  get params(): ParamBlock {
    return this.inner.params;
  }
  get sampleSize(): number {
    return this.inner.sampleSize;
  }
  grads(): ParamBlock {
    return this.inner.grads();
  }
  forward(x: Float32Array, t: number | ArrayLike<number>): Promise<Float32Array> {
    return this.inner.forward(x, t);
  }
  trainForward(x: Tensor, timesteps: ArrayLike<number>, opts?: TrainForwardOptions): TrainForward {
    const i = this.calls++;
    const f = this.inner.trainForward(x, timesteps, opts);
    if (this.nanOut.has(i)) this.engine.view(f.out)[0] = NaN;
    return {
      out: f.out,
      backward: (dOut) => {
        f.backward(dOut);
        if (this.infGrad.has(i)) this.engine.view(this.grads().all)[0] = Infinity;
      },
    };
  }
}
