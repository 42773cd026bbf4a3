// The memory arena. The TypeScript side owns the one WebAssembly.Memory; kernels never allocate. Tensors
// are bump-allocated, 64-byte aligned (a cache line, and v128-aligned); `mark`/`release` free everything
// allocated after a mark, which is how per-step activations are reused.
import { DdpmError } from '../errors.js';
import { ARENA_BASE } from './control.js';

const PAGE = 65536;
const ALIGN = 64;

/** A float32 array living in the engine's memory. `ptr` is a byte address. */
export interface Tensor {
  readonly ptr: number;
  readonly size: number; // elements
  readonly shape: readonly number[];
  readonly name: string;
  /** The arena (engine) that allocated it; views made by spreading a tensor keep it. A tensor without one
   * (a hand-made view) is checked for bounds only. */
  readonly owner?: ArenaTag;
  /** Set on a buffer that a later call overwrites (a model's output): whether this result is still current. */
  readonly lease?: Lease;
}

/** Identifies an arena; `disposed` is set when its engine is disposed. */
export interface ArenaTag {
  readonly id: number;
  disposed: boolean;
}

/** A result living in a reused buffer: `live()` turns false when the buffer is overwritten. */
export interface Lease {
  live(): boolean;
  /** Who overwrote it, for the BUSY message. */
  readonly holder: string;
}

let nextArenaId = 1;

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export class Arena {
  private top = ARENA_BASE;
  /**
   * The highest top since `resetPeak` (temporaries a kernel wrapper allocated and released included):
   * the end of all memory a recorded forward pass touches (UNet2DModel's replays). @internal
   */
  peak = ARENA_BASE;
  private f32: Float32Array;
  /** Stamped on every tensor this arena allocates, so a kernel can refuse another engine's tensors. */
  readonly tag: ArenaTag = { id: nextArenaId++, disposed: false };

  constructor(
    readonly memory: WebAssembly.Memory,
    /** The largest the memory may become, in bytes. */
    readonly limitBytes: number,
  ) {
    this.f32 = new Float32Array(memory.buffer);
  }

  /** Bytes handed out so far (including the engine's reserved first 64 KiB). */
  get used(): number {
    return this.top;
  }

  /**
   * Checks that `bytes` more can be allocated, before anything is: a plan larger than the limit fails
   * here with the need and the limit, instead of half-allocating and trapping later.
   */
  plan(bytes: number, what = 'the plan'): void {
    const need = this.top + bytes;
    if (need > this.limitBytes) {
      throw new DdpmError(
        'OUT_OF_MEMORY',
        `${what} needs ${formatBytes(need)} of Wasm memory (${formatBytes(bytes)} new), limit ${formatBytes(this.limitBytes)}`,
      );
    }
  }

  alloc(shape: number | readonly number[], name: string): Tensor {
    const dims = typeof shape === 'number' ? [shape] : [...shape];
    for (const d of dims) {
      if (!Number.isInteger(d) || d < 0) {
        throw new DdpmError('INVALID_ARGUMENT', `tensor ${name}: shape [${dims}] must hold non-negative integers`);
      }
    }
    const size = dims.reduce((p, d) => p * d, 1);
    const bytes = Math.ceil((size * 4) / ALIGN) * ALIGN;
    // the message is built only when the plan fails (an alloc per activation: a string per call shows)
    if (this.top + bytes > this.limitBytes) this.plan(bytes, `tensor ${name} [${dims}]`);
    const ptr = this.top;
    this.ensure(ptr + bytes);
    this.top = ptr + bytes;
    if (this.top > this.peak) this.peak = this.top;
    return { ptr, size, shape: dims, name, owner: this.tag };
  }

  mark(): number {
    return this.top;
  }

  /** Starts a new `peak` at the current top. @internal */
  resetPeak(): void {
    this.peak = this.top;
  }

  /** Frees everything allocated after `mark`; their Tensors must not be used again. */
  release(mark: number): void {
    if (mark < ARENA_BASE || mark > this.top) {
      throw new DdpmError('INVALID_ARGUMENT', `arena mark ${mark} is not in [${ARENA_BASE}, ${this.top}]`);
    }
    this.top = mark;
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new DdpmError(
        'OUT_OF_MEMORY',
        `growing Wasm memory from ${formatBytes(have)} to ${formatBytes(have + pages * PAGE)} failed: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  /** A Float32Array over the whole memory, refreshed if the memory grew since the last call. */
  heap(): Float32Array {
    if (this.f32.buffer !== this.memory.buffer || this.f32.length * 4 !== this.memory.buffer.byteLength) {
      this.f32 = new Float32Array(this.memory.buffer);
    }
    return this.f32;
  }

  /**
   * Throws unless t is usable here: DISPOSED for a tensor of a disposed engine, INVALID_ARGUMENT for
   * another engine's, BUSY for a result whose buffer a later call overwrote, OUT_OF_BOUNDS unless it lies
   * inside the arena as allocated.
   */
  check(t: Tensor, what: string): void {
    const owner = t?.owner;
    if (owner !== undefined && owner !== this.tag) {
      if (owner.disposed)
        throw new DdpmError('DISPOSED', `${what} (tensor ${t.name}) belongs to an engine that was disposed`);
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${what} (tensor ${t.name}) belongs to another engine (arena ${owner.id}, this is arena ${this.tag.id}); tensors cannot be shared between engines`,
      );
    }
    if (t?.lease && !t.lease.live()) {
      throw new DdpmError(
        'BUSY',
        `${what} (tensor ${t.name}) was overwritten by a later ${t.lease.holder} call before it was used; use each result before the next call, or pass { out }`,
      );
    }
    if (
      t === null ||
      typeof t !== 'object' ||
      !Number.isInteger(t.ptr) ||
      !Number.isInteger(t.size) ||
      t.ptr % 4 !== 0 ||
      t.ptr < ARENA_BASE ||
      t.size < 0 ||
      t.ptr + t.size * 4 > this.top
    ) {
      throw new DdpmError(
        'OUT_OF_BOUNDS',
        `${what} (tensor ${t?.name ?? '?'}: bytes [${t?.ptr}, ${t?.ptr + t?.size * 4})) is not inside the allocated arena [${ARENA_BASE}, ${this.top})`,
      );
    }
  }
}
