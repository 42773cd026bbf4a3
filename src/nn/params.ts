// Parameters in one contiguous block (llm.c style): gradients and the optimizer's two moments use the same
// layout, so AdamW, the gradient norm and EMA are each one kernel call over a flat range.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { splitmix32 } from '../random.js';

export interface ParamSpec {
  name: string;
  shape: number[];
}

export class ParamBlock {
  /** The whole block, (size). */
  readonly all: Tensor;
  readonly specs: readonly ParamSpec[];
  private readonly views = new Map<string, Tensor>();

  constructor(engine: Engine, specs: readonly ParamSpec[], label: string) {
    const size = specs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    this.all = engine.alloc(size, label);
    this.specs = specs;
    let ptr = this.all.ptr;
    for (const p of specs) {
      if (this.views.has(p.name))
        throw new DdpmError('INVALID_ARGUMENT', `${label}: parameter ${p.name} is declared twice`);
      const n = p.shape.reduce((a, b) => a * b, 1);
      this.views.set(p.name, { ptr, size: n, shape: p.shape, name: p.name, owner: this.all.owner });
      ptr += 4 * n;
    }
  }

  get size(): number {
    return this.all.size;
  }

  get(name: string): Tensor {
    const t = this.views.get(name);
    if (!t) throw new DdpmError('INVALID_ARGUMENT', `no parameter named ${name}`);
    return t;
  }

  has(name: string): boolean {
    return this.views.has(name);
  }
}

// Kept as a re-export for src/train/* until it imports ../random.js directly.

/**
 * PyTorch's default initialisation, by parameter name: conv and linear weights and biases
 * U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5), norm weights 1 and biases 0, embeddings N(0, 1).
 * `zeroOut` names parameters to start at zero (e.g. a final conv, so the untrained model predicts 0).
 */
export function initializeParams(
  engine: Engine,
  block: ParamBlock,
  seed: number,
  zeroOut: (name: string) => boolean = () => false,
): void {
  const next = splitmix32(seed);
  for (const { name } of block.specs) {
    const v = engine.view(block.get(name));
    const isNorm = /norm[^.]*\.(weight|bias)$/.test(name);
    if (zeroOut(name)) v.fill(0);
    else if (isNorm) v.fill(name.endsWith('.weight') ? 1 : 0);
    else if (name.endsWith('embedding.weight')) {
      for (let i = 0; i < v.length; i++) v[i] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    } else {
      // fan_in of the layer this belongs to: the weight's size / out features (bias shares its weight's)
      const weight = block.get(name.replace(/\.bias$/, '.weight'));
      const fanIn = weight.shape.slice(1).reduce((a, b) => a * b, 1);
      const bound = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < v.length; i++) v[i] = (2 * next() - 1) * bound;
    }
  }
}
