// ddpm-wasm's own kernels, one (threads, build) pair per process, from the built package (dist/).
//   node bench/ours.mjs --threads N --build simd|relaxed [--only gemm|conv2d|dispatch] [--quick]
import { Engine, KERNEL, kernels } from '../dist/index.js';
import { childSetup, convOut, parseArgs, runCases } from './common.mjs';

const emit = childSetup();
const opts = parseArgs(process.argv.slice(2));
const threads = opts.threads ?? 1;
const build = opts.build ?? 'simd';

const engine = await Engine.create({ threads, simd: build });
if (engine.threads !== threads)
  throw new Error(`the engine runs ${engine.threads} thread(s), ${threads} asked: ${engine.info.why.join('; ')}`);

/** Tensors for one case, freed with the arena mark when the case is done. */
function scoped(make) {
  const mark = engine.arena.mark();
  const c = make();
  return { ...c, dispose: () => engine.arena.release(mark) };
}

const impl = {
  gemm: (s, { A, B }) => {
    if (typeof kernels.gemm !== 'function') return 'kernels.gemm is not in this build of ddpm-wasm yet';
    return scoped(() => {
      const a = engine.upload(A, [s.M, s.K], 'A'); // (M, K)
      const b = engine.upload(B, [s.K, s.N], 'B'); // (K, N)
      const c = engine.alloc([s.M, s.N], 'C'); // (M, N)
      const args = { M: s.M, N: s.N, K: s.K, A: a, B: b, C: c };
      return { run: () => kernels.gemm(engine, args), output: () => engine.read(c) };
    });
  },
  conv2d: (s, { x, weight, bias }) => {
    if (typeof kernels.conv2d !== 'function') return 'kernels.conv2d is not in this build of ddpm-wasm yet';
    const { Ho, Wo } = convOut(s);
    return scoped(() => {
      const xt = engine.upload(x, [s.N, s.Cin, s.H, s.W], 'x'); // (N, Cin, H, W)
      const wt = engine.upload(weight, [s.Cout, s.Cin, s.kernel, s.kernel], 'weight'); // (Cout, Cin, k, k)
      const bt = engine.upload(bias, [s.Cout], 'bias'); // (Cout)
      const y = engine.alloc([s.N, s.Cout, Ho, Wo], 'y'); // (N, Cout, Ho, Wo)
      const args = {
        x: xt,
        weight: wt,
        bias: bt,
        y,
        N: s.N,
        Cin: s.Cin,
        H: s.H,
        W: s.W,
        Cout: s.Cout,
        kernel: s.kernel,
        stride: s.stride,
        pad: s.pad,
      };
      return { run: () => kernels.conv2d(engine, args), output: () => engine.read(y) };
    });
  },
  // One pool round trip with no work: axpy over n = 0 elements, so every thread wakes, finds an empty
  // slice and reports back. With 1 thread there is no pool and this is a plain call into Wasm.
  dispatch: () =>
    scoped(() => {
      const t = engine.alloc([4], 'dispatch');
      const args = /** @type {const} */ ([0, 0, t.ptr, t.ptr]);
      return { run: () => engine.run(KERNEL.axpy_f32, args) };
    }),
};

await runCases(impl, { opts, emit, base: { impl: 'ddpm-wasm', build, threads } });
console.error(`[ddpm-wasm ${build} t${threads}] engine build ${engine.info.build}: ${engine.info.why.join('; ')}`);
engine.dispose();
process.exit(0);
