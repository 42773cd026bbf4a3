// Typed wrapper for solver_combine_f32 (assembly/gaussian.ts): the linear combination every few-step
// solver is built from, out = a·x + Σ b_i·y_i + c·z, in float64 per element, rounded once to float32.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL } from '../engine/wasm-interface.generated.js';
import { checkInt, checkScalar, checkTensor } from './check.js';
import { splitU64, type RandomAddress } from './gaussian.js';

/** One term coef·tensor of a combination. */
export interface Term {
  t: Tensor;
  coef: number;
}

export interface CombineArgs {
  /** Rows and elements per row: every tensor is (N, D), except terms[0], which may be (N, stride0). */
  N: number;
  D: number;
  /** May be x or any term's tensor: each element is read before it is written. */
  out: Tensor; // (N, D)
  /** a·x; omit for none. */
  x?: Term; // (N, D)
  /** Up to four b_i·y_i, summed in this order. */
  terms?: readonly (Term | null | undefined)[];
  /** Row stride of terms[0] (≥ D): the model output with learned-variance channels is (N, 2D). Default D. */
  stride0?: number;
  /** c·z with z given, or drawn from Philox at (seed, stream, offset + i); omit for no noise. */
  noise?: { coef: number; z?: Tensor; random?: RandomAddress };
  /** Clamp the result to [−clip, clip] (x̂_0 with clip_sample). Default Infinity: none. */
  clip?: number;
}

/** out = clamp(a·x + b0·y0 + b1·y1 + b2·y2 + b3·y3 + c·z, ±clip), elementwise (see assembly/gaussian.ts). */
export function solverCombine(engine: Engine, a: CombineArgs): void {
  checkInt('solverCombine: N', a.N, 0);
  checkInt('solverCombine: D', a.D, 1);
  const total = a.N * a.D;
  const stride0 = a.stride0 ?? a.D;
  checkInt('solverCombine: stride0', stride0, a.D);
  checkTensor(engine, a.out, 'solverCombine: out', total);
  const terms = a.terms ?? [];
  if (terms.length > 4)
    throw new DdpmError('INVALID_ARGUMENT', `solverCombine: at most 4 terms, found ${terms.length}`);
  if (a.x) {
    checkTensor(engine, a.x.t, 'solverCombine: x', total);
    checkScalar('solverCombine: a', a.x.coef);
  }
  for (let i = 0; i < 4; i++) {
    const term = terms[i];
    if (term) {
      checkTensor(engine, term.t, `solverCombine: y${i}`, i === 0 ? (a.N - 1) * stride0 + a.D : total);
      checkScalar(`solverCombine: b${i}`, term.coef);
    }
  }
  const y = (i: number) => terms[i]?.t.ptr ?? 0;
  const b = (i: number) => terms[i]?.coef ?? 0;
  const nz = a.noise;
  let draw = 0;
  let rand: readonly [number, number, number, number, number, number] = [0, 0, 0, 0, 0, 0];
  if (nz) {
    checkScalar('solverCombine: c', nz.coef);
    if (nz.z) checkTensor(engine, nz.z, 'solverCombine: noise', total);
    else if (nz.random) {
      draw = 1;
      const r = nz.random;
      rand = [
        ...splitU64('solverCombine: seed', r.seed),
        ...splitU64('solverCombine: stream', r.stream ?? 0),
        ...splitU64('solverCombine: offset', r.offset ?? 0),
      ];
    } else throw new DdpmError('INVALID_ARGUMENT', 'solverCombine: noise needs z or random (seed, stream, offset)');
  }
  const clip = a.clip ?? Infinity;
  if (!(clip > 0))
    throw new DdpmError('INVALID_ARGUMENT', `solverCombine: clip must be > 0 (Infinity for none), found ${clip}`);
  engine.run(KERNEL.solver_combine_f32, [
    a.N,
    a.D,
    a.out.ptr,
    a.x ? a.x.t.ptr : 0,
    a.x ? a.x.coef : 0,
    y(0),
    stride0,
    b(0),
    y(1),
    b(1),
    y(2),
    b(2),
    y(3),
    b(3),
    nz?.z?.ptr ?? 0,
    nz ? nz.coef : 0,
    clip,
    draw,
    ...rand,
  ]);
}
