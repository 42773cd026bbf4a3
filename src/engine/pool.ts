// The worker pool: nth-1 workers plus the calling thread (worker 0), each with its own instance of the
// same module over the one shared memory. Calls are handed over through the control block (control.ts).
import { DdpmError } from '../errors.js';
import type { Kernel } from './bind.js';
import * as C from './control.js';
import { OP_PROGRAM, runProgram } from './program.js';
import { runtimeName } from './runtime.js';
import { workerThreads } from '#platform';
import { workerLoop, type WorkerInit } from './worker-loop.js';

/** A started worker, whatever the runtime's Worker API looks like. */
interface WorkerHandle {
  terminate(): void;
}

export interface PoolOptions {
  /** Microseconds a worker spins on the generation counter before it sleeps in Atomics.wait. */
  spinUs: number;
  /** How long a call may wait for the workers after the caller finished its slice, in ms. */
  callTimeoutMs: number;
  /** How long a worker may take to start, in ms. */
  startTimeoutMs: number;
}

export class Pool {
  readonly nth: number;
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly msg: Uint8Array;
  private readonly claims: Int32Array;
  private readonly a: number[] = [];
  private workers: WorkerHandle[] = [];
  private broken: string | null = null;

  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly fns: readonly Kernel[],
    private readonly names: readonly string[],
    nth: number,
    private readonly opts: PoolOptions,
  ) {
    this.nth = nth;
    const buf = memory.buffer;
    this.ctl = new Int32Array(buf, C.CTL_BYTE, C.SLOTS);
    this.args = new Float64Array(buf, C.ARGS_BYTE, C.MAX_ARGS);
    this.msg = new Uint8Array(buf, C.MSG_BYTE, C.MSG_BYTES);
    this.claims = new Int32Array(buf, C.CLAIMS_BYTE, C.MAX_THREADS);
  }

  /** Starts nth-1 workers; rejects (never hangs) if one fails to start within opts.startTimeoutMs. */
  static async start(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    fns: readonly Kernel[],
    names: readonly string[],
    nth: number,
    opts: PoolOptions,
  ): Promise<Pool> {
    if (nth > C.MAX_THREADS)
      throw new DdpmError('INVALID_ARGUMENT', `threads must be at most ${C.MAX_THREADS}, found ${nth}`);
    const pool = new Pool(memory, fns, names, nth, opts);
    Atomics.store(pool.ctl, C.STOP, 0);
    const gen = Atomics.load(pool.ctl, C.GEN);
    pool.claims.fill(gen); // every slice claimed by the current generation: free for the next
    const starts: Promise<void>[] = [];
    for (let index = 1; index < nth; index++) {
      const init: WorkerInit = {
        module,
        memory,
        index,
        names,
        spinUs: opts.spinUs,
        gen,
        layout: {
          ctlByte: C.CTL_BYTE,
          argsByte: C.ARGS_BYTE,
          maxArgs: C.MAX_ARGS,
          msgByte: C.MSG_BYTE,
          msgBytes: C.MSG_BYTES,
          claimsByte: C.CLAIMS_BYTE,
          maxThreads: C.MAX_THREADS,
        },
      };
      starts.push(startWorker(init, opts.startTimeoutMs).then((w) => void pool.workers.push(w)));
    }
    const results = await Promise.allSettled(starts);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      pool.dispose();
      throw failed.reason;
    }
    return pool;
  }

  /**
   * Runs kernel `op` (its id: the index into fns and names, as in every worker) as nth slices: slice 0
   * here, slices 1…nth−1 by their workers through the control block — or here too, for any slice its
   * worker has not claimed by the time slice 0 is done.
   */
  run(op: number, args: ArrayLike<number>): void {
    if (this.broken) throw new DdpmError('WORKER_FAILED', `the worker pool is unusable: ${this.broken}`);
    const { ctl, nth } = this;
    const n = args.length;
    for (let i = 0; i < n; i++) this.args[i] = args[i];
    ctl[C.OP] = op;
    ctl[C.NARGS] = n;
    ctl[C.NTH] = nth;
    ctl[C.ERR] = 0;
    Atomics.store(ctl, C.PENDING, nth - 1);
    const g = (Atomics.add(ctl, C.GEN, 1) + 1) | 0;
    Atomics.notify(ctl, C.GEN);

    const a = this.a;
    a.length = n + 2;
    for (let i = 0; i < n; i++) a[i] = args[i];
    a[n + 1] = nth;
    let own: unknown = null;
    let ownSlice = 0;
    // OP_PROGRAM: slice ith is the program at byte address args[ith] (program.ts), each call run whole
    const heap = op === OP_PROGRAM ? new Float64Array(this.memory.buffer) : null;
    const runSlice = (ith: number) => {
      a[n] = ith;
      try {
        if (heap) runProgram(this.fns, heap, args[ith], []);
        else this.fns[op].apply(null, a);
      } catch (e) {
        if (own === null) {
          own = e;
          ownSlice = ith;
        }
      }
    };
    const t0 = performance.now();
    runSlice(0);
    const ownSliceMs = performance.now() - t0;
    for (let ith = 1; ith < nth; ith++) {
      if (Atomics.compareExchange(this.claims, ith, (g - 1) | 0, g) !== ((g - 1) | 0)) continue;
      runSlice(ith);
      Atomics.sub(ctl, C.PENDING, 1);
    }
    this.waitForWorkers(op, ownSliceMs);
    const failed = ctl[C.ERR];
    if (own !== null) {
      throw new DdpmError(
        'WORKER_FAILED',
        `slice ${ownSlice} of ${this.name(op)} failed on the calling thread: ${String((own as Error)?.message ?? own)}`,
        { cause: own },
      );
    }
    if (failed !== 0) {
      const text = new TextDecoder().decode(this.msg.slice(0, ctl[C.MSG_LEN]));
      throw new DdpmError(
        'WORKER_FAILED',
        `slice ${failed - 1} of ${this.name(op)} failed on worker ${failed - 1}: ${text}`,
      );
    }
  }

  /**
   * Waits until every claimed slice is finished. Spins first — a worker that claimed its slice usually
   * finishes within about the time the caller needed for slice 0 — but only that long (at least 50 µs):
   * if the worker lost its core to another process, spinning on ours would only keep it from getting one
   * back, so past the budget the caller sleeps in Atomics.wait.
   */
  private waitForWorkers(op: number, ownSliceMs: number): void {
    const ctl = this.ctl;
    const budget = performance.now() + Math.max(0.05, 2 * ownSliceMs);
    let v: number;
    let spins = 0;
    while ((v = Atomics.load(ctl, C.PENDING)) !== 0) {
      if ((++spins & 63) === 0 && performance.now() > budget) break;
    }
    if (v === 0) return;
    const deadline = Date.now() + this.opts.callTimeoutMs;
    while ((v = Atomics.load(ctl, C.PENDING)) !== 0) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.broken = `${v} slice(s) of ${this.name(op)} claimed by a worker did not finish within ${this.opts.callTimeoutMs} ms`;
        this.dispose();
        throw new DdpmError('WORKER_FAILED', `${this.broken}; the pool was torn down (a worker died or hangs)`);
      }
      Atomics.wait(ctl, C.PENDING, v, Math.min(left, 100));
    }
  }

  private name(op: number): string {
    return op === OP_PROGRAM ? 'a program' : this.names[op];
  }

  /** Stops the workers; they exit their loop and are terminated. Idempotent. */
  dispose(): void {
    Atomics.store(this.ctl, C.STOP, 1);
    Atomics.add(this.ctl, C.GEN, 1);
    Atomics.notify(this.ctl, C.GEN);
    for (const w of this.workers) w.terminate();
    this.workers = [];
    if (!this.broken) this.broken = 'disposed';
  }

  /** Test hook: kills worker `index` without telling the pool, as a crash would. @internal */
  killWorkerForTest(index: number): void {
    this.workers[index - 1]?.terminate();
  }

  /** Test hook: makes slice `index` of the next call look claimed by a worker that then never finishes. @internal */
  hangSliceForTest(index: number): void {
    Atomics.store(this.claims, index, (Atomics.load(this.ctl, C.GEN) + 1) | 0);
  }
}

function startWorker(init: WorkerInit, timeoutMs: number): Promise<WorkerHandle> {
  return runtimeName() === 'node' ? startNodeWorker(init, timeoutMs) : startWebWorker(init, timeoutMs);
}

/** Waits for the worker's 'ready' message, turning errors, early exits and silence into one rejection. */
function whenReady(
  index: number,
  timeoutMs: number,
  subscribe: (onMessage: (m: unknown) => void, onError: (why: string) => void) => void,
  handle: WorkerHandle,
): Promise<WorkerHandle> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      handle.terminate();
      reject(new DdpmError('WORKER_FAILED', `worker ${index} did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    subscribe(
      (m) => {
        const msg = m as { type: string; message?: string };
        if (msg.type === 'ready') {
          clearTimeout(timer);
          resolve(handle);
        } else if (msg.type === 'error') {
          clearTimeout(timer);
          handle.terminate();
          reject(new DdpmError('WORKER_FAILED', `worker ${index} failed to start: ${msg.message}`));
        }
      },
      (why) => {
        clearTimeout(timer);
        reject(new DdpmError('WORKER_FAILED', `worker ${index} failed to start: ${why}`));
      },
    );
  });
}

async function startNodeWorker(init: WorkerInit, timeoutMs: number): Promise<WorkerHandle> {
  // Node refuses blob: URLs for workers; an eval'd script needs no file on disk either. It is CommonJS,
  // or ESM when the process runs with --input-type=module (workers inherit execArgv), so it loads
  // worker_threads with import(), which both accept.
  const { Worker } = await workerThreads(); // '#platform': no node: import in browser bundles
  const source =
    `import('node:worker_threads').then(({ parentPort, workerData }) => ` +
    `(${workerLoop.toString()})(workerData, (m) => parentPort.postMessage(m)));\n`;
  const worker = new Worker(source, { eval: true, workerData: init });
  const handle = { terminate: () => void worker.terminate() };
  const ready = whenReady(
    init.index,
    timeoutMs,
    (onMessage, onError) => {
      worker.on('message', onMessage);
      worker.on('error', (e) => onError(String(e?.message ?? e)));
      worker.on('exit', (code) => onError(`exited with code ${code}`));
    },
    handle,
  );
  // A worker parked in Atomics.wait must not keep the process alive when the user forgets dispose().
  // After the listeners: adding a 'message' listener refs the worker's port again.
  worker.unref();
  return ready;
}

async function startWebWorker(init: WorkerInit, timeoutMs: number): Promise<WorkerHandle> {
  const source =
    `self.onmessage = (e) => { self.onmessage = null; ` +
    `(${workerLoop.toString()})(e.data, (m) => self.postMessage(m)); };\n`;
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  const worker = new Worker(url, { type: 'module' }) as Worker & { unref?: () => void };
  worker.unref?.(); // Bun: let the process exit without dispose()
  const handle = {
    terminate: () => {
      worker.terminate();
      URL.revokeObjectURL(url);
    },
  };
  const ready = whenReady(
    init.index,
    timeoutMs,
    (onMessage, onError) => {
      worker.onmessage = (e) => onMessage(e.data);
      worker.onerror = (e) => {
        e.preventDefault?.();
        onError(String(e.message ?? e));
      };
    },
    handle,
  );
  worker.postMessage(init);
  return ready;
}
