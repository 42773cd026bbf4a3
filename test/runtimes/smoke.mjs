// Runs the same kernels under whatever runtime executes this file (Node, Deno, Bun, a browser worker)
// and prints one JSON line: the engine's choices and the result bits, for test/runtimes.test.ts to
// compare across runtimes. Imports the built package (dist/), as a user would.
import { Engine, kernels } from '../../dist/index.js';

const threads = Number(globalThis.process?.argv?.[2] ?? globalThis.Deno?.args?.[0] ?? 2);
const data = (n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 0.5);
const bits = (f) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
const out = {};
for (const simd of ['simd', 'relaxed']) {
  const engine = await Engine.create({ threads, simd });
  // axpy, a GEMM with odd sizes, a strided 3×3 conv with bias, and Philox normals
  const x = engine.upload(data(1000, 1), 1000, 'x');
  const y = engine.upload(data(1000, 0.7), 1000, 'y');
  kernels.axpy(engine, 1000, 0.3, x, y);
  const [M, K, N] = [37, 53, 29];
  const A = engine.upload(data(M * K, 0.3), [M, K], 'A');
  const B = engine.upload(data(K * N, 0.9), [K, N], 'B');
  const C = engine.alloc([M, N], 'C');
  kernels.gemm(engine, { M, N, K, A, B, C });
  const cx = engine.upload(data(2 * 5 * 9 * 9, 0.11), [2, 5, 9, 9], 'cx');
  const w = engine.upload(data(7 * 5 * 9, 0.5), [7, 5, 3, 3], 'w');
  const b = engine.upload(data(7, 2), 7, 'b');
  const cy = engine.alloc([2, 7, 5, 5], 'cy');
  kernels.conv2d(engine, {
    x: cx,
    weight: w,
    bias: b,
    y: cy,
    N: 2,
    Cin: 5,
    H: 9,
    W: 9,
    Cout: 7,
    kernel: 3,
    stride: 2,
    pad: 1,
  });
  const z = engine.alloc(999, 'z');
  kernels.randn(engine, z, 999, { seed: 42, stream: 3 });
  out[simd] = {
    build: engine.info.build,
    threads: engine.info.threads,
    runtime: engine.info.runtime,
    fusedMadd: engine.info.fusedMadd,
    bits: {
      axpy: bits(engine.read(y)),
      gemm: bits(engine.read(C)),
      conv: bits(engine.read(cy)),
      randn: bits(engine.read(z)),
    },
  };
  engine.dispose();
}
console.log(JSON.stringify(out));
