// The body every worker runs. It is turned into source text with Function.prototype.toString and started
// as an eval'd script (Node) or from a Blob URL (Deno, Bun, browsers), so it must stay self-contained:
// no imports, no closures over module scope, plain JavaScript inside the function. The slot numbers are
// those of ./control.ts, passed in `init.layout` for that reason.

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  index: number; // 1 … nth-1; the calling thread is worker 0
  names: readonly string[]; // kernel export names by id (the OP slot): KERNEL_NAMES of bind.ts, bound once here
  spinUs: number; // microseconds to spin on the generation counter before sleeping
  gen: number; // generation counter value at start
  layout: {
    ctlByte: number;
    argsByte: number;
    maxArgs: number;
    msgByte: number;
    msgBytes: number;
    claimsByte: number;
    maxThreads: number;
  };
}

export function workerLoop(init: WorkerInit, post: (msg: unknown) => void): void {
  // Slots, as in control.ts.
  const GEN = 0,
    OP = 1,
    NARGS = 2,
    NTH = 3,
    PENDING = 4,
    ERR = 5,
    STOP = 6,
    MSG_LEN = 7;
  let exports: Record<string, unknown>;
  try {
    exports = new WebAssembly.Instance(init.module, { env: { memory: init.memory } }).exports;
  } catch (e) {
    post({ type: 'error', message: 'instantiation failed: ' + String((e as Error)?.message ?? e) });
    return;
  }
  const fns = init.names.map((n) => exports[n] as (...a: number[]) => void);
  const L = init.layout;
  const buf = init.memory.buffer;
  const ctl = new Int32Array(buf, L.ctlByte, 8);
  const args = new Float64Array(buf, L.argsByte, L.maxArgs);
  const msg = new Uint8Array(buf, L.msgByte, L.msgBytes);
  const claims = new Int32Array(buf, L.claimsByte, L.maxThreads);
  const me = init.index;
  const a: number[] = [];
  let seen = init.gen;
  post({ type: 'ready' });
  for (;;) {
    let g: number;
    let spins = 0;
    let until = performance.now() + init.spinUs / 1000;
    while ((g = Atomics.load(ctl, GEN)) === seen) {
      if ((++spins & 63) === 0 && performance.now() > until) {
        Atomics.wait(ctl, GEN, seen);
        until = performance.now() + init.spinUs / 1000;
      }
    }
    seen = g;
    if (Atomics.load(ctl, STOP) !== 0) break;
    const nth = ctl[NTH];
    if (me >= nth) continue;
    // Claim slice `me` for generation g; the caller may have taken it already (then there is nothing to
    // do), or we may be so late that g is over (then the claim fails too: claims[me] is g or newer).
    if (Atomics.compareExchange(claims, me, (g - 1) | 0, g) !== ((g - 1) | 0)) continue;
    const nargs = ctl[NARGS];
    a.length = nargs + 2;
    for (let i = 0; i < nargs; i++) a[i] = args[i];
    a[nargs] = me;
    a[nargs + 1] = nth;
    try {
      const op = ctl[OP];
      if (op === -1) {
        // OP_PROGRAM (program.ts): run the program at args[me], each call whole (ith 0, nth 1); the
        // same loop as program.ts runProgram
        const heap = new Float64Array(init.memory.buffer);
        let i = args[me] >>> 3;
        const calls = heap[i++];
        for (let c = 0; c < calls; c++) {
          const k = heap[i++];
          const n = heap[i++];
          a.length = n + 2;
          for (let j = 0; j < n; j++) a[j] = heap[i++];
          a[n] = 0;
          a[n + 1] = 1;
          fns[k].apply(null, a);
        }
      } else fns[op].apply(null, a);
    } catch (e) {
      if (Atomics.compareExchange(ctl, ERR, 0, me + 1) === 0) {
        const text = new TextEncoder().encode(String((e as Error)?.message ?? e)).subarray(0, L.msgBytes);
        msg.set(text);
        ctl[MSG_LEN] = text.length;
      }
    }
    if (Atomics.sub(ctl, PENDING, 1) === 1) Atomics.notify(ctl, PENDING);
  }
  post({ type: 'exit' });
}
