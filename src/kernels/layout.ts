// Layout checks shared by the kernel wrappers: NCHW sizes, and aliasing. An output either is exactly one
// of the inputs (where the kernel allows in-place use) or shares no byte with it: a partial overlap would
// make a kernel read values it has already overwritten, and the result depend on the thread count.
import { DdpmError } from '../errors.js';
import type { Tensor } from '../engine/memory.js';
import { checkInt } from './check.js';

/** N, C, H, W of an NCHW tensor, each ≥ 1. */
export interface NCHW {
  N: number;
  C: number;
  H: number;
  W: number;
}

/** Checks N, C, H, W and returns N·C·H·W. */
export function checkNCHW(op: string, s: NCHW): number {
  checkInt(`${op}: N`, s.N, 1);
  checkInt(`${op}: C`, s.C, 1);
  checkInt(`${op}: H`, s.H, 1);
  checkInt(`${op}: W`, s.W, 1);
  return s.N * s.C * s.H * s.W;
}

/** An argument as the check sees it: its name in messages, the tensor, and the elements the kernel touches. */
export type Span = readonly [what: string, t: Tensor, elements: number];

function overlaps(a: Span, b: Span): boolean {
  const [, ta, na] = a;
  const [, tb, nb] = b;
  return na > 0 && nb > 0 && ta.ptr < tb.ptr + nb * 4 && tb.ptr < ta.ptr + na * 4;
}

/**
 * Throws INVALID_ARGUMENT if `out` overlaps any of `others`, except that with `inPlace` it may be
 * exactly the same span as one of them (same start and length).
 */
export function checkNoOverlap(op: string, out: Span, others: readonly Span[], inPlace: boolean): void {
  for (const other of others) {
    if (!overlaps(out, other)) continue;
    if (inPlace && out[1].ptr === other[1].ptr && out[2] === other[2]) continue;
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${op}: ${out[0]} (tensor ${out[1].name}) overlaps ${other[0]} (tensor ${other[1].name}); ` +
        (inPlace ? 'it must be the same tensor or not overlap at all' : 'it must not overlap'),
    );
  }
}
