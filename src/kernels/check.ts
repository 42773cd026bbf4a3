// Argument checks shared by the kernel wrappers: they run before any kernel, so bad input is a typed
// error naming the argument, never a trap inside Wasm.
import { DdpmError, checkInt } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';

export { checkInt };

/** Checks that t lies in the engine's memory and holds at least `need` elements. */
export function checkTensor(engine: Engine, t: Tensor, what: string, need: number): void {
  engine.check(t, what);
  if (t.size < need) {
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `${what} (tensor ${t.name}) must hold at least ${need} values, found ${t.size}`,
    );
  }
}

export function checkScalar(what: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new DdpmError('INVALID_ARGUMENT', `${what} must be a finite number, found ${v}`);
  }
}
