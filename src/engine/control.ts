// Layout of the control block: the one place in shared memory through which the calling thread hands a
// kernel call to the workers. One postMessage per kernel would cost ~50 µs; a generation counter bumped
// with Atomics and watched by spinning (then Atomics.wait) costs a few µs.

/** Byte address of the control block. Addresses below it stay zero so a null pointer never aliases data. */
export const CTL_BYTE = 1024;
/** Kernel arguments (f64: exact for i32 pointers/sizes and for f32 scalars). */
export const ARGS_BYTE = CTL_BYTE + 64;
export const MAX_ARGS = 48;
/** UTF-8 text of the first worker error. */
export const MSG_BYTE = CTL_BYTE + 512;
export const MSG_BYTES = 480;
/**
 * One Int32 per slice: the generation that last claimed it. A slice is run by whoever claims it first —
 * its worker, or the calling thread once its own slice is done — so a descheduled or sleeping worker
 * delays nothing. Results do not change: slice ith computes the same elements whoever runs it.
 */
export const CLAIMS_BYTE = CTL_BYTE + 1024;
export const MAX_THREADS = 256;
/** First byte the memory arena may hand out; everything below belongs to the engine. */
export const ARENA_BASE = 65536;

/** Int32 slots of the control block. */
export const GEN = 0; // generation: bumped once per dispatched call
export const OP = 1; // index of the kernel in the export list
export const NARGS = 2; // number of arguments in ARGS (before ith, nth)
export const NTH = 3; // threads taking part in this call
export const PENDING = 4; // slices 1…nth−1 not finished yet (whoever ran them)
export const ERR = 5; // 1 + index of the first worker that threw, 0 if none
export const STOP = 6; // non-zero: workers exit their loop
export const MSG_LEN = 7; // bytes of the error message at MSG_BYTE
export const SLOTS = 8;
