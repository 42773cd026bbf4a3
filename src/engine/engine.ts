// The engine: picks a Wasm build for this runtime, owns the memory and the worker pool, and runs kernels.
import { DdpmError, checkInt } from '../errors.js';
import { KERNEL_ARITY, KERNEL_NAMES, bindKernels, bindQueries, checkConstants, type Kernel } from './bind.js';
import { ARENA_BASE } from './control.js';
import { Arena, type Tensor, formatBytes } from './memory.js';
import { Pool } from './pool.js';
import { OP_PROGRAM, runProgram } from './program.js';
import {
  base64ToBytes,
  canCompileWasm,
  coreCount,
  hasRelaxedSimd,
  hasSimd,
  relaxedMaddIsFused,
  runtimeName,
  sharedMemoryStatus,
  workerStatus,
  type RuntimeName,
} from './runtime.js';
import {
  ABI_VERSION,
  BUILD_RELAXED_SIMD,
  BUILD_THREADS,
  type KernelArgs,
  type KernelId,
  type Queries,
} from './wasm-interface.generated.js';

/** The ABI this JS expects (generated from assembly/index.ts, whose `abi_version` returns the same number). */
export { ABI_VERSION };

export type SimdLevel = 'simd' | 'relaxed';
export type BuildName = 'simd' | 'relaxed' | 'simd-mt' | 'relaxed-mt';

export interface EngineOptions {
  /** Threads including the calling one: a number ≥ 1, or 'auto' (= available cores). Default 'auto'. */
  threads?: number | 'auto';
  /** 'auto' (relaxed where the runtime has it), or force 'simd' / 'relaxed'. Default 'auto'. */
  simd?: SimdLevel | 'auto';
  /** On Node 20, enable relaxed SIMD with v8.setFlagsFromString (see README). Default true. */
  nodeRelaxedSimdFlag?: boolean;
  /** Largest Wasm memory in bytes (wasm32: at most 4 GiB; edge isolates often ~128 MB). Default 4 GiB. */
  memoryLimit?: number;
  /** Initial memory in bytes. Default 16 MiB. */
  initialMemory?: number;
  /**
   * The compiled module (edge runtimes such as Cloudflare Workers forbid compiling from bytes and import
   * `.wasm` files as modules), raw bytes, or a URL to fetch. Default: the bytes inlined in the package.
   */
  wasm?: WebAssembly.Module | BufferSource | URL | string;
  /**
   * Microseconds an idle worker spins before sleeping: long enough to bridge the gap between two kernel
   * calls of a forward pass, short enough not to take a busy machine's cores for long. Default 200.
   */
  spinUs?: number;
  /** How long a call waits for stalled workers before failing, in ms. Default 60000. */
  callTimeoutMs?: number;
  /** How long a worker may take to start, in ms. Default 10000. */
  startTimeoutMs?: number;
  /** Bytes of per-thread scratch (GEMM packing panels …), reserved once at creation. Default 4 MiB. */
  scratchPerThread?: number;
}

/** One kernel call as `Engine.recorder` saw it: replaying it with `engine.run` repeats it exactly. @internal */
export interface RecordedCall {
  readonly op: KernelId;
  readonly args: readonly number[];
  readonly parallel: boolean;
}

export interface EngineInfo {
  runtime: RuntimeName;
  build: BuildName;
  simd: SimdLevel;
  /** Whether this runtime fuses relaxed_madd (V8 does on x86 with FMA; JavaScriptCore does not). */
  fusedMadd: boolean | null;
  threads: number;
  memoryLimit: number;
  /** Why each choice was made, in words. */
  why: string[];
}

const MAX_PAGES = 65536;
const PAGE = 65536;

async function loadBuildBytes(build: BuildName): Promise<Uint8Array<ArrayBuffer>> {
  // One generated module per build, imported on demand so a page only downloads the build it uses.
  let mod: { wasmBase64: string };
  switch (build) {
    case 'simd':
      mod = await import('../../build/wasm/simd.js');
      break;
    case 'relaxed':
      mod = await import('../../build/wasm/relaxed.js');
      break;
    case 'simd-mt':
      mod = await import('../../build/wasm/simd-mt.js');
      break;
    case 'relaxed-mt':
      mod = await import('../../build/wasm/relaxed-mt.js');
      break;
  }
  return base64ToBytes(mod.wasmBase64);
}

/** The build a module says it is (its `build_id` export: bit 0 relaxed SIMD, bit 1 threads). */
function buildFromId(id: number): BuildName {
  return ((id & BUILD_RELAXED_SIMD ? 'relaxed' : 'simd') + (id & BUILD_THREADS ? '-mt' : '')) as BuildName;
}

/** How to import a build as a module in the edge runtimes, for error messages. */
function importHint(build: BuildName): string {
  return (
    `import the .wasm file as a module and pass it: \`import wasm from 'ddpm-wasm/wasm/${build}.wasm'\` ` +
    `(Cloudflare Workers; add \`?module\` on Vercel Edge), then Engine.create({ wasm })`
  );
}

/**
 * A WebAssembly.Module, also one from another realm: Vercel's edge sandbox (a Node vm context) gets its
 * `?module` imports compiled outside, so `instanceof` this realm's WebAssembly.Module is false there.
 */
function isWasmModule(x: unknown): boolean {
  return (
    (x as object) instanceof WebAssembly.Module || Object.prototype.toString.call(x) === '[object WebAssembly.Module]'
  );
}

/** options.wasm as a module: a Module is used as it is; bytes and URLs are compiled (where allowed). */
async function moduleFrom(
  wasm: Exclude<EngineOptions['wasm'], undefined>,
  runtime: RuntimeName,
): Promise<WebAssembly.Module> {
  // (not a type guard: WebAssembly.Module is an empty interface, so narrowing would leave `never`)
  if (isWasmModule(wasm)) return wasm as WebAssembly.Module;
  let bytes: BufferSource;
  if (typeof wasm === 'string' || wasm instanceof URL) {
    const res = await fetch(wasm);
    if (!res.ok) throw new DdpmError('INVALID_ARGUMENT', `wasm: fetching ${String(wasm)} gave HTTP ${res.status}`);
    bytes = await res.arrayBuffer();
  } else bytes = wasm as BufferSource;
  const compiles = canCompileWasm();
  if (!compiles.ok) {
    throw new DdpmError(
      'UNSUPPORTED',
      `options.wasm: ${compiles.why}, so bytes or a URL cannot be used in ${runtime}; ${importHint('simd')}`,
    );
  }
  return WebAssembly.compile(bytes);
}

export class Engine {
  readonly info: EngineInfo;
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  /** Every kernel of the generated interface, bound once, by id. */
  private readonly fns: Kernel[];
  /** The module's exports that are not kernels (abi_version, build_id, madd_probe …), bound once. @internal */
  readonly queries: Queries;
  private pool: Pool | null;
  private disposed = false;
  /**
   * While set, every `run` call is also handed to it (kernel id, a copy of the arguments, parallel): how
   * UNet2DModel records an inference forward once and then replays its kernel calls without the
   * per-layer JavaScript that computed them (src/nn/unet.ts). @internal
   */
  recorder: { push(call: RecordedCall): unknown } | null = null;
  private readonly scratch: number[] = [];
  /**
   * Per-thread scratch: thread ith may use bytes [scratch.ptr + ith·bytesPerThread, +bytesPerThread).
   * Kernels that need workspace (packing) take these two numbers as arguments; it lives outside the
   * arena's mark/release so it is never freed under a caller.
   */
  readonly workspace: { ptr: number; bytesPerThread: number };

  private constructor(
    info: EngineInfo,
    memory: WebAssembly.Memory,
    fns: Kernel[],
    queries: Queries,
    pool: Pool | null,
    scratchPerThread: number,
  ) {
    this.info = info;
    this.memory = memory;
    this.arena = new Arena(memory, info.memoryLimit);
    const ws = this.arena.alloc(info.threads * (scratchPerThread / 4), 'workspace');
    this.workspace = { ptr: ws.ptr, bytesPerThread: scratchPerThread };
    this.fns = fns;
    this.queries = queries;
    this.pool = pool;
  }

  static async create(options: EngineOptions = {}): Promise<Engine> {
    const why: string[] = [];
    const runtime = runtimeName();
    if (!hasSimd()) {
      throw new DdpmError(
        'UNSUPPORTED',
        `this runtime (${runtime}) does not support WebAssembly SIMD, which ddpm-wasm requires`,
      );
    }
    const wantSimd = options.simd ?? 'auto';
    if (!['auto', 'simd', 'relaxed'].includes(wantSimd)) {
      throw new DdpmError('INVALID_ARGUMENT', `simd must be 'auto', 'simd' or 'relaxed', found ${String(wantSimd)}`);
    }
    const wantThreads = options.threads ?? 'auto';
    if (wantThreads !== 'auto') checkInt('threads', wantThreads, 1, 256);
    // A module handed in (or bytes, or a URL) is one build: it decides what 'auto' means, and an explicit
    // simd or threads option must agree with it. Nothing else is compiled then — no probe either — so
    // this is the path for runtimes that forbid compiling at run time.
    const given = options.wasm === undefined ? null : await moduleFrom(options.wasm, runtime);
    if (!given) {
      const compiles = canCompileWasm();
      if (!compiles.ok)
        throw new DdpmError(
          'UNSUPPORTED',
          `Engine.create: ${compiles.why}; ${importHint(wantSimd === 'relaxed' ? 'relaxed' : 'simd')}`,
        );
    }

    // 1. SIMD level (for a given module: read from it after instantiation, step 4)
    let simd: SimdLevel = 'simd';
    let fusedMadd: boolean | null = null;
    if (given) {
      // decided by the module
    } else if (wantSimd === 'simd') why.push('plain SIMD: forced by options.simd');
    else {
      const relaxed = await hasRelaxedSimd(options.nodeRelaxedSimdFlag ?? true);
      if (relaxed.ok) fusedMadd = relaxedMaddIsFused();
      if (relaxed.ok && (fusedMadd || wantSimd === 'relaxed')) {
        simd = 'relaxed';
        why.push(
          `relaxed SIMD: ${relaxed.why}${wantSimd === 'relaxed' ? ', forced by options.simd' : ''}; relaxed_madd is ${fusedMadd ? 'fused' : 'not fused'}`,
        );
      } else if (wantSimd === 'relaxed') {
        throw new DdpmError('UNSUPPORTED', `simd 'relaxed' was asked for, but ${relaxed.why}`);
      } else if (relaxed.ok) {
        // An unfused relaxed_madd is the plain build's mul+add: no faster, and the plain build gives the
        // same bits as every other runtime's plain build.
        why.push(
          'plain SIMD: relaxed SIMD validates but relaxed_madd is not fused here (mul+add), so it would bring no speed',
        );
      } else why.push(`plain SIMD: ${relaxed.why}`);
    }

    // 2. Threads
    const cores = await coreCount();
    let threads = wantThreads === 'auto' ? cores : wantThreads;
    const workers = workerStatus();
    const shared = sharedMemoryStatus();
    const isBrowserMain = runtime === 'browser';
    if (threads > 1 && !workers.ok) {
      if (wantThreads !== 'auto') {
        throw new DdpmError(
          'UNSUPPORTED',
          `threads: ${wantThreads} needs worker threads, but ${workers.why} (${runtime}); use threads: 1 or 'auto'`,
        );
      }
      why.push(`1 thread: ${workers.why}`);
      threads = 1;
    } else if (threads > 1 && !shared.ok) {
      why.push(`1 thread: ${shared.why}`);
      threads = 1;
    } else if (threads > 1 && isBrowserMain) {
      why.push(
        '1 thread: the browser main thread may not block in Atomics.wait; run the engine in a Worker for threads',
      );
      threads = 1;
    } else {
      why.push(`${threads} thread(s): ${wantThreads === 'auto' ? `${cores} core(s) available` : 'as asked'}`);
    }

    // 3. Memory
    const scratch = options.scratchPerThread ?? 4 * 2 ** 20;
    checkInt('scratchPerThread', scratch, 1024);
    if (scratch % 64 !== 0)
      throw new DdpmError('INVALID_ARGUMENT', `scratchPerThread must be a multiple of 64 bytes, found ${scratch}`);
    const limit = options.memoryLimit ?? MAX_PAGES * PAGE;
    if (!Number.isFinite(limit) || limit < 2 * PAGE || limit > MAX_PAGES * PAGE) {
      throw new DdpmError('INVALID_ARGUMENT', `memoryLimit must be between 128 KiB and 4 GiB, found ${limit}`);
    }
    const maxPages = Math.floor(limit / PAGE);
    const initialPages = Math.min(maxPages, Math.max(2, Math.ceil((options.initialMemory ?? 16 * 2 ** 20) / PAGE)));
    const makeMemory = (isShared: boolean): WebAssembly.Memory => {
      try {
        return new WebAssembly.Memory({
          initial: initialPages,
          maximum: maxPages,
          shared: isShared,
        } as WebAssembly.MemoryDescriptor);
      } catch (e) {
        throw new DdpmError(
          'OUT_OF_MEMORY',
          `could not create a Wasm memory of ${formatBytes(initialPages * PAGE)} (limit ${formatBytes(limit)}): ${(e as Error).message}`,
          { cause: e },
        );
      }
    };

    // 4. Module, instance, version and build checks
    // The threaded build imports a shared memory; it also runs single-threaded, but a plain memory is
    // what runtimes without SharedArrayBuffer (edge workers) can give, so 1 thread uses the plain build.
    let mt = threads > 1;
    let build = (simd + (mt ? '-mt' : '')) as BuildName;
    const module = given ?? (await WebAssembly.compile(await loadBuildBytes(build)));
    let memory = makeMemory(mt);
    let instance: WebAssembly.Instance;
    try {
      instance = await WebAssembly.instantiate(module, { env: { memory } });
    } catch (e) {
      // A given module of the other threading kind imports the other kind of memory: try that one, so
      // its build_id can be read and the checks below name the mismatch. Instantiating compiles nothing.
      const otherMemory = given && (mt || shared.ok) ? makeMemory(!mt) : null;
      const other = otherMemory
        ? await WebAssembly.instantiate(module, { env: { memory: otherMemory } }).catch(() => null)
        : null;
      if (!other || !otherMemory) {
        const hint =
          given && !mt && !shared.ok
            ? ` (if it is a threaded -mt build: ${shared.why}, so pass the single-threaded build)`
            : '';
        throw new DdpmError(
          'UNSUPPORTED',
          `instantiating the ${given ? 'module in options.wasm' : `${build} build`} failed${hint}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      instance = other;
      memory = otherMemory;
      mt = !mt;
    }
    const abi = (instance.exports.abi_version as (() => number) | undefined)?.();
    if (abi !== ABI_VERSION) {
      throw new DdpmError(
        'WASM_VERSION',
        `the Wasm module has ABI version ${abi ?? 'none'}, this JS expects ${ABI_VERSION}: rebuild or reinstall ddpm-wasm`,
      );
    }
    const id = (instance.exports.build_id as (() => number) | undefined)?.();
    if (id === undefined) {
      throw new DdpmError(
        'WASM_VERSION',
        'the Wasm module has no build_id export (built by an older ddpm-wasm): use the .wasm files of this version',
      );
    }
    const found = buildFromId(id);
    if (!given) {
      if (found !== build)
        throw new DdpmError('WASM_VERSION', `the inlined ${build} build says it is ${found}: rebuild ddpm-wasm`);
    } else {
      const foundSimd: SimdLevel = id & BUILD_RELAXED_SIMD ? 'relaxed' : 'simd';
      const foundMt = (id & BUILD_THREADS) !== 0;
      if (wantSimd !== 'auto' && wantSimd !== foundSimd) {
        throw new DdpmError(
          'UNSUPPORTED',
          `options.wasm is the ${found} build, but simd: '${wantSimd}' was asked for: pass the ${wantSimd}${foundMt ? '-mt' : ''} build (wasm/${wantSimd}${foundMt ? '-mt' : ''}.wasm) or simd: 'auto'`,
        );
      }
      simd = foundSimd;
      if (threads > 1 && !foundMt) {
        if (wantThreads !== 'auto') {
          throw new DdpmError(
            'UNSUPPORTED',
            `options.wasm is the ${found} build (single-threaded); threads: ${wantThreads} needs the ${simd}-mt build (wasm/${simd}-mt.wasm)`,
          );
        }
        why[why.length - 1] = `1 thread: the module in options.wasm is the single-threaded ${found} build`;
        threads = 1;
      }
      if (foundMt && !shared.ok) {
        throw new DdpmError(
          'UNSUPPORTED',
          `options.wasm is the ${found} build, which imports a shared memory, but ${shared.why}: pass the ${simd} build (wasm/${simd}.wasm)`,
        );
      }
      build = found;
      why.unshift(`${found} build: the module in options.wasm (its build_id)`);
    }
    // Every export of the generated interface, bound once (presence, arity and constants checked).
    const what = given ? `the ${found} module in options.wasm` : `the inlined ${build} build`;
    const queries = bindQueries(instance.exports, what);
    const fns = bindKernels(instance.exports, what);
    checkConstants(instance.exports, build, what);
    // Fusing read from the module itself: no probe to compile (edge runtimes forbid that).
    if (simd === 'relaxed') {
      const a = 1 + 2 ** -12;
      fusedMadd = queries.madd_probe(a, a, -1) === 2 ** -11 + 2 ** -24;
      if (given)
        why.push(`relaxed_madd is ${fusedMadd ? 'fused' : 'not fused'} here (read from the module's madd_probe)`);
    }
    // The scratch must fit before any worker is started (the constructor allocates it).
    if (ARENA_BASE + threads * scratch > maxPages * PAGE) {
      throw new DdpmError(
        'OUT_OF_MEMORY',
        `the per-thread scratch needs ${formatBytes(ARENA_BASE + threads * scratch)} of Wasm memory (${threads} × ${formatBytes(scratch)}), limit ${formatBytes(maxPages * PAGE)}`,
      );
    }

    // 5. Workers
    const pool =
      threads > 1
        ? await Pool.start(module, memory, fns, KERNEL_NAMES, threads, {
            spinUs: options.spinUs ?? 200,
            callTimeoutMs: options.callTimeoutMs ?? 60_000,
            startTimeoutMs: options.startTimeoutMs ?? 10_000,
          })
        : null;
    try {
      return new Engine(
        { runtime, build, simd, fusedMadd, threads, memoryLimit: maxPages * PAGE, why },
        memory,
        fns,
        queries,
        pool,
        scratch,
      );
    } catch (e) {
      pool?.dispose(); // a failed create must not leave its workers running
      throw e;
    }
  }

  get threads(): number {
    return this.info.threads;
  }

  /** Allocates a float32 tensor in the arena (zero-filled only if the memory there was never used). */
  alloc(shape: number | readonly number[], name: string): Tensor {
    this.checkLive();
    return this.arena.alloc(shape, name);
  }

  /** Allocates a tensor and copies `data` into it. */
  upload(data: ArrayLike<number>, shape: number | readonly number[], name: string): Tensor {
    const t = this.alloc(shape, name);
    if (data.length !== t.size) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `tensor ${name}: shape [${t.shape}] holds ${t.size} values, data has ${data.length}`,
      );
    }
    this.write(t, data);
    return t;
  }

  /** A live view of t (invalid after the memory grows: call again rather than keeping it). */
  view(t: Tensor): Float32Array {
    this.check(t, 'view');
    return this.arena.heap().subarray(t.ptr >>> 2, (t.ptr >>> 2) + t.size);
  }

  /** A copy of t's values. */
  read(t: Tensor): Float32Array {
    return this.view(t).slice();
  }

  write(t: Tensor, data: ArrayLike<number>): void {
    if (data.length !== t.size) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `write to tensor ${t.name}: it holds ${t.size} values, data has ${data.length}`,
      );
    }
    this.view(t).set(data);
  }

  /** Throws OUT_OF_BOUNDS unless t lies in allocated memory; `what` names it in the message. */
  check(t: Tensor, what: string): void {
    this.checkLive();
    this.arena.check(t, what);
  }

  /**
   * Runs kernel `op` (an id of the generated interface: `KERNEL.axpy_f32`) with its arguments (without
   * ith, nth), on all threads or only on the calling one. Only the argument count is checked (the types
   * check it too): the typed wrappers in src/kernels/ check shapes and pointers first.
   */
  run<I extends KernelId>(op: I, args: KernelArgs[I], parallel = true): void {
    this.checkLive();
    if (KERNEL_ARITY[op] !== args.length) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        KERNEL_ARITY[op] === undefined
          ? `no kernel with id ${op} (use the ids of KERNEL)`
          : `${KERNEL_NAMES[op]} takes ${KERNEL_ARITY[op]} arguments (without ith, nth), found ${args.length}`,
      );
    }
    if (this.recorder !== null) this.recorder.push({ op, args: Array.from(args), parallel });
    if (parallel && this.pool) {
      this.pool.run(op, args);
      return;
    }
    const a = this.scratch;
    const n = args.length;
    a.length = n + 2;
    for (let i = 0; i < n; i++) a[i] = args[i];
    a[n] = 0;
    a[n + 1] = 1;
    this.fns[op].apply(null, a);
  }

  /**
   * Runs programs (src/engine/program.ts: recorded kernel calls, encoded in engine memory at these byte
   * addresses), program i as slice i: with a pool of that many threads they run side by side, one round
   * trip for all their calls; otherwise one after the other here. @internal
   */
  runPrograms(at: readonly number[]): void {
    this.checkLive();
    if (this.pool && at.length === this.pool.nth) {
      this.pool.run(OP_PROGRAM, at);
      return;
    }
    const heap = new Float64Array(this.memory.buffer);
    for (const p of at) runProgram(this.fns, heap, p, this.scratch);
  }

  /** Stops the workers and releases the engine. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.arena.tag.disposed = true;
    this.pool?.dispose();
    this.pool = null;
  }

  /** Test hook: kills worker `index` behind the pool's back, as a crash would. @internal */
  killWorkerForTest(index: number): void {
    this.pool?.killWorkerForTest(index);
  }

  /** Test hook: the next call's slice `index` looks taken by a worker that never finishes it. @internal */
  hangSliceForTest(index: number): void {
    this.pool?.hangSliceForTest(index);
  }

  private checkLive(): void {
    if (this.disposed)
      throw new DdpmError('DISPOSED', 'this engine was disposed; create a new one with Engine.create()');
  }
}

export { ARENA_BASE };
