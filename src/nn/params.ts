// Parameters in one contiguous block (llm.c style): gradients and the optimizer's two moments use the same
// layout, so AdamW, the gradient norm and EMA are each one kernel call over a flat range.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';

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
      if (this.views.has(p.name)) throw new DdpmError('INVALID_ARGUMENT', `${label}: parameter ${p.name} is declared twice`);
      const n = p.shape.reduce((a, b) => a * b, 1);
      this.views.set(p.name, { ptr, size: n, shape: p.shape, name: p.name });
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
