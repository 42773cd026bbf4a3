// Runs the same kernels under whatever runtime executes this file (Node, Deno, Bun, a browser worker)
// and prints one JSON line: the engine's choices and the result bits, for test/runtimes.test.ts to
// compare across runtimes. Imports the built package (dist/), as a user would.
import { Engine, kernels } from '../../dist/index.js';

const threads = Number(globalThis.process?.argv?.[2] ?? globalThis.Deno?.args?.[0] ?? 2);
const n = 1000;
const x = new Float32Array(n).map((_, i) => Math.sin(i) * 3);
const y = new Float32Array(n).map((_, i) => Math.cos(i * 0.7));
const out = {};
for (const simd of ['simd', 'relaxed']) {
  const engine = await Engine.create({ threads, simd });
  const tx = engine.upload(x, n, 'x');
  const ty = engine.upload(y, n, 'y');
  kernels.axpy(engine, n, 0.3, tx, ty);
  out[simd] = { build: engine.info.build, threads: engine.info.threads, runtime: engine.info.runtime, fusedMadd: engine.info.fusedMadd, bits: Array.from(new Uint32Array(engine.read(ty).buffer)) };
  engine.dispose();
}
console.log(JSON.stringify(out));
