// Typed wrappers for assembly/elementwise.ts.
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { checkInt, checkScalar, checkTensor } from './check.js';

/** y[0:n] += a · x[0:n] */
export function axpy(engine: Engine, n: number, a: number, x: Tensor, y: Tensor): void {
  checkInt('axpy: n', n, 0);
  checkScalar('axpy: a', a);
  checkTensor(engine, x, 'axpy: x', n);
  checkTensor(engine, y, 'axpy: y', n);
  engine.run('axpy_f32', [n, a, x.ptr, y.ptr]);
}
