/** Every failure the library reports is a DdpmError: a stable `code` to branch on, and a message that
 * names the file, tensor or argument, what was expected and what was found. */
export type DdpmErrorCode =
  | 'INVALID_ARGUMENT' // a value outside its domain (negative size, unknown option …)
  | 'SHAPE_MISMATCH' // tensor sizes that do not fit the operation
  | 'OUT_OF_BOUNDS' // a pointer/tensor that does not lie inside the engine's memory
  | 'OUT_OF_MEMORY' // a memory plan larger than the limit, or a failed grow
  | 'UNSUPPORTED' // the runtime lacks a needed feature (SIMD, threads …)
  | 'WASM_VERSION' // the .wasm build does not match this JS
  | 'WORKER_FAILED' // a worker trapped, died or failed to start
  | 'DISPOSED' // the engine was disposed
  | 'INVALID_SCHEDULE'
  | 'INVALID_TIMESTEP'
  | 'NON_FINITE'
  | 'FORMAT' // a malformed file
  | 'IO' // a filesystem error (disk full, read-only, not a regular file …), naming the file
  | 'ABORTED' // an AbortSignal fired between model calls
  | 'BUSY' // overlapping use of one model or scheduler that would corrupt its outputs
  | 'LOCKED' // a run folder already has a writer (the lock names the holder)
  | 'NO_CHECKPOINT' // resume asked for, but the run folder has no complete checkpoint
  | 'RUN_MISMATCH'; // resume with options that contradict the run folder's run.json

export class DdpmError extends Error {
  readonly code: DdpmErrorCode;
  constructor(code: DdpmErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DdpmError';
    this.code = code;
  }
}

/** Throws INVALID_ARGUMENT unless `value` is an integer in [min, max]. */
export function checkInt(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new DdpmError('INVALID_ARGUMENT', `${name} must be an integer ${range}, found ${value}`);
  }
}

/** Throws INVALID_ARGUMENT unless `value` is a finite number. */
export function checkFinite(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new DdpmError('INVALID_ARGUMENT', `${name} must be a finite number, found ${value}`);
  }
}
