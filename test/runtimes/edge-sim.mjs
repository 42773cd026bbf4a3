// Child process for test/engine-edge.test.ts: makes this Node look like an edge runtime, then prints one
// JSON line per scenario. `node edge-sim.mjs nocompile` stubs every way of compiling Wasm from bytes the
// way Cloudflare Workers and Vercel Edge refuse it ("Wasm code generation disallowed by embedder"),
// after compiling the modules a worker would import; `noworker` makes the runtime look like workerd (its
// navigator.userAgent, 4 cores, no Worker); `noblob` the same with a Worker but no URL.createObjectURL.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20: see runtime.ts
const root = new URL('../../', import.meta.url);
const bytes = (b) => readFileSync(new URL(`build/wasm/${b}.wasm`, root));
const modules = Object.fromEntries(
  ['simd', 'relaxed', 'simd-mt', 'relaxed-mt'].map((b) => [b, new WebAssembly.Module(bytes(b))]),
);

const mode = process.argv[2];
let compiles = 0;
if (mode === 'nocompile') {
  const refuse = () => {
    compiles++;
    throw new WebAssembly.CompileError('WebAssembly.Module(): Wasm code generation disallowed by embedder');
  };
  const Real = WebAssembly.Module;
  // A Proxy keeps `instanceof WebAssembly.Module` and Module.exports() working for the modules above.
  WebAssembly.Module = new Proxy(Real, { construct: refuse });
  WebAssembly.compile = async () => refuse();
  WebAssembly.compileStreaming = async () => refuse();
  const instantiate = WebAssembly.instantiate;
  WebAssembly.instantiate = async (m, imports) => (m instanceof Real ? instantiate(m, imports) : refuse());
} else if (mode === 'noworker' || mode === 'noblob') {
  Object.defineProperty(globalThis, 'navigator', {
    value: { userAgent: 'Cloudflare-Workers', hardwareConcurrency: 4 },
    configurable: true,
  });
  delete globalThis.Worker;
  if (mode === 'noblob') {
    // a Worker, but no Blob URLs to start it from
    globalThis.Worker = class Worker {};
    URL.createObjectURL = undefined;
  }
}

const { Engine } = await import('../../dist/index.js');
const scenarios = {
  nocompile: {
    'no wasm': () => Engine.create({ threads: 1 }),
    'relaxed module': () => Engine.create({ threads: 1, wasm: modules.relaxed }),
    'simd module': () => Engine.create({ threads: 1, wasm: modules.simd }),
    'simd-mt module, 2 threads': () => Engine.create({ threads: 2, wasm: modules['simd-mt'] }),
    bytes: () => Engine.create({ threads: 1, wasm: bytes('simd') }),
  },
  noworker: {
    'threads 2': () => Engine.create({ threads: 2, wasm: modules['simd-mt'] }),
    'threads auto': () => Engine.create({ wasm: modules['simd-mt'] }),
  },
  noblob: {
    'threads 2': () => Engine.create({ threads: 2, wasm: modules['simd-mt'] }),
  },
}[mode];
const out = {};
for (const [name, make] of Object.entries(scenarios)) {
  const before = compiles;
  try {
    const e = await make();
    // a kernel call, so "created" means "works"
    const x = e.upload([1, 2, 3, 4], 4, 'x');
    const { kernels } = await import('../../dist/index.js');
    kernels.axpy(e, 4, 2, x, x);
    out[name] = { ok: true, info: e.info, result: Array.from(e.read(x)), compileAttempts: compiles - before };
    e.dispose();
  } catch (err) {
    out[name] = { ok: false, name: err.name, code: err.code, message: err.message, compileAttempts: compiles - before };
  }
}
console.log(JSON.stringify(out));
