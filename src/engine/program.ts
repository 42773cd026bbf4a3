// Programs: a list of recorded kernel calls that one thread runs on its own, start to end, each call whole
// (ith = 0, nth = 1) — so a batch can be split over the threads for a whole forward pass, one pool round
// trip for all of it instead of one per kernel (UNet2DModel.forwardTensor, src/nn/unet.ts).
//
// Encoding (float64, like the control block's arguments: exact for i32 pointers and sizes and for f32
// scalars): [calls, then per call: kernel id, argument count, the arguments]. A program meant for thread
// slot s has every workspace argument moved to slot s's scratch, so programs run side by side never share
// packing buffers (whichever thread runs one).
import type { RecordedCall } from './engine.js';
import { KERNELS } from './wasm-interface.generated.js';

/** Kernel id used in the control block for "run the programs at args[ith]". */
export const OP_PROGRAM = -1;

/** Per kernel id: the index of its `ws` (workspace pointer) argument, or −1. */
const WS_ARG = KERNELS.map((k) => k.params.findIndex(([name]) => name === 'ws'));

/** The float64 words of a program of `calls` for scratch slot `slot` (see the encoding above). */
export function encodeProgram(
  calls: readonly RecordedCall[],
  workspace: { ptr: number; bytesPerThread: number },
  slot: number,
): Float64Array {
  let words = 1;
  for (const c of calls) words += 2 + c.args.length;
  const p = new Float64Array(words);
  p[0] = calls.length;
  let i = 1;
  for (const c of calls) {
    p[i++] = c.op;
    p[i++] = c.args.length;
    const ws = WS_ARG[c.op];
    for (let k = 0; k < c.args.length; k++) {
      const v = c.args[k];
      // a call recorded with thread 0's scratch (the calling thread runs whole calls with ith = 0)
      p[i++] = k === ws && v === workspace.ptr ? v + slot * workspace.bytesPerThread : v;
    }
  }
  return p;
}

/**
 * Runs the program at byte address `at` of `heap` with `fns` (the kernels by id). The same loop runs in
 * every worker (worker-loop.ts keeps a copy: it must be self-contained).
 */
export function runProgram(
  fns: readonly ((...a: number[]) => void)[],
  heap: Float64Array,
  at: number,
  a: number[],
): void {
  let i = at >>> 3;
  const calls = heap[i++];
  for (let c = 0; c < calls; c++) {
    const op = heap[i++];
    const n = heap[i++];
    a.length = n + 2;
    for (let k = 0; k < n; k++) a[k] = heap[i++];
    a[n] = 0;
    a[n + 1] = 1;
    fns[op].apply(null, a);
  }
}
