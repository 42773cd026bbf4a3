// tfjs-backend-wasm (XNNPACK) as a bench peer, one thread count per process (the thread pool is made once,
// when the backend initialises).
//   node bench/tfjs-peer.mjs --threads N [--only gemm|conv2d] [--quick]
//
// In Node the backend is single-threaded out of the box, for three reasons, each handled below:
// 1. its WASM_HAS_MULTITHREAD_SUPPORT flag answers false whenever IS_NODE (tfjs issue #3830), so it loads
//    the non-threaded SIMD build: we set the flag;
// 2. the threaded build starts its Emscripten pthreads from Blob URLs, which Node cannot load: Blob URLs
//    for the worker script are swapped for bench/tfjs-pthread-worker.cjs;
// 3. its C++ init caps the XNNPACK pool at emscripten_num_logical_cores() / 2 (= os.cpus().length / 2 in
//    Node, 1 here) whatever setThreadsCount asks: os.cpus() reports twice the cores while it initialises.
// Every .wasm is read from the package's dist/ folder (setWasmPaths); nothing is downloaded.
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childSetup, convOut, parseArgs, runCases } from './common.mjs';

const emit = childSetup();
const opts = parseArgs(process.argv.slice(2));
const threads = opts.threads ?? 1;

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs-core');
const wasmBackend = require('@tensorflow/tfjs-backend-wasm');
const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')); // …/tfjs-backend-wasm/dist

wasmBackend.setWasmPaths(dist + path.sep);
wasmBackend.setThreadsCount(threads);
if (threads > 1) {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  const workerFile = fileURLToPath(new URL('./tfjs-pthread-worker.cjs', import.meta.url));
  const createObjectURL = URL.createObjectURL;
  URL.createObjectURL = (/** @type {Blob} */ blob) =>
    blob?.type === 'application/javascript' ? workerFile : createObjectURL.call(URL, blob);
}
const cpus = os.cpus;
os.cpus = () => [...cpus(), ...cpus()];
try {
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs could not initialise its wasm backend');
  await tf.ready();
} finally {
  os.cpus = cpus;
}
const actualThreads = wasmBackend.getThreadsCount();
const binary = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'))
  ? 'tfjs-backend-wasm-threaded-simd.wasm'
  : 'tfjs-backend-wasm-simd.wasm';
if (actualThreads !== threads) throw new Error(`tfjs-backend-wasm runs ${actualThreads} thread(s), ${threads} asked`);

/** One op on constant inputs; each call's output tensor is freed before the next. */
function op(call, toCanonical) {
  let y = null;
  return {
    run: () => {
      y?.dispose();
      y = call();
    },
    output: () => toCanonical(y.dataSync()),
    dispose: () => y?.dispose(),
  };
}

// NCHW ↔ NHWC: XNNPACK convolves channels-last, the layout tfjs-backend-wasm's Conv2D requires.
function nchwToNhwc(x, N, C, H, W) {
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < H * W; i++) out[(n * H * W + i) * C + c] = x[(n * C + c) * H * W + i];
  return out;
}
function nhwcToNchw(x, N, C, H, W) {
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < H * W; i++) out[(n * C + c) * H * W + i] = x[(n * H * W + i) * C + c];
  return out;
}
/** (Cout, Cin, kh, kw) → (kh, kw, Cin, Cout), tfjs's filter layout. */
function oihwToHwio(w, Cout, Cin, k) {
  const out = new Float32Array(w.length);
  for (let o = 0; o < Cout; o++)
    for (let i = 0; i < Cin; i++)
      for (let r = 0; r < k * k; r++) out[(r * Cin + i) * Cout + o] = w[(o * Cin + i) * k * k + r];
  return out;
}

const impl = {
  gemm: (s, { A, B }) => {
    const a = tf.tensor2d(A, [s.M, s.K]);
    const b = tf.tensor2d(B, [s.K, s.N]);
    const o = op(
      () => tf.matMul(a, b),
      (y) => y,
    );
    return {
      ...o,
      dispose: () => {
        o.dispose();
        tf.dispose([a, b]);
      },
    };
  },
  conv2d: (s, { x, weight, bias }) => {
    const { Ho, Wo } = convOut(s);
    const xt = tf.tensor4d(nchwToNhwc(x, s.N, s.Cin, s.H, s.W), [s.N, s.H, s.W, s.Cin]);
    const wt = tf.tensor4d(oihwToHwio(weight, s.Cout, s.Cin, s.kernel), [s.kernel, s.kernel, s.Cin, s.Cout]);
    const bt = tf.tensor1d(bias);
    const o = op(
      () => tf.fused.conv2d({ x: xt, filter: wt, bias: bt, strides: s.stride, pad: s.pad, dataFormat: 'NHWC' }),
      (y) => nhwcToNchw(y, s.N, s.Cout, Ho, Wo),
    );
    return {
      ...o,
      dispose: () => {
        o.dispose();
        tf.dispose([xt, wt, bt]);
      },
    };
  },
};

await runCases(impl, { opts, emit, base: { impl: 'tfjs-wasm', build: null, threads } });
console.error(
  `[tfjs-wasm t${threads}] tfjs-backend-wasm ${wasmBackend.version_wasm}, XNNPACK threads ${actualThreads}, ${binary} from ${dist}`,
);
process.exit(0);
