// The engine's edge-runtime paths, run inside the real runtimes (workerd, Vercel's edge-runtime) by
// test/runtimes-edge.test.ts: no module where compiling is forbidden, a relaxed module (its fusing read
// without compiling), a module of the wrong build, and threads where no Worker exists. Returns one plain
// object per case.
export async function runChecks(lib, wasm) {
  const cases = {
    'no wasm': () => lib.Engine.create(),
    'relaxed module': () => lib.Engine.create({ wasm: wasm.relaxed }),
    'relaxed module, simd asked': () => lib.Engine.create({ wasm: wasm.relaxed, simd: 'simd' }),
    'simd module, threads 2': () => lib.Engine.create({ wasm: wasm.simd, threads: 2 }),
    'simd-mt module, threads 2': () => lib.Engine.create({ wasm: wasm.simdMt, threads: 2 }),
  };
  const out = {};
  for (const [name, make] of Object.entries(cases)) {
    try {
      const e = await make();
      const x = e.upload([1, 2, 3, 4], 4, 'x');
      lib.kernels.axpy(e, 4, 2, x, x);
      out[name] = { ok: true, info: e.info, result: Array.from(e.read(x)) };
      e.dispose();
    } catch (err) {
      out[name] = { ok: false, name: err.name, code: err.code, message: err.message };
    }
  }
  return out;
}
