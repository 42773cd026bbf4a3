// onnxruntime-web (wasm execution provider, MLAS kernels) as a bench peer, one thread count per process:
// ort.env.wasm.numThreads is read once, when the first session initialises the Wasm runtime.
//   node bench/ort-peer.mjs --threads N [--only gemm|conv2d] [--quick]
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-web';
import { childSetup, parseArgs, runCases } from './common.mjs';
import { convModel, matmulModel } from './onnx.mjs';

const emit = childSetup();
const opts = parseArgs(process.argv.slice(2));
const threads = opts.threads ?? 1;

// The Wasm runtime comes from the package's own dist/ (never a CDN). In Node the bundle imports
// ort-wasm-simd-threaded.mjs/.wasm, the only plain-CPU build 1.2x ships (SIMD + threads; the .jsep,
// .jspi and .asyncify variants are for WebGPU/WebNN).
const dist = path.dirname(fileURLToPath(import.meta.resolve('onnxruntime-web'))); // …/onnxruntime-web/dist
ort.env.wasm.wasmPaths = pathToFileURL(dist + path.sep).href;
// Without this ORT picks min(4, ceil(cores / 2)) threads (1 on a 2-core machine).
ort.env.wasm.numThreads = threads;
ort.env.wasm.proxy = false;
ort.env.logLevel = 'error';

/** @type {import('onnxruntime-web').InferenceSession.SessionOptions} */
const sessionOptions = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };

async function session(modelBytes, feedName, data, dims, outName) {
  const s = await ort.InferenceSession.create(modelBytes, sessionOptions);
  const feeds = { [feedName]: new ort.Tensor('float32', data, dims) };
  let last = null;
  return {
    run: async () => {
      last = await s.run(feeds);
    },
    output: () => last[outName].data,
    dispose: () => s.release(),
  };
}

const impl = {
  gemm: (s, { A, B }) => session(matmulModel(s.M, s.K, s.N, B), 'A', A, [s.M, s.K], 'C'),
  conv2d: (s, { x, weight, bias }) => session(convModel(s, weight, bias), 'x', x, [s.N, s.Cin, s.H, s.W], 'y'),
};

await runCases(impl, { opts, emit, base: { impl: 'ort-web', build: null, threads } });
console.error(
  `[ort-web t${threads}] onnxruntime-web ${ort.env.versions.web}, numThreads ${ort.env.wasm.numThreads}, wasm from ${dist}`,
);
process.exit(0);
